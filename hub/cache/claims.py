"""Claims: what a caller asserts about a record, compiled once per request.

A claim names a field, an operation and value(s). Compiling checks that the
field exists, that the operation applies to the field's type, and parses the
values (dates to days, numbers), so a bad claim is an INVALID_ARGUMENT naming
the claim and field. Evaluation comes in two shapes:

- :meth:`Compiled.test` for one row, with no per-table work;
- :meth:`Compiled.test_rows` for a batch, vectorised over the rows (NumPy on
  codes, days and numbers; Arrow compute on strings), never a Python loop
  over keys.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from itertools import repeat
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hub.cache.columns import LIST_SEP, CodeColumn, Column, StringColumn, date_to_days
from hub.catalogue.model import ResourceSpec
from hub.errors import InvalidArgument

if TYPE_CHECKING:
    from hub.cache.columns import _FixedColumn


class Op(Enum):
    EQUALS = "equals"
    NOT_EQUALS = "not_equals"
    IN = "in"
    PREFIX = "prefix"
    CONTAINS = "contains"
    AT_MOST = "at_most"
    AT_LEAST = "at_least"
    BEFORE = "before"
    AFTER = "after"
    UNSET = "unset"


_ORDERED = {Op.EQUALS, Op.NOT_EQUALS, Op.IN, Op.AT_MOST, Op.AT_LEAST, Op.BEFORE, Op.AFTER, Op.UNSET}
_TEXT = {Op.EQUALS, Op.NOT_EQUALS, Op.IN, Op.PREFIX, Op.UNSET}
OPS_BY_TYPE: dict[str, set[Op]] = {
    "string": _TEXT,
    "code": _TEXT,
    "date": _ORDERED,
    "int": _ORDERED,
    "decimal": _ORDERED,
    "bool": {Op.EQUALS, Op.NOT_EQUALS, Op.UNSET},
    "list": {Op.CONTAINS, Op.UNSET},
}
_COMPARE = {
    Op.EQUALS: np.equal,
    Op.NOT_EQUALS: np.not_equal,
    Op.AT_MOST: np.less_equal,
    Op.AT_LEAST: np.greater_equal,
    Op.BEFORE: np.less,
    Op.AFTER: np.greater,
}


@dataclass(frozen=True, slots=True)
class Claim:
    field: str
    op: Op = Op.EQUALS
    values: tuple[str, ...] = ()
    or_unset: bool = False


def _parse(kind: str, value: str, where: str) -> object:
    try:
        if kind == "date":
            return date_to_days(value)
        if kind == "int":
            number = int(value)
            if not -(2**63) <= number < 2**63:
                raise ValueError
            return number
        if kind == "decimal":
            return float(value)
        if kind == "bool":
            if value not in ("true", "false"):
                raise ValueError
            return int(value == "true")
    except ValueError:
        raise InvalidArgument(
            f"{where}: {value!r} is not a valid {kind}"
            + {"date": " (YYYY-MM-DD)", "int": " (a 64-bit integer)"}.get(kind, ""),
            field=where,
        ) from None
    return value


class Compiled:
    """A checked claim, ready to evaluate against any version of its resource."""

    __slots__ = ("field", "kind", "op", "operand", "or_unset", "per_key", "test")

    def __init__(self, field: str, kind: str, op: Op, operand: object, or_unset: bool, per_key: bool) -> None:
        self.field = field
        self.kind = kind
        self.op = op
        self.operand: Any = operand  # a scalar, a frozenset (IN), or an array (per key): the op says which
        self.or_unset = or_unset
        self.per_key = per_key
        #: ``test(column, row) -> bool``: the claim on one row, specialised to the field's kind and the op.
        self.test = _scalar_test(kind, op, operand, or_unset)

    # -- many rows -------------------------------------------------------------------------------

    def test_rows(self, col: Column, rows: np.ndarray) -> np.ndarray:
        """Per row, whether the claim holds. ``rows`` are valid row numbers."""
        valid = col.valid(rows)
        if self.op is Op.UNSET:
            return ~valid
        if isinstance(col, CodeColumn):
            hit = self._codes(col, col.codes.arr[rows])
        elif isinstance(col, StringColumn):
            hit = self._strings(col.take(rows))
        else:
            hit = self._numbers(cast("_FixedColumn", col).values.arr[rows])
        return np.where(valid, hit, self.or_unset)

    def _numbers(self, values: np.ndarray) -> np.ndarray:
        if self.op is Op.IN:
            return np.isin(values, np.fromiter(self.operand, dtype=values.dtype))
        return cast(np.ndarray, _COMPARE[self.op](values, self.operand))

    def _codes(self, col: CodeColumn, codes: np.ndarray) -> np.ndarray:
        op, operand, lookup = self.op, self.operand, col.lookup
        if op in (Op.EQUALS, Op.NOT_EQUALS):
            if self.per_key:
                wanted: np.ndarray | int = np.fromiter(
                    map(lookup.get, operand, repeat(-2)), dtype=np.int32, count=len(operand)
                )
            else:
                wanted = lookup.get(operand, -2)
            return cast(np.ndarray, (codes == wanted) if op is Op.EQUALS else (codes != wanted))
        # IN and PREFIX: test the (few) categories once, then gather per row.
        if op is Op.IN:
            return cast(np.ndarray, col.category_mask(operand.__contains__)[codes])
        if not self.per_key:
            return cast(np.ndarray, col.category_mask(lambda c: c.startswith(operand))[codes])
        return self._grouped(codes, lambda sub, p: col.category_mask(lambda c: c.startswith(p))[sub])

    def _strings(self, arr: pa.Array) -> np.ndarray:
        op, operand = self.op, self.operand
        if op in (Op.EQUALS, Op.NOT_EQUALS):
            other = pa.array(operand, pa.large_string()) if self.per_key else operand
            result = pc.equal(arr, other) if op is Op.EQUALS else pc.not_equal(arr, other)
        elif op is Op.IN:
            result = pc.is_in(arr, value_set=pa.array(sorted(operand), pa.large_string()))
        elif op is Op.PREFIX:
            if self.per_key:
                return self._grouped(arr, lambda sub, p: _bools(pc.starts_with(sub, pattern=p)))
            result = pc.starts_with(arr, pattern=operand)
        else:  # CONTAINS
            if self.per_key:
                return self._grouped(
                    arr, lambda sub, v: _bools(pc.match_substring(sub, pattern=f"{LIST_SEP}{v}{LIST_SEP}"))
                )
            result = pc.match_substring(arr, pattern=f"{LIST_SEP}{operand}{LIST_SEP}")
        return _bools(result)

    def _grouped(self, values: np.ndarray | pa.Array, fn: Callable[[Any, Any], np.ndarray]) -> np.ndarray:
        """Applies ``fn(values_subset, operand)`` once per distinct per-key operand."""
        distinct, inverse = np.unique(np.asarray(self.operand, dtype=object), return_inverse=True)
        out = np.zeros(len(inverse), dtype=bool)
        # rows grouped by operand with one sort: linear in the keys, however many operands differ
        order = np.argsort(inverse, kind="stable")
        bounds = np.concatenate(([0], np.cumsum(np.bincount(inverse, minlength=len(distinct)))))
        for i, operand in enumerate(distinct):
            where = order[bounds[i] : bounds[i + 1]]
            sub = values.take(pa.array(where)) if isinstance(values, pa.Array) else values[where]
            out[where] = fn(sub, operand)
        return out


def _value_getter(kind: str) -> Callable[[Any, int], object]:
    """``get(column, row)``: the row's value as Python, or None when unset."""
    if kind == "code":

        def get(col: Any, row: int) -> object:
            code = col.codes.arr[row]
            return col.categories[code] if code >= 0 else None

    elif kind in ("string", "list"):

        def get(col: Any, row: int) -> object:
            return col.raw(row).decode() if col.validity.arr[row] else None

    elif kind == "decimal":

        def get(col: Any, row: int) -> object:
            value = col.values.arr[row]
            return None if value != value else value  # NaN is unset

    else:

        def get(col: Any, row: int) -> object:
            value = col.values.arr[row]
            return None if value == col.null else value

    return get


