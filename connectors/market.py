"""Market regulation: the market-entity registry (市场主体登记), JSON Lines export.

Native quirks: Chinese labels for entity type (ZTLX) and status (DJZT);
dates of establishment as "2015年03月02日"; registered capital (ZCZB) as a
string in 10k CNY; the business scope (JYFW) as Chinese text items joined by
"；", with the standard note on permits appended; the "27 certificates in one"
merged registrations (DZHY) as a list of codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors._native import date_from, lookup, required, text
from hub.connect.files import file_source
from hub.connect.source import Connector, MappingError, Source
from hub.records import reference as ref

_AUTHORITIES = {f"德阳市{name}市场监督管理局": f"MR{code}" for code, name in ref.DEYANG_NAMES.items()}


def scope_codes(text_value: object) -> list[str]:
    raw = str(text_value or "").replace(ref.PERMIT_NOTE, "").strip("；; ")
    items = [i.strip() for i in raw.replace(";", "；").split("；") if i.strip()]
    unknown = [i for i in items if i not in ref.SCOPE_BY_TEXT]
    if unknown:
        raise MappingError(f"business scope items not in the scope table: {', '.join(unknown)}", field="JYFW")
    return [ref.SCOPE_BY_TEXT[i] for i in items]


class EntitiesConnector(Connector):
    name = "market"
    resource = "market.entity"
    department = "market_regulation"
    title = "Market regulation: market entities and their registrations"

    def key(self, row: Mapping[str, Any]) -> str:
        return required(row, "TYSHXYDM").upper()

    def map(self, row: Mapping[str, Any]) -> dict[str, Any]:
        code = self.key(row)
        capital = text(row.get("ZCZB"))
        try:
            capital_value = float(capital) if capital is not None else None
        except ValueError:
            raise MappingError(f"{capital!r} is not an amount", field="ZCZB") from None
        return {
            "credit_code": code,
            "name": required(row, "ZTMC"),
            "entity_type": lookup(ref.ENTITY_LABELS, row.get("ZTLX"), "ZTLX"),
            "legal_rep_id": (text(row.get("FDDBRZJHM")) or "").upper() or None,
            "legal_rep_name": text(row.get("FDDBR")),
            "district_code": code[2:8],
            "address": text(row.get("ZS")),
            "registered_capital": capital_value,
            "established_on": date_from(row.get("CLRQ"), "CLRQ", required=True),
            "status": lookup(ref.ENTITY_STATUS_BY_LABEL, row.get("DJZT"), "DJZT"),
            "business_scope": scope_codes(row.get("JYFW")),
            "registration_items": list(row.get("DZHY") or []),
            "registration_authority": _AUTHORITIES.get(str(row.get("DJJG", "")).strip()),
            "approved_on": date_from(row.get("HZRQ"), "HZRQ"),
        }

    def deleted(self, row: Mapping[str, Any]) -> bool:
        return str(row.get("CZLX") or "").strip() == "D"

    def default_source(self, location: str) -> Source:
        return file_source(location, "jsonl")
