"""Deadlines in working days (工作日): weekends and configured public holidays do not count."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable


def add_working_days(start: dt.datetime, days: int, holidays: Iterable[dt.date] = ()) -> dt.datetime:
    """The moment ``days`` working days after ``start`` (same time of day)."""
    off = set(holidays)
    current = start
    remaining = days
    while remaining > 0:
        current += dt.timedelta(days=1)
        if current.weekday() < 5 and current.date() not in off:
            remaining -= 1
    return current
