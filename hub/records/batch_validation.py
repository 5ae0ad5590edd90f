"""Validates a Publish batch sent as JSON Lines column by column, with the per-record validator's verdicts.

The lines are parsed once into an Arrow table with the resource's schema, and the checks of
:class:`~hub.records.validation.RecordValidator` run as vectors over its columns (pyarrow compute and
NumPy: check digits, dates, code sets, the contradictions between a record's fields). A line they
find certainly valid is accepted as sent: its bytes are the value written to Kafka. Every other
line, and every line of a batch that cannot be parsed as one table (a broken line, an unknown field,
a wrong type), goes through the per-record validator, so a rejection reads exactly as it would for
the same record sent alone. The vector checks may only err towards "not certain", never accept what
the per-record validator refuses: tests/test_batch_validation.py holds them to that on mutated records.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from hub.catalogue.model import FieldSpec, ResourceSpec
from hub.records.identifiers import (
    CHECKS,
    ENTITY_CATEGORIES,
    GENDERED_ID_FIELDS,
    MARKET_REGULATION,
    PARENT_ID_FIELDS,
    PROVINCES,
    USCC_ALPHABET,
)
from hub.records.validation import MAX_RECORD_BYTES, MAX_STRING, Accepted, RecordValidator, Rejection

_JSON_TYPES = {
    "string": pa.string(),
    "code": pa.string(),
    "date": pa.string(),
    "int": pa.int64(),
    "decimal": pa.float64(),
    "bool": pa.bool_(),
    "list": pa.list_(pa.string()),
}
# What str.strip() strips (str.isspace(); none is above U+3000): a value left empty is blank.
_SPACES = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
# GB 11643's check digit is (1 - 2 * the 17 digits read in base 13) mod 11, as python-stdnum computes it.
_RIC_WEIGHTS = np.array([pow(13, 16 - i, 11) for i in range(17)], dtype=np.int64)
_USCC_WEIGHTS = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28], dtype=np.int64)
_USCC_VALUES = np.full(256, -1, dtype=np.int64)
_USCC_VALUES[[ord(c) for c in USCC_ALPHABET]] = np.arange(len(USCC_ALPHABET))
_PROVINCE_NUMBERS = np.array(sorted(int(p) for p in PROVINCES))
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_ODD_DIGITS = pa.array(["1", "3", "5", "7", "9"])


class BatchValidator:
    """Validates JSON Lines batches of one resource. Thread-safe and reusable."""

    def __init__(self, validator: RecordValidator) -> None:
        self.exact = validator
        self.spec = spec = validator.spec
        self._parse_options = pj.ParseOptions(
            explicit_schema=pa.schema([(f.name, _JSON_TYPES[f.type]) for f in spec.fields]),
            unexpected_field_behavior="error",
        )
        self._read_options = pj.ReadOptions(use_threads=False, block_size=16 << 20)

    @staticmethod
    def lines(jsonl: bytes) -> list[bytes]:
        """The records of a JSON Lines batch: lines separated by "\\n", the last one optionally ended by it."""
        return jsonl.removesuffix(b"\n").split(b"\n") if jsonl else []

    def validate(self, lines: list[bytes]) -> list[Accepted | Rejection]:
        """One outcome per line, in order; line i is ``records[i]`` in a rejection's message."""
        vouched = self._certain(lines)
        exact = self.exact.validate
        if vouched is None:
            return [exact(i, "", line, False) for i, line in enumerate(lines)]
        certain, keys = vouched
        return [
            Accepted(i, keys[i], line) if ok else exact(i, "", line, False)
            for i, (line, ok) in enumerate(zip(lines, certain.tolist(), strict=True))
        ]

    def _certain(self, lines: list[bytes]) -> tuple[np.ndarray, list[str]] | None:
        """Per line, whether it is certainly valid, and its key (where it is); None when the batch is not
        one parseable table of one object per line."""
        n = len(lines)
        body = b"\n".join(lines)
        buf = np.frombuffer(body, dtype=np.uint8)
        breaks = np.flatnonzero(buf == 10)
        starts = np.concatenate(([0], breaks + 1))
        ends = np.concatenate((breaks, [len(buf)]))
        # Each line is one object from its first byte to its last: with no raw newline inside a JSON
        # string and no nested object in the schema, a line cannot hold two records or half of one.
        if (ends <= starts).any() or (buf[starts] != ord("{")).any() or (buf[ends - 1] != ord("}")).any():
            return None
        try:
            table = pj.read_json(
                pa.BufferReader(body), read_options=self._read_options, parse_options=self._parse_options
            )
        except (pa.ArrowException, ValueError):  # a broken line, a wrong type, an unknown field, bad UTF-8
            return None
        if table.num_rows != n:
            return None
        columns = {f.name: table.column(f.name).combine_chunks() for f in self.spec.fields}
        ok = ends - starts <= MAX_RECORD_BYTES
        for f in self.spec.fields:
            ok &= _field_ok(f, columns[f.name])
        for problem in _contradictions(self.spec, columns):
            ok &= ~_flags(problem, False)
        return ok, columns[self.spec.key].to_pylist()


