"""Answers verifications from one :class:`~hub.cache.table.TableVersion`.

By key (unique): found, and whether each claim holds for that record.
By an indexed field (non-unique, e.g. credit entries by credit code): found
if any record has that value; a claim holds if it holds for some record;
``match`` if one record satisfies every claim together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from hub.cache.claims import Compiled
from hub.cache.table import TableVersion
from hub.catalogue.model import ResourceSpec
from hub.errors import InvalidArgument
from hub.records.identifiers import CHECKS, quoted


class Outcome(NamedTuple):
    found: bool
    match: bool
    claims: list[bool]


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    found: np.ndarray
    match: np.ndarray
    claims: list[np.ndarray]
    invalid: list[tuple[int, str]]


def key_field_of(spec: ResourceSpec, key_field: str) -> str:
    """The field to look keys up by; raises for a field that is neither key nor indexed."""
    if not key_field or key_field == spec.key:
        return spec.key
    if key_field not in spec.indexed_fields:
        indexed = ", ".join(spec.indexed_fields) or "none"
        raise InvalidArgument(
            f"key_field: {key_field!r} is not the key or an indexed field of {spec.name} (indexed: {indexed})",
            field="key_field",
        )
    return key_field


def key_problem(spec: ResourceSpec, field_name: str, key: str) -> str | None:
    """Why ``key`` cannot be a value of the field, or None."""
    if not key:
        return "must not be empty"
    check = CHECKS.get(spec.field(field_name).format)
    if check is None:
        return None
    problem = check(key)
    fmt = spec.field(field_name).format
    return None if problem is None else f"{quoted(fmt, key)} is not a valid {fmt.replace('_', ' ')}: {problem}"


def verify_one(v: TableVersion, field_name: str, key: str, claims: Sequence[Compiled]) -> Outcome:
    columns = v.columns
    if field_name == v.spec.key:
        row = v.row(key)
        if row < 0:
            _raise_if_malformed(v.spec, field_name, key)
            return Outcome(False, False, [False] * len(claims))
        results = [c.test(columns[c.field], row) for c in claims]
        return Outcome(True, all(results), results)
    rows = v.rows_by(field_name, key)
    if not rows:
        _raise_if_malformed(v.spec, field_name, key)
        return Outcome(False, False, [False] * len(claims))
    tests = [(c.test, columns[c.field]) for c in claims]  # looked up once, not once a row
    # Each test stops at its first answer: a claim held by some row, and only if every claim is, a row
    # that holds them all (an entity's credit records are mostly not the serious kind a case asks for).
    per_claim = [any(test(column, r) for r in rows) for test, column in tests]
    match = all(per_claim) and any(all(test(column, r) for test, column in tests) for r in rows)
    return Outcome(True, match, per_claim)


def _raise_if_malformed(spec: ResourceSpec, field_name: str, key: str) -> None:
    problem = key_problem(spec, field_name, key)
    if problem is not None:
        raise InvalidArgument(f"key: {problem}", field="key")


def verify_many(v: TableVersion, field_name: str, keys: Sequence[str], claims: Sequence[Compiled]) -> BatchOutcome:
    """Vectorised over the keys: dict lookups in C, then NumPy/Arrow per claim."""
    n = len(keys)
    columns = v.columns
    if field_name == v.spec.key:
        rows = v.rows(keys)
        found = rows >= 0
        hit_rows = rows[found]
        per_claim = []
        match = found.copy()
        for c in claims:
            if c.per_key:
                c = _subset(c, found)
            result = np.zeros(n, dtype=bool)
            result[found] = c.test_rows(columns[c.field], hit_rows)
            per_claim.append(result)
            match &= result
    else:
        flat, owner = v.rows_by_many(field_name, keys)
        found = np.bincount(owner, minlength=n) > 0
        per_claim = []
        all_hold = np.ones(len(flat), dtype=bool)
        for c in claims:
            if c.per_key:
                c = _expand(c, owner)
            held = c.test_rows(columns[c.field], flat)
            all_hold &= held
            per_claim.append(np.bincount(owner, weights=held, minlength=n) > 0)
        match = np.bincount(owner, weights=all_hold, minlength=n) > 0 if n else found
    invalid = []
    for i in np.flatnonzero(~found).tolist():  # only misses can be malformed
        problem = key_problem(v.spec, field_name, keys[i])
        if problem is not None:
            invalid.append((i, f"keys[{i}]: {problem}"))
    return BatchOutcome(found, match, per_claim, invalid)


def _subset(c: Compiled, mask: np.ndarray) -> Compiled:
    operand = c.operand
    picked = np.asarray(operand, dtype=object)[mask].tolist() if isinstance(operand, list) else operand[mask]
    return Compiled(c.field, c.kind, c.op, picked, c.or_unset, True)


def _expand(c: Compiled, owner: np.ndarray) -> Compiled:
    operand = c.operand
    picked = np.asarray(operand, dtype=object)[owner].tolist() if isinstance(operand, list) else operand[owner]
    return Compiled(c.field, c.kind, c.op, picked, c.or_unset, True)