_SCALAR_OPS = {
    Op.EQUALS: operator.eq,
    Op.NOT_EQUALS: operator.ne,
    Op.IN: lambda value, operand: value in operand,
    Op.PREFIX: str.startswith,
    Op.CONTAINS: lambda value, pattern: pattern in value,
    Op.AT_MOST: operator.le,
    Op.AT_LEAST: operator.ge,
    Op.BEFORE: operator.lt,
    Op.AFTER: operator.gt,
}


def _scalar_test(kind: str, op: Op, operand: object, or_unset: bool) -> Callable[[Any, int], bool]:
    get = _value_getter(kind)
    if op is Op.UNSET:
        return lambda col, row: get(col, row) is None
    if op is Op.CONTAINS:
        operand = f"{LIST_SEP}{operand}{LIST_SEP}"
    fn = _SCALAR_OPS[op]

    def test(col: Any, row: int) -> bool:
        value = get(col, row)
        if value is None:
            return or_unset
        return bool(fn(value, operand))

    return test


def _bools(arr: pa.Array) -> np.ndarray:
    return cast(np.ndarray, pc.fill_null(arr, False).to_numpy(zero_copy_only=False))


def compile_claims(
    spec: ResourceSpec, claims: Sequence[Claim], n_keys: int | None = None, prefix: str = "claims"
) -> list[Compiled]:
    """Checks and parses claims. ``n_keys`` is set for a batch: values may come one per key."""
    compiled = []
    for i, claim in enumerate(claims):
        where = f"{prefix}[{i}]"
        field = spec.by_name.get(claim.field)
        if field is None:
            raise InvalidArgument(
                f"{where}.field: {claim.field!r} is not a field of {spec.name}", field=f"{where}.field"
            )
        kind = field.type
        if claim.op not in OPS_BY_TYPE[kind]:
            allowed = ", ".join(sorted(o.name for o in OPS_BY_TYPE[kind]))
            raise InvalidArgument(
                f"{where}.op: {claim.op.name} does not apply to {kind} field {field.name!r} (use one of {allowed})",
                field=f"{where}.op",
            )
        values = claim.values
        per_key = False
        if claim.op is Op.UNSET:
            operand: object = None
        elif claim.op is Op.IN:
            if not values:
                raise InvalidArgument(f"{where}.values: IN needs at least one value", field=f"{where}.values")
            operand = frozenset(_parse(kind, v, f"{where}.values") for v in values)
        elif len(values) == 1:
            operand = _parse(kind, values[0], f"{where}.values[0]")
        elif n_keys is not None and len(values) == n_keys and n_keys > 1:
            per_key = True
            operand = _parse_column(kind, values, f"{where}.values")
        else:
            expected = "one value" if n_keys is None else f"one value or {n_keys} (one per key)"
            raise InvalidArgument(
                f"{where}.values: {claim.op.name} needs {expected}, got {len(values)}", field=f"{where}.values"
            )
        compiled.append(Compiled(field.name, kind, claim.op, operand, claim.or_unset, per_key))
    return compiled


def _parse_column(kind: str, values: Sequence[str], where: str) -> object:
    """Per-key values, parsed vectorised where the type allows."""
    if kind in ("string", "code", "list"):
        return list(values)
    try:
        if kind == "date":
            return pc.cast(pa.array(values, pa.string()), pa.date32()).cast(pa.int32()).to_numpy()
        if kind in ("int", "decimal"):
            target = pa.int64() if kind == "int" else pa.float64()
            return pc.cast(pa.array(values, pa.string()), target).to_numpy()
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        for i, v in enumerate(values):  # find the culprit for the message
            _parse(kind, v, f"{where}[{i}]")
    return np.array([_parse(kind, v, f"{where}[{i}]") for i, v in enumerate(values)])
