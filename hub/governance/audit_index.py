"""The audit trail as a queryable store (filled by hub.governance.audit_reader when asked).

Append-only and columnar: few-valued attributes (caller, action, resource, purpose, outcome) as
codes, times and counts as integers, and the subjects of every entry as 128-bit digests in two
NumPy arrays with the row they belong to. Both questions are vectorised scans: the citizen's
compares digests, the provider's compares resource codes. They are rare next to the writes, so
the store spends nothing on per-subject indexes when entries arrive.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import orjson

from hub.cache.columns import Buffer
from hub.records.change import Change

READ_ACTIONS = frozenset({"verify", "verify_batch", "lookup", "subscribe", "bulk"})
_CODED = ("kind", "chain", "caller", "subsystem", "action", "resource", "purpose", "outcome")


class _Codes:
    """Values of one attribute as int32 codes."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self.lookup: dict[str, int] = {}
        self.codes = Buffer(np.int32, 4096)

    def code(self, value: str | None) -> int:
        value = value or ""
        code = self.lookup.get(value)
        if code is None:
            code = self.lookup[value] = len(self.values)
            self.values.append(value)
        return code


class AuditIndex:
    """Applies the audit topic's messages. One writer (the reader's catch-up); queries from any thread."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self._positions = [0] * partitions
        self._coded = {name: _Codes() for name in _CODED}
        self._numbers = {name: Buffer(np.int64, 4096) for name in ("seq", "at_ms", "latency_us", "count")}
        self._cases: list[str] = []
        self._fields: list[tuple[str, ...]] = []
        self._field_sets: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._subject_hi = Buffer(np.uint64, 65536)
        self._subject_lo = Buffer(np.uint64, 65536)
        self._subject_row = Buffer(np.int64, 65536)
        self.rows = 0  # published last, so readers never see a half-appended batch
        self._high: dict[str, int] = {}  # per chain, the last seq indexed

    # -- FeedTarget ------------------------------------------------------------------------------

    def positions(self) -> tuple[int, ...]:
        return tuple(self._positions)

    def apply(self, changes: Sequence[Change]) -> None:
        row = self.rows
        coded, numbers = self._coded, self._numbers
        new_codes: dict[str, list[int]] = {name: [] for name in _CODED}
        new_numbers: dict[str, list[int]] = {name: [] for name in numbers}
        subjects: list[str] = []
        subject_rows: list[int] = []
        for change in changes:
            self._positions[change.partition] = max(self._positions[change.partition], change.offset + 1)
            for entry in orjson.loads(change.value or b'{"entries": []}')["entries"]:
                chain, seq = entry.get("chain"), entry.get("seq", -1)
                if seq <= self._high.get(chain, -1):  # a batch the writer sent again (at least once)
                    continue
                self._high[chain] = seq
                for name in _CODED:
                    new_codes[name].append(coded[name].code(entry.get(name)))
                for name in new_numbers:
                    new_numbers[name].append(entry.get(name) or 0)
                self._cases.append(entry.get("case_number") or "")
                fields = tuple(entry.get("fields") or ())
                self._fields.append(self._field_sets.setdefault(fields, fields))
                digests = entry.get("subjects") or ()
                subjects.extend(digests)
                subject_rows.extend([row] * len(digests))
                row += 1
        for name in _CODED:
            coded[name].codes.extend(np.array(new_codes[name], dtype=np.int32))
        for name, buffer in numbers.items():
            buffer.extend(np.array(new_numbers[name], dtype=np.int64))
        if subjects:
            pairs = np.frombuffer(bytes.fromhex("".join(subjects)), dtype=">u8").reshape(-1, 2)
            self._subject_hi.extend(pairs[:, 0].astype(np.uint64))
            self._subject_lo.extend(pairs[:, 1].astype(np.uint64))
            self._subject_row.extend(np.array(subject_rows, dtype=np.int64))
        self.rows = row

    @property
    def nbytes(self) -> int:
        """Roughly what the index takes: its arrays, and the case numbers' strings and list slots."""
        arrays = [c.codes for c in self._coded.values()] + list(self._numbers.values())
        arrays += [self._subject_hi, self._subject_lo, self._subject_row]
        return sum(b.arr.nbytes for b in arrays) + len(self._cases) * 70 + len(self._fields) * 8

    def mark_caught_up(self, at_ms: int) -> None:
        pass

    def settle(self) -> bool:
        return False

    # -- queries ---------------------------------------------------------------------------------

    def _entry(self, row: int) -> dict:
        entry = {name: c.values[c.codes.arr[row]] for name, c in self._coded.items()}
        entry.update({name: int(b.arr[row]) for name, b in self._numbers.items()})
        entry["case_number"] = self._cases[row]
        entry["fields"] = list(self._fields[row])
        entry["entry_id"] = f"{entry['chain']}:{entry['seq']}"
        return entry

    def _latest_first(self, rows: np.ndarray, limit: int) -> list[dict]:
        at = self._numbers["at_ms"].arr[rows]
        return [self._entry(int(r)) for r in rows[np.argsort(at, kind="stable")[::-1][:limit]]]

    def by_subject(self, digest: str, limit: int) -> list[dict]:
        """Entries that touched the subject with this digest, newest first."""
        n = self._subject_row.n
        hi, lo = np.frombuffer(bytes.fromhex(digest), dtype=">u8").astype(np.uint64)
        hits = (self._subject_hi.arr[:n] == hi) & (self._subject_lo.arr[:n] == lo)
        rows = np.unique(self._subject_row.arr[:n][hits])
        return self._latest_first(rows[rows < self.rows], limit)

    def by_resource(self, resource: str, limit: int) -> tuple[list[tuple[str, str, int]], list[dict], int]:
        """(reads per caller and purpose, the most recent reads, their total) of one resource."""
        n = self.rows
        resources, actions = self._coded["resource"], self._coded["action"]
        code = resources.lookup.get(resource)
        if code is None or n == 0:
            return [], [], 0
        reads = np.array([v in READ_ACTIONS for v in actions.values] + [False], dtype=bool)
        rows = np.flatnonzero((resources.codes.arr[:n] == code) & reads[actions.codes.arr[:n]])
        callers, purposes = self._coded["caller"], self._coded["purpose"]
        width = len(purposes.values)
        pairs = callers.codes.arr[rows].astype(np.int64) * width + purposes.codes.arr[rows]
        values, counts = np.unique(pairs, return_counts=True)
        usage = [
            (callers.values[p // width], purposes.values[p % width], c)
            for p, c in zip(values.tolist(), counts.tolist(), strict=True)
        ]
        return usage, self._latest_first(rows, limit), len(rows)