def _flags(mask: pa.Array, null: bool) -> np.ndarray:
    """A boolean Arrow array as NumPy, unset values as ``null``."""
    flags: np.ndarray = mask.fill_null(null).to_numpy(zero_copy_only=False)
    return flags


def _field_ok(f: FieldSpec, col: pa.Array) -> np.ndarray:
    """Whether each value is certainly valid for ``f`` (an unset value: unless the field is required)."""
    ok = _flags(col.is_valid(), False) if f.required else np.ones(len(col), dtype=bool)
    if f.type in ("string", "code"):
        ok &= _flags(pc.less_equal(pc.utf8_length(col), MAX_STRING), True)
        ok &= _flags(pc.greater(pc.utf8_length(pc.utf8_trim(col, _SPACES)), 0), True)
        if f.format == "resident_id":
            ok &= _resident_ids_ok(col)
        elif f.format == "credit_code":
            ok &= _credit_codes_ok(col)
        elif (check := CHECKS.get(f.format)) is not None:
            ok &= _each_distinct_ok(col, check)
        if f.allowed:
            ok &= _flags(pc.is_in(col, value_set=pa.array(f.allowed)), True)
    elif f.type == "date":
        ok &= _dates_ok(col)
    elif f.type == "decimal":
        ok &= _flags(pc.is_finite(col), True)  # the parser takes NaN and Infinity; JSON does not
    elif f.type == "list":
        items = pc.list_flatten(col)
        bad = pc.invert(pc.and_(pc.greater(pc.utf8_length(items), 0), pc.invert(pc.match_substring(items, "\x1f"))))
        ok[pc.list_parent_indices(col).to_numpy()[_flags(bad, True)]] = False
    return ok  # an int or a bool the schema parsed is valid as it is


def _each_distinct_ok(col: pa.Array, check: Callable[[str], str | None]) -> np.ndarray:
    """``check`` once per distinct value: for fields with few (division codes)."""
    bad = [v for v in pc.unique(col.drop_null()).to_pylist() if check(v) is not None]
    return ~_flags(pc.is_in(col, value_set=pa.array(bad, pa.string())), False)


