"""Credit platform: credit records, the abnormal-operation and serious-violation lists (CSV export).

Native quirks: Chinese column headers; categories and joint-restriction
measures as Chinese labels ("严重违法失信企业名单", "限制参与招标投标"、...);
dates as YYYY/MM/DD; the deciding authority by its full Chinese name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors._native import date_from, lookup, required, text
from hub.catalogue.model import load_builtin
from hub.connect.files import file_source
from hub.connect.source import Connector, MappingError, Source
from hub.records import reference as ref


class CreditRecordsConnector(Connector):
    name = "credit"
    resource = "credit.list_entry"
    department = "credit"
    title = "Credit platform: credit records, abnormal and serious-violation lists, joint restrictions"

    def __init__(self) -> None:
        self._authorities = {d.name: d.code for d in load_builtin().departments}

    def key(self, row: Mapping[str, Any]) -> str:
        return required(row, "记录编号")

    def map(self, row: Mapping[str, Any]) -> dict[str, Any]:
        measures = [m.strip() for m in str(row.get("惩戒措施") or "").split("、") if m.strip()]
        unknown = [m for m in measures if m not in ref.MEASURE_BY_TEXT]
        if unknown:
            raise MappingError(f"unknown joint-restriction measures: {', '.join(unknown)}", field="惩戒措施")
        authority = text(row.get("决定机关"))
        return {
            "entry_id": self.key(row),
            "credit_code": required(row, "统一社会信用代码").upper(),
            "category": lookup(ref.CREDIT_BY_LABEL, row.get("类别"), "类别"),
            "reason": text(row.get("事由")),
            "authority": lookup(self._authorities, authority, "决定机关") if authority else None,
            "listed_on": date_from(row.get("列入日期"), "列入日期", required=True),
            "removed_on": date_from(row.get("移出日期"), "移出日期"),
            "measures": [ref.MEASURE_BY_TEXT[m] for m in measures],
        }

    def deleted(self, row: Mapping[str, Any]) -> bool:
        return str(row.get("操作类型") or "").strip() == "删除"

    def default_source(self, location: str) -> Source:
        return file_source(location, "csv")
