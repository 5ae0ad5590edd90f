"""Public security: the resident population registry (常住人口), CSV export.

Native columns are the bureau's pinyin-initial codes: GMSFHM (公民身份号码),
XM (姓名), XBDM (性别代码), MZDM (民族代码), CSRQ (出生日期, YYYYMMDD),
HJDZ_XZQHDM (户籍地址行政区划代码), HJDZ_QHNXXDZ (户籍地址区划内详细地址),
HH (户号), YHZGXDM (与户主关系代码), RYZTDM (人员状态代码: 1 registered,
2 moved out, 3 deceased), DJRQ (登记日期), CZLX (操作类型: I, U, D in incremental
drops). Some rows carry a lower-case
check character "x".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors._native import date_from, lookup, required, text
from hub.connect.files import file_source
from hub.connect.source import Connector, Source
from hub.records.reference import PERSON_STATUS_BY_CODE


class ResidentsConnector(Connector):
    name = "population"
    resource = "population.resident"
    department = "public_security"
    title = "Public security: residents and household registration"

    def key(self, row: Mapping[str, Any]) -> str:
        return required(row, "GMSFHM").upper()

    def map(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "resident_id": self.key(row),
            "name": required(row, "XM"),
            "gender": required(row, "XBDM"),
            "ethnicity": text(row.get("MZDM")),
            "birth_date": date_from(row.get("CSRQ"), "CSRQ", required=True),
            "district_code": required(row, "HJDZ_XZQHDM"),
            "address": text(row.get("HJDZ_QHNXXDZ")),
            "household_id": text(row.get("HH")),
            "relation_to_head": text(row.get("YHZGXDM")),
            "status": lookup(PERSON_STATUS_BY_CODE, row.get("RYZTDM"), "RYZTDM"),
            "registered_on": date_from(row.get("DJRQ"), "DJRQ"),
        }

    def deleted(self, row: Mapping[str, Any]) -> bool:
        return str(row.get("CZLX") or "").strip() == "D"

    def default_source(self, location: str) -> Source:
        return file_source(location, "csv")
