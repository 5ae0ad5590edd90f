"""The monthly report (运行情况通报): per department and per county, by Arrow group-bys.

Cases handled are cases closed in the month, on time when their working days are within the
promised limit; the average time per step is over the steps after acceptance; alerts are those
raised in the month and how many of them are answered; unused items are items of the power list
that no step in the month used. No Python loop touches the events: a year (2.3M step events)
reports in well under a second.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from hub.governance.workdays import WorkCalendar

ALERT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("department", pa.string()),
        ("division", pa.string()),
        ("raised_at_ms", pa.int64()),
        ("answered", pa.bool_()),
    ]
)
ROW_SCHEMA = pa.schema(
    [
        ("group", pa.string()),
        ("name", pa.string()),
        ("cases", pa.int64()),
        ("on_time_rate", pa.float64()),
        ("alerts_raised", pa.int64()),
        ("alerts_answered", pa.int64()),
        ("average_step_days", pa.float64()),
        ("unused_items", pa.int64()),
    ]
)
_NOT_TIMED = pa.array(["accept", "publish", "revoke"])
_READ = ["item_code", "department", "division", "step", "at_ms", "step_days", "case_days", "promised_days", "closes"]


@dataclass(frozen=True)
class MonthlyReport:
    month: str
    rows: pa.Table  # ROW_SCHEMA: department rows, then county rows
    unused: list[str]  # item codes
    steps: pa.Table  # department, step, steps, average_days: the average time of each step


def month_bounds(month: str) -> tuple[int, int]:
    """[start, end) of a "YYYY-MM" month in epoch ms, China Standard Time."""
    try:
        first = dt.date.fromisoformat(f"{month}-01")
    except ValueError:
        raise ValueError(f"month: {month!r} is not YYYY-MM") from None
    following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)

    def ms(day: dt.date) -> int:
        return (day - dt.date(1970, 1, 1)).days * 86_400_000 - WorkCalendar.OFFSET_MS

    return ms(first), ms(following)


def monthly_report(events: pa.Table, alerts: pa.Table, item_codes: pa.Table, month: str) -> MonthlyReport:
    """``events``: the steps' columns (see hub.supervision.casebook.EVENT_SCHEMA); ``alerts``:
    ALERT_SCHEMA; ``item_codes``: ``code`` and ``department`` of every item on the list."""
    start, end = month_bounds(month)
    events = events.select(_READ)  # not the case numbers: the one wide column, and none of it is needed
    in_month = events.filter(pc.and_(pc.greater_equal(events["at_ms"], start), pc.less(events["at_ms"], end)))
    closed = in_month.filter(in_month["closes"])
    closed = closed.append_column("on_time", pc.less_equal(closed["case_days"], closed["promised_days"]))
    timed = in_month.filter(pc.invert(pc.is_in(in_month["step"], _NOT_TIMED)))
    at = alerts["raised_at_ms"]
    raised = alerts.filter(pc.and_(pc.greater_equal(at, start), pc.less(at, end)))
    used = pc.unique(in_month["item_code"])
    unused = item_codes.filter(pc.invert(pc.is_in(item_codes["code"], used)))
    unused_by = unused.group_by("department").aggregate([("code", "count")]).rename_columns({"code_count": "unused"})
    by_department = _grouped(closed, timed, raised, "department").join(unused_by, "department", join_type="full outer")
    by_county = _grouped(closed, timed, raised, "division")
    rows = pa.concat_tables([_rows(by_department, "department", "department"), _rows(by_county, "county", "division")])
    steps = (
        timed.group_by(["department", "step"])
        .aggregate([("step_days", "count"), ("step_days", "mean")])
        .rename_columns({"step_days_count": "steps", "step_days_mean": "average_days"})
        .select(["department", "step", "steps", "average_days"])
        .sort_by([("department", "ascending"), ("step", "ascending")])
    )
    return MonthlyReport(month, rows, sorted(unused["code"].to_pylist()), steps)


def _grouped(closed: pa.Table, timed: pa.Table, raised: pa.Table, key: str) -> pa.Table:
    cases = closed.group_by(key).aggregate([("closes", "count"), ("on_time", "sum")])
    steps = timed.group_by(key).aggregate([("step_days", "mean")])
    alerts = raised.group_by(key).aggregate([("id", "count"), ("answered", "sum")])
    return cases.join(steps, key, join_type="full outer").join(alerts, key, join_type="full outer")


def _rows(t: pa.Table, group: str, key: str) -> pa.Table:
    def filled(name: str, value: int | float = 0) -> pa.Array:
        return pc.fill_null(t[name], value) if name in t.column_names else pa.array([value] * t.num_rows)

    cases = pc.cast(filled("closes_count"), pa.int64())
    on_time = pc.cast(filled("on_time_sum"), pa.int64())
    rate = pc.if_else(
        pc.greater(cases, 0), pc.divide(pc.cast(on_time, pa.float64()), pc.cast(cases, pa.float64())), 0.0
    )
    table = pa.table(
        {
            "group": pa.array([group] * t.num_rows, pa.string()),
            "name": t[key],
            "cases": cases,
            "on_time_rate": rate,
            "alerts_raised": pc.cast(filled("id_count"), pa.int64()),
            "alerts_answered": pc.cast(filled("answered_sum"), pa.int64()),
            "average_step_days": pc.cast(filled("step_days_mean", 0.0), pa.float64()),
            "unused_items": pc.cast(filled("unused"), pa.int64()),
        },
        schema=ROW_SCHEMA,
    )
    return table.sort_by("name")
