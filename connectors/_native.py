"""Parsing helpers for the quirks of departments' native formats."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from hub.connect.source import MappingError

_CHINESE_DATE = re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日$")


def date_from(value: object, field: str, *, required: bool = False) -> str | None:
    """YYYYMMDD, YYYY-MM-DD, YYYY/MM/DD or 2015年3月2日 → YYYY-MM-DD."""
    text = str(value or "").strip()
    if not text:
        if required:
            raise MappingError("is required", field=field)
        return None
    try:
        return _iso_date(text)
    except ValueError as exc:
        raise MappingError(str(exc), field=field) from None


@lru_cache(maxsize=65536)
def _iso_date(text: str) -> str:
    """Cached: an export repeats its dates (birth dates, listing dates) across many rows."""
    if m := _CHINESE_DATE.match(text):
        y, mo, d = (int(g) for g in m.groups())
    elif len(text) == 8 and text.isdigit():
        y, mo, d = int(text[:4]), int(text[4:6]), int(text[6:])
    else:
        parts = re.split(r"[-/.]", text)
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise ValueError(f"{text!r} is not a date")
        y, mo, d = (int(p) for p in parts)
    try:
        return dt.date(y, mo, d).isoformat()
    except ValueError:
        raise ValueError(f"{text!r} is not a valid date") from None


def text(value: object) -> str | None:
    s = str(value).strip() if value is not None else ""
    return s or None


def required(row: Mapping[str, Any], column: str) -> str:
    value = text(row.get(column))
    if value is None:
        raise MappingError("is required", field=column)
    return value


def lookup(table: dict[str, str], value: object, field: str) -> str:
    key = str(value or "").strip()
    try:
        return table[key]
    except KeyError:
        raise MappingError(f"{key!r} is not a known code ({', '.join(sorted(table)[:8])}...)", field=field) from None


def integer(value: object, field: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        raise MappingError(f"{value!r} is not a whole number", field=field) from None


def number(value: object, field: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(str(value).strip())
    except ValueError:
        raise MappingError(f"{value!r} is not a number", field=field) from None


def flag(value: object, field: str) -> bool | None:
    text_value = str(value or "").strip().lower()
    if not text_value:
        return None
    if text_value in ("1", "true", "y", "yes", "是"):
        return True
    if text_value in ("0", "false", "n", "no", "否"):
        return False
    raise MappingError(f"{value!r} is not yes or no", field=field)


def items(value: object, separator: str = "|") -> list[str]:
    return [i.strip() for i in str(value or "").split(separator) if i.strip()]
