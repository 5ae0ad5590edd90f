"""Validates published records against their catalogue entry.

One validator is compiled per resource. It checks every field's type, the
required fields, closed code sets and identifier formats, and rejects fields
the schema does not declare. A rejection names the record, the field and the
reason; one bad record never affects the others of its batch.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import orjson

from hub.catalogue.model import FieldSpec, ResourceSpec
from hub.records.identifiers import CHECKS, quoted

MAX_STRING = 2000
MAX_RECORD_BYTES = 900_000  # a Kafka message holds at most 1 MB by default, headers included

# A check returns None when the value is acceptable, or the reason it is not.
Check = Callable[[object], "str | None"]


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one record of a batch was refused."""

    index: int
    key: str
    field: str
    reason: str

    @property
    def message(self) -> str:
        where = f"records[{self.index}]"  # not the key: a resident ID does not belong in a message
        if self.field:
            where += f": field {self.field!r}"
        return f"{where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid record: its key, and the canonical JSON value (None deletes)."""

    index: int
    key: str
    value: bytes | None


@lru_cache(maxsize=131072)
def _date_problem(value: str) -> str | None:
    if len(value) != 10:
        return f"{value!r} is not a date in the form YYYY-MM-DD"
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return f"{value!r} is not a valid date (YYYY-MM-DD)"
    return None


def _type_check(spec: FieldSpec) -> Check:
    fmt = CHECKS.get(spec.format)
    allowed = frozenset(spec.allowed)

    def check_string(value: object) -> str | None:
        if not isinstance(value, str):
            return f"expected a string, got {type(value).__name__}"
        if len(value) > MAX_STRING:
            return f"longer than {MAX_STRING} characters"
        if not value.strip():
            return "must not be blank"
        if fmt is not None and (problem := fmt(value)) is not None:
            return f"{quoted(spec.format, value)} is not a valid {spec.format.replace('_', ' ')}: {problem}"
        if allowed and value not in allowed:
            return f"{value!r} is not one of {', '.join(sorted(allowed))}"
        return None

    def check_date(value: object) -> str | None:
        if not isinstance(value, str):
            return f"expected a date string YYYY-MM-DD, got {type(value).__name__}"
        return _date_problem(value)

    def check_int(value: object) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"expected an integer, got {type(value).__name__}"
        if not -(2**63) <= value < 2**63:
            return "out of the 64-bit range"
        return None

    def check_decimal(value: object) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"expected a number, got {type(value).__name__}"
        if isinstance(value, float) and not math.isfinite(value):
            return "must be a finite number"
        return None

    def check_bool(value: object) -> str | None:
        return None if isinstance(value, bool) else f"expected true or false, got {type(value).__name__}"

    def check_list(value: object) -> str | None:
        if not isinstance(value, list):
            return f"expected a list of strings, got {type(value).__name__}"
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item or "\x1f" in item:
                return f"item {i} must be a non-empty string"
        return None

    return {
        "string": check_string,
        "code": check_string,
        "date": check_date,
        "int": check_int,
        "decimal": check_decimal,
        "bool": check_bool,
        "list": check_list,
    }[spec.type]


class RecordValidator:
    """Validates records of one resource. Thread-safe and reusable."""

    def __init__(self, spec: ResourceSpec) -> None:
        self.spec = spec
        self._checks = {f.name: _type_check(f) for f in spec.fields}
        self._required = tuple(f.name for f in spec.fields if f.required)
        self._key_check = self._checks[spec.key]

    def validate(self, index: int, key: str, payload: bytes, delete: bool) -> Accepted | Rejection:
        spec = self.spec
        if delete:
            if not key:
                return Rejection(index, "", "key", "a delete must name the key")
            if (problem := self._key_check(key)) is not None:
                return Rejection(index, key, spec.key, problem)
            return Accepted(index, key, None)
        if len(payload) > MAX_RECORD_BYTES:
            return Rejection(index, key, "", f"json is {len(payload):,} bytes; at most {MAX_RECORD_BYTES:,}")
        try:
            record = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            return Rejection(index, key, "", f"json is not valid JSON: {exc}")
        if not isinstance(record, dict):
            return Rejection(index, key, "", f"json must be an object, got {type(record).__name__}")
        record_key = record.get(spec.key)
        shown_key = record_key if isinstance(record_key, str) else key
        for name in self._required:
            if record.get(name) is None:
                return Rejection(index, shown_key, name, "is required")
        checks = self._checks
        for name, value in record.items():
            check = checks.get(name)
            if check is None:
                return Rejection(index, shown_key, name, f"is not a field of {spec.name}")
            if value is not None and (problem := check(value)) is not None:
                return Rejection(index, shown_key, name, problem)
        if key and key != record_key:
            fmt = spec.field(spec.key).format
            return Rejection(
                index,
                key,
                spec.key,
                f"record key {quoted(fmt, str(record_key))} differs from the key {quoted(fmt, key)}",
            )
        return Accepted(index, record_key, orjson.dumps(record))
