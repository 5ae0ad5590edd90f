"""Validates published records against their catalogue entry.

One validator is compiled per resource. It checks every field's type, the
required fields, closed code sets and identifier formats, and rejects fields
the schema does not declare. Then it refuses a record that contradicts its own
identifiers (a birth date or gender other than the resident ID encodes, a wife
whose ID is a man's, an entity type other than the credit code's category).
A rejection names the record, the field and the reason; one bad record never
affects the others of its batch.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

import orjson

from hub.catalogue.model import FieldSpec, ResourceSpec
from hub.records.identifiers import (
    CHECKS,
    ENTITY_CATEGORIES,
    GENDERED_ID_FIELDS,
    MARKET_REGULATION,
    PARENT_ID_FIELDS,
    implied_birth_date,
    implied_gender,
    quoted,
)

MAX_STRING = 2000
MAX_RECORD_BYTES = 900_000  # a Kafka message holds at most 1 MB by default, headers included

# A check returns None when the value is acceptable, or the reason it is not.
Check = Callable[[object], "str | None"]
# A contradiction check gets a record whose fields are each valid: None, or the field and the reason.
Contradiction = Callable[[dict[str, Any]], "tuple[str, str] | None"]

_GENDERS = {"1": "male", "2": "female"}


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


@dataclass(slots=True)  # not frozen: one per record published, and a frozen dataclass takes 3x as long to make
class Accepted:
    """A valid record: its key, and the JSON value to write (None deletes): canonical (orjson) when
    judged alone, the line as sent when a JSON Lines batch's columns vouched for it."""

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


def _holder_contradiction(record: dict[str, Any]) -> tuple[str, str] | None:
    """A resident record's birth date and gender against its resident ID."""
    rid, problems = record["resident_id"], []
    born, gender = record.get("birth_date"), record.get("gender")
    if born is not None and born != implied_birth_date(rid):
        problems.append(
            ("birth_date", f"{born!r} contradicts field 'resident_id', which encodes {implied_birth_date(rid)}")
        )
    if gender is not None and gender != implied_gender(rid):
        implied = implied_gender(rid)
        problems.append(
            ("gender", f"{gender!r} contradicts field 'resident_id', which encodes {implied} ({_GENDERS[implied]})")
        )
    if not problems:
        return None
    return problems[0][0], "; and field ".join(
        [problems[0][1], *(f"{field!r}: {reason}" for field, reason in problems[1:])]
    )


def _gender_contradiction(field: str, gender: str) -> Contradiction:
    def check(record: dict[str, Any]) -> tuple[str, str] | None:
        rid = record.get(field)
        if rid is None or implied_gender(rid) == gender:
            return None
        return (
            field,
            f"the ID encodes a {_GENDERS[implied_gender(rid)]} (17th digit), but {field} is a {_GENDERS[gender]}'s",
        )

    return check


def _parent_contradiction(field: str) -> Contradiction:
    def check(record: dict[str, Any]) -> tuple[str, str] | None:
        rid, born = record.get(field), record.get("birth_date")
        if rid is None or born is None or implied_birth_date(rid) < born:
            return None
        return field, f"the ID encodes birth date {implied_birth_date(rid)}, not before field 'birth_date' {born}"

    return check


def _category_contradiction(record: dict[str, Any]) -> tuple[str, str] | None:
    """A market entity's type against its credit code's registering department and category."""
    code, kind = record["credit_code"], record.get("entity_type")
    if kind not in ENTITY_CATEGORIES:
        return None
    if code[0] != MARKET_REGULATION:
        return (
            "credit_code",
            f"starts {code[0]!r}: a market entity's code starts {MARKET_REGULATION!r} (market regulation)",
        )
    if code[1] != ENTITY_CATEGORIES[kind]:
        return "entity_type", (
            f"{kind!r} contradicts field 'credit_code', whose category character {code[1]!r} is not {kind}'s"
            f" {ENTITY_CATEGORIES[kind]!r}"
        )
    return None


def _contradictions(spec: ResourceSpec) -> tuple[Contradiction, ...]:
    """The checks that apply to ``spec``, chosen by its fields' names and formats."""
    fields = {f.name: f for f in spec.fields}

    def has(name: str, fmt: str = "") -> bool:
        return name in fields and fields[name].format == fmt

    checks: list[Contradiction] = []
    if has("resident_id", "resident_id") and ({"birth_date", "gender"} & fields.keys()):
        checks.append(_holder_contradiction)
    checks += [_gender_contradiction(f, g) for f, g in GENDERED_ID_FIELDS.items() if has(f, "resident_id")]
    if has("birth_date"):
        checks += [_parent_contradiction(f) for f in PARENT_ID_FIELDS if has(f, "resident_id")]
    if has("credit_code", "credit_code") and "entity_type" in fields:
        checks.append(_category_contradiction)
    return tuple(checks)


class RecordValidator:
    """Validates records of one resource. Thread-safe and reusable."""

    def __init__(self, spec: ResourceSpec) -> None:
        self.spec = spec
        self._checks = {f.name: _type_check(f) for f in spec.fields}
        self._required = tuple(f.name for f in spec.fields if f.required)
        self._key_check = self._checks[spec.key]
        self._contradictions = _contradictions(spec)

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
        for contradiction in self._contradictions:
            if (found := contradiction(record)) is not None:
                return Rejection(index, shown_key, *found)
        return Accepted(index, cast(str, record_key), orjson.dumps(record))  # required, type-checked above
