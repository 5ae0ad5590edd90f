"""Draw plans: validation of what a department files, and the plan as published (canonical, digested)."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping, Sequence

from hub.errors import InvalidArgument, PermissionDenied
from hub.inspections.items import InspectionItem
from hub.inspections.pools import TargetFilter

LEVELS = ("city", "county")


def _date(value: str, field: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidArgument(f"{field}: {value!r} is not a date (YYYY-MM-DD)", field=field) from None


def new_plan_id(department: str, now: dt.datetime) -> str:
    return f"DP-{department}-{now:%Y%m%d}-{secrets.token_hex(4)}"


def validate_plan(
    *,
    department: str,
    item_ids: Sequence[str],
    items: Mapping[str, InspectionItem],
    target_filter: TargetFilter,
    ratio: float,
    count: int,
    officers_per_target: int,
    draw_at_ms: int,
    window_start: str,
    window_end: str,
    levels: Sequence[str],
    now_ms: int,
) -> tuple[list[InspectionItem], int]:
    """The plan's items and its ratio in parts per million; INVALID_ARGUMENT naming the field otherwise."""
    if not item_ids:
        raise InvalidArgument("item_ids: a plan needs at least one inspection item from the list", field="item_ids")
    chosen = []
    for i, ident in enumerate(item_ids):
        item = items.get(ident)
        if item is None:
            raise InvalidArgument(
                f"item_ids[{i}]: {ident!r} is not on the inspection-item list", field=f"item_ids[{i}]"
            )
        if item.department != department:
            raise PermissionDenied(f"item_ids[{i}]: {ident} is an item of {item.department}, not of {department}")
        chosen.append(item)
    if count < 0:
        raise InvalidArgument("count: must not be negative", field="count")
    if count and ratio:
        raise InvalidArgument("ratio: give a ratio or a count, not both", field="ratio")
    if not count and not 0 < ratio <= 1:
        raise InvalidArgument(f"ratio: {ratio} is outside (0, 1]", field="ratio")
    ratio_ppm = 0 if count else max(1, round(ratio * 1_000_000))
    if officers_per_target < 2:
        raise InvalidArgument(
            f"officers_per_target: {officers_per_target}; every target is inspected by at least 2 officers",
            field="officers_per_target",
        )
    if draw_at_ms <= now_ms:
        raise InvalidArgument("draw_at_ms: the draw time must be in the future", field="draw_at_ms")
    start, end = _date(window_start, "window_start"), _date(window_end, "window_end")
    if end < start:
        raise InvalidArgument("window_end: before window_start", field="window_end")
    for i, level in enumerate(levels):
        if level not in LEVELS:
            raise InvalidArgument(f"officer_levels[{i}]: {level!r} is not city or county", field=f"officer_levels[{i}]")
    if target_filter.off_list and not target_filter.credit_list:
        raise InvalidArgument("filter.off_list: name the credit list in filter.credit_list", field="filter.off_list")
    return chosen, ratio_ppm


def draw_date(draw_at_ms: int) -> dt.date:
    """The day (UTC+8, the city's) certificates must be valid on."""
    return dt.datetime.fromtimestamp(draw_at_ms / 1000, dt.timezone(dt.timedelta(hours=8))).date()
