"""The settled part of a table's key index (key → row), in one of two layouts a resource chooses
(``key_index`` in the catalogue):

- :class:`DictIndex`, the default: a dict. A lookup is one C-level probe (~0.05 µs), and a key takes
  about 150 bytes: the key as a Python string (~80), the row as an int object (32) and the dict's table.
- :class:`HashIndex`: two sorted NumPy arrays, each key's 64-bit hash and its row, 16 bytes a key. The
  key itself is not stored; it is in the table's key column, and a lookup that finds the hash checks
  the column's key at that row, so a key that is not held never matches another key's hash. A lookup
  takes ~1.4 µs. For a large resource read mostly through an indexed field (credit entries, found by
  credit code): at city scale its 2.8M keys take 43 MiB instead of ~400.

Both are immutable once built, like the version that holds them; the key column is only appended to,
so a row an index names stays readable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from typing import Protocol, TypeVar

import numpy as np

from hub.cache.columns import Column
from hub.cache.heap import dict_bytes

key_hash = hash  # module-level so that a test can force collisions
_V = TypeVar("_V")


def overlay(out: dict[str, _V], delta: dict[str, _V], dropped: Callable[[_V], bool]) -> None:
    """Writes ``delta`` over ``out`` (a copy of a base), removing the keys whose new value is ``dropped``."""
    out.update(delta)
    for key in [k for k, v in delta.items() if dropped(v)]:
        del out[key]


class KeyIndex(Protocol):
    """What a table needs of its settled key index."""

    def get(self, key: str, default: int, /) -> int: ...

    def get_many(self, keys: Sequence[str]) -> np.ndarray:
        """Rows of ``keys`` (-1 where absent)."""

    def merged(self, delta: dict[str, int]) -> KeyIndex:
        """This index with ``delta`` applied (a row of -1 deletes the key)."""

    def renumbered(self, column: Column, new_of_old: np.ndarray) -> KeyIndex:
        """The same keys at their rows after a compaction: ``new_of_old`` holds each kept row's new
        number (an object array of the int objects the secondary indexes share), ``column`` is the
        compacted key column."""

    def live_rows(self) -> np.ndarray:
        """Every row the index holds, in no particular order."""

    def __len__(self) -> int: ...

    @property
    def nbytes(self) -> int: ...


def new_index(kind: str, column: Column) -> KeyIndex:
    return HashIndex.empty(column) if kind == "hashed" else DictIndex()


def built_index(kind: str, column: Column, keys: Sequence[str], rows: np.ndarray) -> KeyIndex:
    """The index of distinct ``keys`` at ``rows`` (an object array of int objects)."""
    if kind == "hashed":
        return HashIndex.build(column, keys, rows.astype(np.int64))
    return DictIndex(zip(keys, rows.tolist(), strict=True))


class DictIndex(dict[str, int]):
    """Key → row in a dict (``get`` is dict's own)."""

    def get_many(self, keys: Sequence[str]) -> np.ndarray:
        return np.array(list(map(self.get, keys, repeat(-1))), dtype=np.int64)

    def merged(self, delta: dict[str, int]) -> DictIndex:
        if not delta:
            return self
        out = DictIndex(self)
        overlay(out, delta, lambda row: row < 0)
        return out

    def renumbered(self, column: Column, new_of_old: np.ndarray) -> DictIndex:
        return DictIndex(zip(self.keys(), new_of_old[self.live_rows()].tolist(), strict=True))

    def live_rows(self) -> np.ndarray:
        return np.fromiter(self.values(), dtype=np.int64, count=len(self))

    @property
    def nbytes(self) -> int:
        return dict_bytes(self)


def _hashes(keys: Iterable[str], count: int) -> np.ndarray:
    return np.fromiter(map(key_hash, keys), dtype=np.int64, count=count)


class HashIndex:
    """Key → row as sorted hashes and rows. Every hash in the arrays is unique and none is the hash of a
    key in ``exact``, the small dict of keys whose hashes collide with another held key's."""

    __slots__ = ("column", "exact", "hashes", "rows")

    def __init__(self, column: Column, hashes: np.ndarray, rows: np.ndarray, exact: dict[str, int]) -> None:
        self.column = column  # the table's key column: where a hash's key is checked
        self.hashes = hashes  # sorted, unique
        self.rows = rows
        self.exact = exact

    @classmethod
    def empty(cls, column: Column) -> HashIndex:
        return cls(column, np.zeros(0, np.int64), np.zeros(0, np.int64), {})

    @classmethod
    def build(cls, column: Column, keys: Sequence[str], rows: np.ndarray) -> HashIndex:
        hashes = _hashes(keys, len(keys))
        order = np.argsort(hashes, kind="stable")
        return cls._settled(column, hashes[order], np.asarray(rows, dtype=np.int64)[order], {})

    @classmethod
    def _settled(cls, column: Column, hashes: np.ndarray, rows: np.ndarray, exact: dict[str, int]) -> HashIndex:
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

    def _positions(self, keys: Sequence[str], wanted: np.ndarray) -> np.ndarray:
        """Per key (``wanted`` its hashes), where the arrays hold it, or -1; checked in the key column."""
        out = np.full(len(keys), -1, dtype=np.int64)
        hashes = self.hashes
        if not len(hashes):
            return out
        at = np.minimum(hashes.searchsorted(wanted), len(hashes) - 1)
        hit = np.flatnonzero(hashes[at] == wanted)
        if len(hit):
            held = self.column.take(self.rows[at[hit]]).to_pylist()
            same = np.fromiter(
                (a == keys[i] for a, i in zip(held, hit.tolist(), strict=True)), dtype=bool, count=len(hit)
            )
            out[hit[same]] = at[hit[same]]
        return out

    def get_many(self, keys: Sequence[str]) -> np.ndarray:
        out = np.full(len(keys), -1, dtype=np.int64)
        at = self._positions(keys, _hashes(keys, len(keys)))
        found = at >= 0
        out[found] = self.rows[at[found]]
        if self.exact:
            for i, key in enumerate(keys):
                row = self.exact.get(key)
                if row is not None:
                    out[i] = row
        return out

    def merged(self, delta: dict[str, int]) -> HashIndex:
        if not delta:
            return self
        keys = list(delta)
        rows = np.fromiter(delta.values(), dtype=np.int64, count=len(keys))
        hashes = _hashes(keys, len(keys))
        keep = np.ones(len(self.hashes), dtype=bool)
        replaced = self._positions(keys, hashes)  # the entries the delta's keys had
        keep[replaced[replaced >= 0]] = False
        exact = {k: r for k, r in self.exact.items() if k not in delta}
        live = rows >= 0
        order = np.argsort(hashes[live], kind="stable")
        new_hashes, new_rows = hashes[live][order], rows[live][order]
        base_hashes, base_rows = self.hashes[keep], self.rows[keep]
        at = base_hashes.searchsorted(new_hashes)
        return self._settled(
            self.column, np.insert(base_hashes, at, new_hashes), np.insert(base_rows, at, new_rows), exact
        )

    def renumbered(self, column: Column, new_of_old: np.ndarray) -> HashIndex:
        exact = {k: int(new_of_old[r]) for k, r in self.exact.items()}
        return HashIndex(column, self.hashes, new_of_old[self.rows].astype(np.int64), exact)

    def live_rows(self) -> np.ndarray:
        if not self.exact:
            return self.rows
        return np.concatenate((self.rows, np.fromiter(self.exact.values(), dtype=np.int64, count=len(self.exact))))

    def __len__(self) -> int:
        return len(self.hashes) + len(self.exact)

    @property
    def nbytes(self) -> int:
        return self.hashes.nbytes + self.rows.nbytes