def _fixed(col: pa.Array, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows of ``col`` holding exactly ``width`` ASCII characters, their bytes as a matrix)."""
    shaped = _flags(pc.and_(pc.equal(pc.binary_length(col), width), pc.string_is_ascii(col)), False)
    rows = np.flatnonzero(shaped)
    taken = col.take(pa.array(rows))
    data = taken.buffers()[2]
    if not len(rows) or data is None:
        return rows, np.zeros((0, width), dtype=np.uint8)
    first = int(np.frombuffer(taken.buffers()[1], dtype=np.int32)[taken.offset])
    matrix = np.frombuffer(data, dtype=np.uint8)[first : first + width * len(rows)].reshape(len(rows), width)
    return rows, matrix


def _resident_ids_ok(col: pa.Array) -> np.ndarray:
    """hub.records.identifiers.resident_id_problem over a column: length, digits, province, birth date,
    check digit."""
    ok = _flags(col.is_null(), False)
    rows, m = _fixed(col, 18)
    d = m[:, :17].astype(np.int64) - ord("0")
    digits = ((d >= 0) & (d <= 9)).all(axis=1)
    d[~digits] = 0
    province = np.isin(d[:, 0] * 10 + d[:, 1], _PROVINCE_NUMBERS)
    year = d[:, 6] * 1000 + d[:, 7] * 100 + d[:, 8] * 10 + d[:, 9]
    month, day = d[:, 10] * 10 + d[:, 11], d[:, 12] * 10 + d[:, 13]
    today = dt.date.today()
    ymd = year * 10000 + month * 100 + day
    born = (
        _valid_dates(year, month, day) & (ymd >= 18800101) & (ymd <= today.year * 10000 + today.month * 100 + today.day)
    )
    checksum = (1 - 2 * (d @ _RIC_WEIGHTS)) % 11
    expected = np.where(checksum == 10, ord("X"), checksum + ord("0"))
    ok[rows] = digits & province & born & (m[:, 17] == expected)
    return ok


def _credit_codes_ok(col: pa.Array) -> np.ndarray:
    """hub.records.identifiers.credit_code_problem over a column: length, alphabet, division digits,
    check character."""
    ok = _flags(col.is_null(), False)
    rows, m = _fixed(col, 18)
    values = _USCC_VALUES[m]
    alphabet = (values >= 0).all(axis=1)
    division = ((m[:, 2:8] >= ord("0")) & (m[:, 2:8] <= ord("9"))).all(axis=1)
    expected = (31 - values[:, :17] @ _USCC_WEIGHTS) % 31
    ok[rows] = alphabet & division & (values[:, 17] == expected)
    return ok


def _dates_ok(col: pa.Array) -> np.ndarray:
    """hub.records.validation's date check over a column: YYYY-MM-DD, a day that exists (unset: valid)."""
    ok = _flags(col.is_null(), False)
    rows, m = _fixed(col, 10)
    d = m.astype(np.int64) - ord("0")
    digits = ((d[:, [0, 1, 2, 3, 5, 6, 8, 9]] >= 0) & (d[:, [0, 1, 2, 3, 5, 6, 8, 9]] <= 9)).all(axis=1)
    dashes = (m[:, 4] == ord("-")) & (m[:, 7] == ord("-"))
    year = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
    ok[rows] = digits & dashes & _valid_dates(year, d[:, 5] * 10 + d[:, 6], d[:, 8] * 10 + d[:, 9])
    return ok


def _valid_dates(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_ok = (month >= 1) & (month <= 12)
    last = _DAYS_IN_MONTH[np.where(month_ok, month, 0)] + ((month == 2) & leap)
    valid: np.ndarray = month_ok & (day >= 1) & (day <= last) & (year >= 1)
    return valid


def _implied_birth_date(ids: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(ids, 6, 10),
        pc.utf8_slice_codeunits(ids, 10, 12),
        pc.utf8_slice_codeunits(ids, 12, 14),
        "-",
    )


def _implied_gender(ids: pa.Array) -> pa.Array:
    """As hub.records.identifiers.implied_gender; unset IDs get "2", so callers mask them out."""
    return pc.if_else(pc.is_in(pc.utf8_slice_codeunits(ids, 16, 17), value_set=_ODD_DIGITS), "1", "2")


def _contradictions(spec: ResourceSpec, columns: dict[str, pa.Array]) -> list[pa.Array]:
    """Per contradiction of hub.records.validation._contradictions that applies to ``spec``, whether
    each record commits it (null: it cannot)."""
    fields = {f.name: f for f in spec.fields}

    def has(name: str, fmt: str = "") -> bool:
        return name in fields and fields[name].format == fmt

    problems = []
    if has("resident_id", "resident_id") and ({"birth_date", "gender"} & fields.keys()):
        rid = columns["resident_id"]
        if "birth_date" in fields:
            problems.append(pc.not_equal(columns["birth_date"], _implied_birth_date(rid)))
        if "gender" in fields:
            problems.append(pc.not_equal(columns["gender"], _implied_gender(rid)))
    for name, gender in GENDERED_ID_FIELDS.items():
        if has(name, "resident_id"):
            ids = columns[name]
            problems.append(pc.and_(pc.is_valid(ids), pc.not_equal(_implied_gender(ids), gender)))
    if has("birth_date"):
        for name in PARENT_ID_FIELDS:
            if has(name, "resident_id"):
                problems.append(pc.greater_equal(_implied_birth_date(columns[name]), columns["birth_date"]))
    if has("credit_code", "credit_code") and "entity_type" in fields:
        code, kind = columns["credit_code"], columns["entity_type"]
        first, second = pc.utf8_slice_codeunits(code, 0, 1), pc.utf8_slice_codeunits(code, 1, 2)
        for entity_type, category in ENTITY_CATEGORIES.items():
            wrong = pc.or_(pc.not_equal(first, MARKET_REGULATION), pc.not_equal(second, category))
            problems.append(pc.and_(pc.equal(kind, entity_type), wrong))
    return problems
