"""The settled part of a table's key index: key → row as two sorted NumPy arrays, not a dict of strings.

A dict holds every key as a Python string (~80 bytes), every row as an int object (32) and its own table
(~40): about 150 bytes a key, some 600 MiB for a city's 4.1M keys. Here a key takes 16 bytes: its
64-bit hash and its row, sorted by hash. The key itself is not stored; it is in the table's key column,
and a lookup that finds the hash checks the column's key at that row, so a key that is not held never
matches another key's hash. Keys whose hashes collide with another held key's are kept apart in a small
dict (``exact``). So every hash in the arrays is unique, and none is the hash of a key in ``exact``.

The hash is Python's string hash, randomised per process: the index lives in memory only (a snapshot
stores the rows, and loading one rebuilds the index).

Immutable once built, like the version that holds it; the key column is only appended to, so a row the
index names stays readable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from hub.cache.columns import Column

key_hash = hash  # module-level so that a test can force collisions


def _hashes(keys: Iterable[str], count: int) -> np.ndarray:
    return np.fromiter(map(key_hash, keys), dtype=np.int64, count=count)


class KeyIndex:
    """Key → row for the rows a table has settled. Safe to read from any thread."""

    __slots__ = ("column", "exact", "hashes", "rows")

    def __init__(self, column: Column, hashes: np.ndarray, rows: np.ndarray, exact: dict[str, int]) -> None:
        self.column = column  # the table's key column: where a hash's key is checked
        self.hashes = hashes  # sorted, unique
        self.rows = rows
        self.exact = exact

    @classmethod
    def empty(cls, column: Column) -> KeyIndex:
        return cls(column, np.zeros(0, np.int64), np.zeros(0, np.int64), {})

    @classmethod
    def build(cls, column: Column, keys: Sequence[str], rows: np.ndarray) -> KeyIndex:
        """The index of distinct ``keys`` at ``rows`` (their rows in ``column``)."""
        hashes = _hashes(keys, len(keys))
        order = np.argsort(hashes, kind="stable")
        return cls._settled(column, hashes[order], np.asarray(rows, dtype=np.int64)[order], {})

    @classmethod
    def _settled(cls, column: Column, hashes: np.ndarray, rows: np.ndarray, exact: dict[str, int]) -> KeyIndex:
        """From sorted hashes: moves every key whose hash is not unique (among the arrays and ``exact``)
        to ``exact``."""
        clash = np.zeros(len(hashes), dtype=bool)
        if len(hashes) > 1:
            same = hashes[1:] == hashes[:-1]
            clash[1:] |= same
            clash[:-1] |= same
        if exact:
            clash |= np.isin(hashes, _hashes(exact, len(exact)))
        if clash.any():
            exact = dict(exact)
            value = column.value
            exact.update((str(value(r)), r) for r in rows[clash].tolist())
            hashes, rows = hashes[~clash], rows[~clash]
        return cls(column, hashes, rows, exact)

    def get(self, key: str, default: int = -1) -> int:
        if self.exact:
            row = self.exact.get(key)
            if row is not None:
                return row
        hashes = self.hashes
        h = key_hash(key)
        i = int(hashes.searchsorted(h))
        if i < len(hashes) and hashes[i] == h:
            row = int(self.rows[i])
            if self.column.value(row) == key:
                return row
        return default

    def get_many(self, keys: Sequence[str]) -> np.ndarray:
        """Rows of ``keys`` (-1 where absent)."""
        n = len(keys)
        out = np.full(n, -1, dtype=np.int64)
        hashes = self.hashes
        if len(hashes):
            wanted = _hashes(keys, n)
            at = np.minimum(hashes.searchsorted(wanted), len(hashes) - 1)
            hit = np.flatnonzero(hashes[at] == wanted)
            if len(hit):
                rows = self.rows[at[hit]]
                held = self.column.take(rows).to_pylist()
                same = np.fromiter(
                    (a == keys[i] for a, i in zip(held, hit.tolist(), strict=True)), dtype=bool, count=len(hit)
                )
                out[hit[same]] = rows[same]
        if self.exact:
            for i, key in enumerate(keys):
                row = self.exact.get(key)
                if row is not None:
                    out[i] = row
        return out

    def merged(self, delta: dict[str, int]) -> KeyIndex:
        """This index with ``delta`` applied (a row of -1 deletes the key)."""
        if not delta:
            return self
        keys = list(delta)
        rows = np.fromiter(delta.values(), dtype=np.int64, count=len(keys))
        hashes = _hashes(keys, len(keys))
        keep = np.ones(len(self.hashes), dtype=bool)
        held = self.get_many(keys)  # where each delta key sits now
        if len(self.hashes):
            at = np.minimum(self.hashes.searchsorted(hashes), len(self.hashes) - 1)
            replaced = (held >= 0) & (self.rows[at] == held) & (self.hashes[at] == hashes)
            keep[at[replaced]] = False
        exact = {k: r for k, r in self.exact.items() if k not in delta}
        live = rows >= 0
        order = np.argsort(hashes[live], kind="stable")
        new_hashes, new_rows = hashes[live][order], rows[live][order]
        base_hashes, base_rows = self.hashes[keep], self.rows[keep]
        at = base_hashes.searchsorted(new_hashes)
        return self._settled(
            self.column, np.insert(base_hashes, at, new_hashes), np.insert(base_rows, at, new_rows), exact
        )

    def renumbered(self, column: Column, new_of_old: np.ndarray) -> KeyIndex:
        """The same keys at their rows after a compaction, in the compacted key ``column``."""
        exact = {k: int(new_of_old[r]) for k, r in self.exact.items()}
        return KeyIndex(column, self.hashes, new_of_old[self.rows].astype(np.int64), exact)

    def live_rows(self) -> np.ndarray:
        """Every row the index holds, in no particular order."""
        if not self.exact:
            return self.rows
        return np.concatenate((self.rows, np.fromiter(self.exact.values(), dtype=np.int64, count=len(self.exact))))

    def __len__(self) -> int:
        return len(self.hashes) + len(self.exact)

    @property
    def nbytes(self) -> int:
        return self.hashes.nbytes + self.rows.nbytes
