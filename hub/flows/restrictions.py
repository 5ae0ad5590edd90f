"""Joint restriction (联合惩戒): measures against entities on the serious-violation list.

An entity with a serious-violation listing active on a date (listed on or before it, not removed
by it) is restricted in the contexts its listing's measures name. Removal from the list lifts the
restriction from the removal date on.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.cache.table import TableVersion
from hub.errors import InvalidArgument

CREDIT_LIST = "credit.list_entry"  # the resource listings are read from
LISTING_FIELDS = ("entry_id", "category", "listed_on", "removed_on", "measures")  # what a check reads of each

MEASURE_OF_CONTEXT = {
    "government_procurement": "restrict_procurement",
    "bidding": "restrict_bidding",
    "honours": "restrict_honours",
    "loans": "restrict_loans",
    "subsidies": "restrict_subsidies",
}


def context_problem(name: str) -> str | None:
    """Why ``name`` is no restricted context (a typo would silently flag nothing), or None."""
    if name and name not in MEASURE_OF_CONTEXT:
        return f"{name!r} is not a restricted context (one of {', '.join(MEASURE_OF_CONTEXT)})"
    return None


def check_context(name: str, field: str) -> None:
    problem = context_problem(name)
    if problem is not None:
        raise InvalidArgument(f"{field}: {problem}", field=field)


@dataclass(frozen=True)
class Restriction:
    credit_code: str
    measure: str
    entry_id: str
    listed_on: str


def restrictions_of(credit: TableVersion, credit_code: str, context: str, on_date: str) -> list[Restriction]:
    measure = MEASURE_OF_CONTEXT.get(context)
    if measure is None or not credit_code:
        return []
    out = []
    for row in credit.rows_by("credit_code", credit_code):
        entry = credit.record(row, LISTING_FIELDS)
        removed = entry["removed_on"]
        if (
            entry["category"] == "serious_violation"
            and entry["listed_on"] <= on_date
            and (removed is None or removed > on_date)
            and measure in (entry["measures"] or ())
        ):
            out.append(Restriction(credit_code, measure, entry["entry_id"], entry["listed_on"]))
    return out
