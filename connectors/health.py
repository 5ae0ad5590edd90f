"""Health: birth medical certificates (出生医学证明), Excel sheets dropped by the hospitals.

Columns: 出生医学证明编号, 新生儿姓名, 性别 (男/女), 出生日期 (an Excel date), 母亲身份证件号码,
父亲身份证件号码, 接生机构名称, 出生地区划代码, 操作类型 (新增/修改/删除). An ID typed into a cell
as a number has lost its last digits (Excel keeps 15 significant digits); such rows are reported,
not guessed at.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from connectors._native import date_from, lookup, required, text
from hub.connect.files import file_source
from hub.connect.source import Connector, MappingError, Source
from hub.records.reference import GENDER_BY_LABEL


def _excel_id(value: object, field: str) -> str | None:
    if value in (None, ""):
        return None
    if isinstance(value, int | float):
        raise MappingError(f"the ID was typed as a number ({value!r}); Excel lost its last digits", field=field)
    return str(value).strip().upper()


def _excel_date(value: object, field: str) -> str | None:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return date_from(value, field, required=True)


class BirthCertificatesConnector(Connector):
    name = "health"
    resource = "health.birth_certificate"
    department = "health"
    title = "Health: birth medical certificates"

    def key(self, row: Mapping[str, Any]) -> str:
        return required(row, "出生医学证明编号")

    def deleted(self, row: Mapping[str, Any]) -> bool:
        return str(row.get("操作类型") or "").strip() == "删除"

    def map(self, row: Mapping[str, Any]) -> dict[str, Any]:
        gender = text(row.get("性别"))
        return {
            "cert_no": self.key(row),
            "child_name": text(row.get("新生儿姓名")),
            "child_gender": lookup(GENDER_BY_LABEL, gender, "性别") if gender else None,
            "birth_date": _excel_date(row.get("出生日期"), "出生日期"),
            "mother_id": _excel_id(row.get("母亲身份证件号码"), "母亲身份证件号码"),
            "father_id": _excel_id(row.get("父亲身份证件号码"), "父亲身份证件号码"),
            "hospital": text(row.get("接生机构名称")),
            "district_code": text(row.get("出生地区划代码")),
        }

    def default_source(self, location: str) -> Source:
        return file_source(location, "xlsx")
