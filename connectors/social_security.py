"""Human resources and social security: insured persons (参保人员), a live PostgreSQL table.

The table ``si_cbry`` uses the 金保工程 field codes: aac002 (公民身份号码), aac003 (姓名), aae140
(险种类型, comma-separated: 110 pension, 210 unemployment, 310 medical, 410 injury, 510 maternity),
aac008 (参保状态: 1 contributing, 2 suspended, 3 terminated, 4 retired), aab001 (employer's
credit code), aab301 (参保地), aae201 (累计缴费月数), aae002 (最近缴费费款所属期, YYYYMM), aae036
(经办时间) and aae100 (有效标志). Changes are read through logical replication, deletes included.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors._native import lookup, required, text
from hub.connect.postgres import LogicalSource
from hub.connect.source import Connector, MappingError, Source
from hub.records.reference import INSURANCE_BY_CODE, INSURED_STATUS_BY_CODE


class InsuredConnector(Connector):
    name = "social_security"
    resource = "social_security.insured"
    department = "human_resources"
    title = "Social security: insured persons and contribution status"
    table = "si_cbry"

    def key(self, row: Mapping[str, Any]) -> str:
        return required(row, "aac002").upper()

    def deleted(self, row: Mapping[str, Any]) -> bool:
        return str(row.get("aae100") or "1") == "0"

    def map(self, row: Mapping[str, Any]) -> dict[str, Any]:
        codes = [c.strip() for c in str(row.get("aae140") or "").split(",") if c.strip()]
        unknown = [c for c in codes if c not in INSURANCE_BY_CODE]
        if unknown:
            raise MappingError(f"unknown insurance type codes: {', '.join(unknown)}", field="aae140")
        month = text(row.get("aae002"))
        if month is not None and (len(month) != 6 or not month.isdigit()):
            raise MappingError(f"{month!r} is not a contribution month YYYYMM", field="aae002")
        months = row.get("aae201")
        return {
            "resident_id": self.key(row),
            "name": text(row.get("aac003")),
            "insurance_types": sorted(INSURANCE_BY_CODE[c] for c in codes),
            "status": lookup(INSURED_STATUS_BY_CODE, row.get("aac008"), "aac008"),
            "employer_credit_code": (text(row.get("aab001")) or "").upper() or None,
            "district_code": text(row.get("aab301")),
            "contribution_months": int(months) if months not in (None, "") else None,
            "last_paid_on": f"{month[:4]}-{month[4:]}-01" if month else None,
        }

    def default_source(self, location: str) -> Source:
        return LogicalSource(location, self.table, "aac002")
