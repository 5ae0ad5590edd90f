"""Housing provident fund: personal accounts (个人账户), a PostgreSQL table polled for changes.

The fund centre grants only SELECT on ``gjj_grzh``, so changes are found by polling the update
time gxsj (with the account number grzh as tie-breaker); a closed record is flagged scbz = '1'
(删除标志) rather than deleted. Columns: grzh, zjhm (证件号码), xingming, dwtyxydm (employer),
grzhzt (账户状态: 01 normal, 02 sealed, 03 closed), yjce (月缴存额), grzhye (余额), zhjcrq (最近缴存
日期), khrq (开户日期).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors._native import date_from, lookup, required, text
from hub.connect.postgres import PollingSource
from hub.connect.source import Connector, MappingError, Source
from hub.records.reference import ACCOUNT_STATUS_BY_CODE


def _amount(value: object, field: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except ValueError:
        raise MappingError(f"{value!r} is not an amount", field=field) from None


class HousingFundConnector(Connector):
    name = "housing_fund"
    resource = "housing_fund.account"
    department = "housing_fund"
    title = "Housing fund: accounts and deposit status"
    table = "gjj_grzh"

    def key(self, row: Mapping[str, Any]) -> str:
        return required(row, "grzh")

    def deleted(self, row: Mapping[str, Any]) -> bool:
        return str(row.get("scbz") or "0") == "1"

    def map(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "account_no": self.key(row),
            "resident_id": required(row, "zjhm").upper(),
            "name": text(row.get("xingming")),
            "employer_credit_code": (text(row.get("dwtyxydm")) or "").upper() or None,
            "status": lookup(ACCOUNT_STATUS_BY_CODE, row.get("grzhzt"), "grzhzt"),
            "monthly_deposit": _amount(row.get("yjce"), "yjce"),
            "balance": _amount(row.get("grzhye"), "grzhye"),
            "last_deposit_on": date_from(row.get("zhjcrq"), "zhjcrq"),
            "opened_on": date_from(row.get("khrq"), "khrq", required=True),
        }

    def default_source(self, location: str) -> Source:
        return PollingSource(location, self.table, "grzh", "gxsj", deleted_column="scbz")
