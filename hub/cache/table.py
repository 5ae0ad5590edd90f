"""A resource's cached rows: columns, key index, and immutable versions.

The writer (the feeder thread) applies one micro-batch at a time and then
publishes a new :class:`TableVersion`. A reader takes ``table.version`` once
and uses only that object, so it never sees a half-applied batch.

Layout ("append and compact"):

- Every upsert appends a row; the key index points the key at the new row and
  the old row becomes dead. A delete points the key at nothing.
- The key index is a large ``base`` (hub.cache.key_index: a dict, or sorted
  hashes and rows) and a small ``delta`` dict that is copied on write for
  each batch (so versions stay immutable at the cost of copying only the
  delta). When the delta grows past an eighth of the base, it is merged into a
  new base. A record's key field must equal its Kafka key (a hashed base
  checks a hash's key in the key column); a record whose key field differs is
  skipped.
- When dead rows exceed a third of the live ones (and a small floor), the table
  is compacted: the live rows are gathered into new columns and the index
  renumbered. Memory therefore stays within a constant factor of the live data
  under any churn.
- Fields marked ``indexed`` get a secondary index value → tuple of rows, kept
  as a base dict and a delta dict.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, repeat
from typing import Any, Generic, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.json as pj

from hub.cache.columns import Column, StringColumn, new_column
from hub.cache.heap import release_free_memory
from hub.cache.key_index import KeyIndex, built_index, new_index, overlay
from hub.catalogue.model import ResourceSpec
from hub.records.change import Change

log = logging.getLogger(__name__)

DELTA_MIN = 65536
# A floor only so that a small table is not compacted on every batch: past 12,288 live rows the bound is a third.
COMPACT_MIN_DEAD = 4096
_MISSING = -2
_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class Watermark:
    """The Kafka position a version reflects."""

    offsets: tuple[int, ...]  # next offset to apply, per partition
    caught_up_at_ms: int = 0
    last_record_at_ms: int = 0

    @classmethod
    def merged(cls, marks: Sequence[Watermark]) -> Watermark:
        """Shards hold disjoint partitions: per partition the furthest offset, the oldest catch-up."""
        size = max(len(m.offsets) for m in marks)
        return cls(
            tuple(max((m.offsets[p] if p < len(m.offsets) else 0) for m in marks) for p in range(size)),
            min(m.caught_up_at_ms for m in marks),
            max(m.last_record_at_ms for m in marks),
        )


@dataclass(frozen=True, slots=True)
class Layered(Generic[_V]):
    """A dict index as an immutable base plus a small delta that overrides it."""

    base: dict[str, _V]
    delta: dict[str, _V] = field(default_factory=dict)

    def get(self, key: str, default: _V) -> _V:
        hit = self.delta.get(key, _MISSING)
        return self.base.get(key, default) if hit is _MISSING else hit  # type: ignore[return-value]  # not _MISSING: a _V

    def __len__(self) -> int:  # approximate: for statistics only
        return len(self.base) + len(self.delta)


@dataclass(frozen=True, slots=True)
class KeyRows:
    """The key index: the settled ``base`` and the keys written since, which override it (-1: deleted)."""

    base: KeyIndex
    delta: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:  # approximate: for statistics only
        return len(self.base) + len(self.delta)

    def merged(self) -> KeyRows:
        return KeyRows(self.base.merged(self.delta))


class TableVersion:
    """An immutable view of a resource's cache. Safe to use from any thread."""

    __slots__ = ("columns", "index", "key_column", "live", "n_rows", "secondary", "spec", "watermark")

    def __init__(
        self,
        spec: ResourceSpec,
        columns: dict[str, Column],
        n_rows: int,
        index: KeyRows,
        secondary: dict[str, Layered[tuple[int, ...]]],
        live: int,
        watermark: Watermark,
    ) -> None:
        self.spec = spec
        self.columns = columns
        self.key_column = columns[spec.key]
        self.n_rows = n_rows
        self.index = index
        self.secondary = secondary
        self.live = live
        self.watermark = watermark

    def row(self, key: str) -> int:
        """The row of ``key``, or -1."""
        index = self.index
        row = index.delta.get(key, _MISSING)
        if row == _MISSING:
            return index.base.get(key, -1)
        return row

    def rows(self, keys: Sequence[str]) -> np.ndarray:
        """Rows of many keys (-1 where absent)."""
        index = self.index
        rows = index.base.get_many(keys)
        if index.delta:  # empty once the writer has settled (see ResourceTable.settle)
            override = np.array(list(map(index.delta.get, keys, repeat(_MISSING))), dtype=np.int64)
            rows = np.where(override != _MISSING, override, rows)
        return rows

    def rows_by(self, field_name: str, value: str) -> tuple[int, ...]:
        """Rows whose indexed field equals ``value``."""
        return self.secondary[field_name].get(value, ())

    def rows_by_many(self, field_name: str, values: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Rows for many values of an indexed field: (flat rows, index of the value each row belongs to)."""
        layered = self.secondary[field_name]
        groups = list(map(layered.get, values, repeat(())))
        lengths = np.fromiter(map(len, groups), dtype=np.int64, count=len(groups))
        flat = np.fromiter(chain.from_iterable(groups), dtype=np.int64, count=int(lengths.sum()))
        owner = np.repeat(np.arange(len(groups)), lengths)
        return flat, owner

    def record(self, row: int, fields: Sequence[str] | None = None) -> dict[str, Any]:
        names = fields or [f.name for f in self.spec.fields]
        columns = self.columns
        return {name: columns[name].value(row) for name in names}

    def live_rows(self) -> np.ndarray:
        """Row numbers of the live records, ascending."""
        return np.sort(_live_rows(self.index))

    def iter_batches(self, chunk_rows: int) -> Iterator[pa.RecordBatch]:
        """The live rows as record batches of at most ``chunk_rows`` (bounded extra memory)."""
        rows = self.live_rows()
        for start in range(0, len(rows), chunk_rows):
            part = rows[start : start + chunk_rows]
            yield pa.record_batch(
                [self.columns[f.name].take(part) for f in self.spec.fields], names=[f.name for f in self.spec.fields]
            )

    def empty_batch(self) -> pa.RecordBatch:
        none = np.zeros(0, dtype=np.int64)
        return pa.record_batch(
            [self.columns[f.name].take(none) for f in self.spec.fields], names=[f.name for f in self.spec.fields]
        )

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in self.columns.values())


def _live_rows(index: KeyRows) -> np.ndarray:
    rows = index.base.live_rows()
    if not index.delta:
        return rows
    # A key in the delta overrides its base row (-1: deleted).
    overridden = index.base.get_many(list(index.delta))
    written = np.fromiter(index.delta.values(), dtype=np.int64, count=len(index.delta))
    return np.concatenate((rows[~np.isin(rows, overridden[overridden >= 0])], written[written >= 0]))


class ResourceTable:
    """The writer side of one resource's cache. Not thread-safe: one writer."""

    def __init__(self, spec: ResourceSpec, partitions: int) -> None:
        self.spec = spec
        self.partitions = partitions
        self._parse_options = pj.ParseOptions(
            explicit_schema=pa.schema([(f.name, new_column(f).json_type) for f in spec.fields]),
            unexpected_field_behavior="ignore",
        )
        self._read_options = pj.ReadOptions(use_threads=False, block_size=16 << 20)
        self.version = self._empty(Watermark((0,) * partitions))
        self.rejected = 0  # records on the topic that could not be decoded
        self.compactions = 0
        self._settled = True  # nothing written since the last settle

    def _empty(self, watermark: Watermark) -> TableVersion:
        columns = {f.name: new_column(f) for f in self.spec.fields}
        secondary: dict[str, Layered[tuple[int, ...]]] = {name: Layered({}) for name in self.spec.indexed_fields}
        index = KeyRows(new_index(self.spec.key_index, columns[self.spec.key]))
        return TableVersion(self.spec, columns, 0, index, secondary, 0, watermark)

    # -- applying changes ------------------------------------------------------------------------

    def apply(self, changes: Sequence[Change]) -> TableVersion:
        """Applies a micro-batch and publishes the resulting version."""
        if not changes:
            return self.version
        old = self.version
        latest = {c.key: c.value for c in changes}  # the last change of a key wins
        upserts = {k: v for k, v in latest.items() if v is not None}
        delete_keys = [k for k, v in latest.items() if v is None]
        parsed, upsert_keys = self._decode(list(upserts), list(upserts.values()))
        if parsed is not None:
            parsed, upsert_keys = self._keyed(parsed, upsert_keys)

        columns = old.columns
        n0 = old.n_rows
        for f in self.spec.fields:
            if parsed is not None:
                columns[f.name].append(parsed.column(f.name))
        n1 = n0 + len(upsert_keys)
        new_rows = list(range(n0, n1))  # one int per row, shared by the key index and the secondary indexes

        touched = upsert_keys + delete_keys
        old_rows = old.rows(touched) if touched else np.zeros(0, dtype=np.int64)
        replaced = int((old_rows >= 0).sum())
        delta = dict(old.index.delta)
        delta.update(zip(upsert_keys, new_rows, strict=True))
        delta.update(zip(delete_keys, repeat(-1)))
        live = old.live + len(upsert_keys) - replaced
        index = KeyRows(old.index.base, delta)
        secondary = self._update_secondary(old, old_rows, new_rows, parsed)

        watermark = self._advance(old.watermark, changes)
        version = TableVersion(self.spec, columns, n1, index, secondary, live, watermark)
        version = self._maintain(version)
        self.version = version
        self._settled = False
        return version

    def _decode(self, keys: list[str], values: list[bytes]) -> tuple[pa.Table | None, list[str]]:
        """Decodes JSON values into a typed Arrow table, skipping (and counting) undecodable ones."""
        if not values:
            return None, keys
        try:
            return self._read(b"\n".join(values)), keys
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        good_keys, tables = [], []
        for key, value in zip(keys, values, strict=True):
            try:
                tables.append(self._read(value))
                good_keys.append(key)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                self.rejected += 1
                log.error("%s: skipping undecodable record %s: %s", self.spec.name, key, exc)
        if not tables:
            return None, []
        return pa.concat_tables(tables), good_keys

    def _keyed(self, parsed: pa.Table, keys: list[str]) -> tuple[pa.Table, list[str]]:
        """Skips (and counts) records whose key field is not their Kafka key: the key index finds a key's
        row by checking the key column."""
        held = parsed.column(self.spec.key).to_pylist()
        if held == keys:
            return parsed, keys
        same = [a == b for a, b in zip(held, keys, strict=True)]
        for key, ok in zip(keys, same, strict=True):
            if not ok:
                self.rejected += 1
                log.error("%s: skipping record %s: its %s is not its key", self.spec.name, key, self.spec.key)
        return parsed.filter(pa.array(same)), [k for k, ok in zip(keys, same, strict=True) if ok]

    def _read(self, data: bytes) -> pa.Table:
        table = pj.read_json(pa.BufferReader(data), read_options=self._read_options, parse_options=self._parse_options)
        for f in self.spec.fields:  # fail the batch on an impossible date here, not half-way through
            if f.type == "date":
                table.column(f.name).cast(pa.date32())
        return table

    def _update_secondary(
        self, old: TableVersion, old_rows: np.ndarray, new_rows: list[int], parsed: pa.Table | None
    ) -> dict[str, Layered[tuple[int, ...]]]:
        if not old.secondary:
            return old.secondary
        out = {}
        dead = old_rows[old_rows >= 0].tolist()
        for name, layered in old.secondary.items():
            col = old.columns[name]
            new_values = _new_values(parsed, name, col, new_rows)
            delta = dict(layered.delta)

            def current(
                value: str, layered: Layered[tuple[int, ...]] = layered, delta: dict[str, tuple[int, ...]] = delta
            ) -> tuple[int, ...]:
                hit = delta.get(value, _MISSING)
                return layered.base.get(value, ()) if hit is _MISSING else hit  # type: ignore[return-value]  # not _MISSING: a tuple

            for row in dead:
                for value in _index_values(col.value(row)):
                    delta[value] = tuple(r for r in current(value) if r != row)
            for row, new in zip(new_rows, new_values, strict=True):  # same length: _new_values
                for value in _index_values(new):
                    delta[value] = (*current(value), row)
            out[name] = Layered(layered.base, delta)
        return out

    def _advance(self, wm: Watermark, changes: Sequence[Change]) -> Watermark:
        offsets = list(wm.offsets)
        newest = wm.last_record_at_ms
        for c in changes:
            if c.offset >= offsets[c.partition]:
                offsets[c.partition] = c.offset + 1
        newest = max(newest, max(c.timestamp_ms for c in changes))
        return Watermark(tuple(offsets), wm.caught_up_at_ms, newest)

    def positions(self) -> tuple[int, ...]:
        return self.version.watermark.offsets

    def mark_caught_up(self, at_ms: int | None = None) -> None:
        v = self.version
        wm = Watermark(v.watermark.offsets, at_ms or int(time.time() * 1000), v.watermark.last_record_at_ms)
        self.version = TableVersion(v.spec, v.columns, v.n_rows, v.index, v.secondary, v.live, wm)

    def settle(self) -> bool:
        """Tidies up after writes: merges the index deltas into their bases, so reads do one lookup per key
        instead of two; fits the column buffers to their rows (growth leaves up to a third of them empty);
        and hands the memory this and the load freed back to the system.

        Called by the feeder when the topics are quiet; O(live keys), off the read path.
        Returns whether anything was written since the last settle.
        """
        if self._settled:
            return False
        self._settled = True
        v = self.version
        if v.index.delta or any(s.delta for s in v.secondary.values()):
            self.version = self._merge(v)
        for column in v.columns.values():
            column.fit()
        release_free_memory()
        return True

    # -- keeping memory bounded ------------------------------------------------------------------

    def _maintain(self, v: TableVersion) -> TableVersion:
        dead = v.n_rows - v.live
        if dead > max(COMPACT_MIN_DEAD, v.live // 3):
            return self._compact(v)
        if len(v.index.delta) > max(DELTA_MIN, len(v.index.base) >> 3):
            return self._merge(v)
        return v

    @staticmethod
    def _merged(layered: Layered[_V], drop_if: Callable[[_V], bool]) -> dict[str, _V]:
        base = dict(layered.base)
        overlay(base, layered.delta, drop_if)
        return base

    def _merge(self, v: TableVersion) -> TableVersion:
        index = v.index.merged()
        secondary = {n: Layered(self._merged(s, lambda rows: not rows)) for n, s in v.secondary.items()}
        return TableVersion(v.spec, v.columns, v.n_rows, index, secondary, v.live, v.watermark)

    def _compact(self, v: TableVersion) -> TableVersion:
        started = time.perf_counter()
        base = v.index.merged().base
        keep = np.sort(base.live_rows())
        new_of_old = np.empty(v.n_rows, dtype=object)  # one int object a row, shared by the indexes
        new_of_old[keep] = _row_ints(len(keep))
        columns = {name: col.compacted(keep) for name, col in v.columns.items()}
        index = KeyRows(base.renumbered(columns[self.spec.key], new_of_old))
        secondary = {}
        for name, layered in v.secondary.items():
            merged = self._merged(layered, lambda rows: not rows)
            secondary[name] = Layered({value: tuple(new_of_old[list(rows)].tolist()) for value, rows in merged.items()})
        self.compactions += 1
        log.info(
            "%s: compacted %d rows to %d in %.0f ms",
            self.spec.name,
            v.n_rows,
            len(keep),
            (time.perf_counter() - started) * 1000,
        )
        return TableVersion(v.spec, columns, len(keep), index, secondary, len(keep), v.watermark)

    # -- snapshots -------------------------------------------------------------------------------

    def load(self, table: pa.Table, watermark: Watermark) -> TableVersion:
        """Replaces the contents with ``table`` (live rows, as from :meth:`TableVersion.iter_batches`)."""
        fresh = self._empty(watermark)
        for f in self.spec.fields:
            fresh.columns[f.name].append(table.column(f.name))
        n = table.num_rows
        key_column = fresh.columns[self.spec.key]
        rows = _row_ints(n)
        index = KeyRows(built_index(self.spec.key_index, key_column, table.column(self.spec.key).to_pylist(), rows))
        secondary = {}
        for name in self.spec.indexed_fields:
            if self.spec.field(name).type == "list":
                groups: dict[str, list[int]] = {}
                for row in rows.tolist():
                    for value in _index_values(fresh.columns[name].value(row)):
                        groups.setdefault(value, []).append(row)
                secondary[name] = Layered({k: tuple(v) for k, v in groups.items()})
            else:
                secondary[name] = Layered(_group_rows(table.column(name), rows))
        self.version = TableVersion(self.spec, fresh.columns, n, index, secondary, n, watermark)
        return self.version


def _new_values(parsed: pa.Table | None, name: str, col: Column, new_rows: list[int]) -> list[object]:
    """The appended rows' values of an indexed field: straight from the decoded batch for a text field,
    which the column stores as decoded; otherwise (a list, which the column normalises; a date; a batch
    whose rows do not line up) read back from the column row by row."""
    if parsed is not None and type(col) is StringColumn and parsed.num_rows == len(new_rows):
        arrow = parsed.column(name)
        if pa.types.is_string(arrow.type) or pa.types.is_large_string(arrow.type):
            values: list[object] = arrow.to_pylist()
            return values
    return [col.value(row) for row in new_rows]


def _index_values(value: object) -> Iterable[str]:
    """The index entries of a value: none when unset, each item of a list."""
    if value is None:
        return ()
    if isinstance(value, list):
        return dict.fromkeys(value)
    return (value,)  # type: ignore[return-value]  # indexed fields are looked up by string values


def _row_ints(n: int) -> np.ndarray:
    """Row numbers 0..n-1 as one int object each (an object array): the key index and the secondary
    indexes then hold the same ints, not one each per index (32 bytes a row an index: ~130 MiB at city scale)."""
    out = np.empty(n, dtype=object)
    out[:] = range(n)
    return out


def _group_rows(column: pa.ChunkedArray, row_ints: np.ndarray) -> dict[str, tuple[int, ...]]:
    """value → rows holding it (the ints of ``row_ints``), built with one sort instead of a dict append per row."""
    encoded = column.combine_chunks().dictionary_encode()
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    bounds = np.flatnonzero(np.diff(sorted_codes)) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [len(codes)]))
    values = encoded.dictionary.to_pylist()
    rows = row_ints[order].tolist()
    return {
        values[sorted_codes[s]]: tuple(rows[s:e])
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
        if e > s and sorted_codes[s] >= 0
    }
