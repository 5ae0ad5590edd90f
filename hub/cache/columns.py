"""Append-only column stores with an Arrow layout.

Each column keeps its values in growable NumPy buffers laid out as Arrow
arrays (offsets + bytes for strings, codes + categories for dictionary
encoded "code" fields, days for dates), so that:

- a single-key verify reads one value with no per-table work;
- a batch gathers rows with NumPy fancy indexing and compares vectorised;
- a snapshot is the same buffers written as Arrow IPC.

Concurrency contract: exactly one writer thread appends; any number of
readers read rows below the row count of the :class:`~hub.cache.table.TableVersion`
they hold. Appends never change rows already written, and a buffer that grows
is copied before the new array is published, so readers never see torn values.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import lru_cache
from typing import cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hub.catalogue.model import FieldSpec

INT32_NULL = np.iinfo(np.int32).min
INT32_MAX = np.iinfo(np.int32).max
INT64_NULL = np.iinfo(np.int64).min
LIST_SEP = "\x1f"
_EPOCH = dt.date(1970, 1, 1)


class Buffer:
    """A NumPy array that grows geometrically; ``arr[:n]`` holds the values."""

    __slots__ = ("arr", "n")

    def __init__(self, dtype: np.dtype | type, capacity: int = 1024) -> None:
        self.arr = np.empty(max(capacity, 16), dtype=dtype)
        self.n = 0

    def extend(self, values: np.ndarray) -> None:
        k = len(values)
        if self.n + k > len(self.arr):
            grown = np.empty(max(int(len(self.arr) * 1.5), self.n + k), dtype=self.arr.dtype)
            grown[: self.n] = self.arr[: self.n]
            self.arr = grown  # published only after the prefix is copied
        self.arr[self.n : self.n + k] = values
        self.n += k

    def widen(self, dtype: np.dtype | type) -> None:
        """Holds the values in a wider type from now on; copied and then published, as growth is."""
        self.arr = self.arr.astype(dtype)

    def fit(self) -> None:
        """Drops most of the headroom growth left (up to a third of the buffer), keeping 1/16 for the next
        writes; copied and then published, as growth is."""
        keep = max(self.n + (self.n >> 4), 16)
        if len(self.arr) - keep > keep >> 3:
            fitted = np.empty(keep, dtype=self.arr.dtype)
            fitted[: self.n] = self.arr[: self.n]
            self.arr = fitted

    @property
    def nbytes(self) -> int:
        return self.arr.nbytes


@lru_cache(maxsize=65536)
def date_to_days(value: str) -> int:
    return (dt.date.fromisoformat(value) - _EPOCH).days


def days_to_date(days: int) -> str:
    return (_EPOCH + dt.timedelta(days=int(days))).isoformat()


def _valid_mask(arr: pa.Array) -> np.ndarray:
    if arr.null_count == 0:
        return np.ones(len(arr), dtype=bool)
    return cast(np.ndarray, arr.is_valid().to_numpy(zero_copy_only=False))


def _bitmap(valid: np.ndarray) -> pa.Buffer | None:
    if valid.all():
        return None
    return pa.py_buffer(np.packbits(valid, bitorder="little"))


class Column(ABC):
    """One field's values. Rows are numbered from 0 in append order."""

    #: The Arrow type records of this column are parsed into from JSON.
    json_type: pa.DataType

    def __init__(self, spec: FieldSpec) -> None:
        self.spec = spec

    @abstractmethod
    def append(self, arr: pa.Array) -> None:
        """Appends values parsed from JSON (``json_type``) or read from a snapshot."""

    @abstractmethod
    def valid(self, rows: np.ndarray) -> np.ndarray:
        """Per row, whether the value is set."""

    @abstractmethod
    def is_set(self, row: int) -> bool: ...

    @abstractmethod
    def value(self, row: int) -> object:
        """The row's value as JSON-compatible Python (None when unset)."""

    @abstractmethod
    def take(self, rows: np.ndarray) -> pa.Array:
        """The given rows as an Arrow array."""

    @property
    @abstractmethod
    def nbytes(self) -> int: ...

    @abstractmethod
    def buffers(self) -> tuple[Buffer, ...]:
        """The growable buffers holding the values."""

    def fit(self) -> None:
        """Drops most growth headroom, once writes have paused."""
        for buffer in self.buffers():
            buffer.fit()

    def compacted(self, rows: np.ndarray) -> Column:
        """A new column holding only ``rows``, in that order."""
        fresh = type(self)(self.spec)
        fresh.append(self.take(rows))
        return fresh


class StringColumn(Column):
    """Variable-length UTF-8 strings: offsets and a byte buffer. The offsets are int32 until the bytes pass
    2 GiB, then int64: half the offsets' memory for every column a city has (~70 MiB at city scale)."""

    json_type = pa.string()

    def __init__(self, spec: FieldSpec) -> None:
        super().__init__(spec)
        self.offsets = Buffer(np.int32)
        self.offsets.extend(np.zeros(1, dtype=np.int32))
        self.data = Buffer(np.uint8, 16384)
        self.validity = Buffer(np.bool_)

    def append(self, arr: pa.Array) -> None:
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if not pa.types.is_large_string(arr.type):
            arr = arr.cast(pa.large_string())
        n = len(arr)
        _, offs, data = arr.buffers()
        offsets = np.frombuffer(offs, dtype=np.int64)[arr.offset : arr.offset + n + 1] if n else np.zeros(1, np.int64)
        start, end = int(offsets[0]), int(offsets[-1])
        if end > start:
            self.data.extend(np.frombuffer(data, dtype=np.uint8)[start:end])
        ends = offsets[1:] - start + int(self.offsets.arr[self.offsets.n - 1])
        if n and ends[-1] > INT32_MAX and self.offsets.arr.dtype != np.int64:
            self.offsets.widen(np.int64)
        self.offsets.extend(ends)
        self.validity.extend(_valid_mask(arr))

    def raw(self, row: int) -> bytes:
        off = self.offsets.arr
        return self.data.arr[off[row] : off[row + 1]].tobytes()

    def is_set(self, row: int) -> bool:
        return bool(self.validity.arr[row])

    def value(self, row: int) -> object:
        return self.raw(row).decode() if self.validity.arr[row] else None

    def valid(self, rows: np.ndarray) -> np.ndarray:
        return cast(np.ndarray, self.validity.arr[rows])

    def take(self, rows: np.ndarray) -> pa.Array:
        off = self.offsets.arr
        starts, ends = off[rows], off[rows + 1]
        lengths = ends - starts
        new_offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=new_offsets[1:])
        total = int(new_offsets[-1])
        if total:
            gather = np.repeat(starts - new_offsets[:-1], lengths) + np.arange(total, dtype=np.int64)
            data = self.data.arr[gather]
        else:
            data = np.zeros(0, dtype=np.uint8)
        return pa.LargeStringArray.from_buffers(
            len(rows), pa.py_buffer(new_offsets), pa.py_buffer(data), _bitmap(self.validity.arr[rows])
        )

    @property
    def nbytes(self) -> int:
        return self.offsets.nbytes + self.data.nbytes + self.validity.nbytes

    def buffers(self) -> tuple[Buffer, ...]:
        return self.offsets, self.data, self.validity


class ListColumn(StringColumn):
    """A list of strings, stored as one string "␟a␟b␟" so CONTAINS is a substring test."""

    json_type = pa.list_(pa.string())

    def append(self, arr: pa.Array) -> None:
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
            joined = pc.binary_join(arr, LIST_SEP)
            arr = pc.if_else(
                pc.equal(pc.list_value_length(arr), 0),
                pa.scalar(None, pa.string()),
                pc.binary_join_element_wise(LIST_SEP, joined, LIST_SEP, ""),
            )
        super().append(arr)

    def value(self, row: int) -> object:
        text = super().value(row)
        return text.strip(LIST_SEP).split(LIST_SEP) if isinstance(text, str) and text else None


class CodeColumn(Column):
    """Few distinct strings (status, district, category): codes + categories. The codes are int8 while
    there are at most 128 categories, then as wide as they need (a quarter of int32's memory for a city's
    code fields, ~35 MiB)."""

    json_type = pa.string()

    def __init__(self, spec: FieldSpec) -> None:
        super().__init__(spec)
        self.codes = Buffer(np.int8)
        self.categories: list[str] = []
        self.lookup: dict[str, int] = {}

    def code(self, value: str) -> int:
        """The code of ``value``, assigned on first sight (writer only)."""
        code = self.lookup.get(value)
        if code is None:
            code = len(self.categories)
            self.categories.append(value)  # readers only use codes they have seen in rows
            self.lookup[value] = code
        return code

    def append(self, arr: pa.Array) -> None:
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if not pa.types.is_dictionary(arr.type):
            arr = pc.dictionary_encode(arr)
        mapping = np.array([self.code(v) for v in arr.dictionary.to_pylist()] + [-1], dtype=np.int32)
        indices = pc.fill_null(arr.indices, -1).to_numpy(zero_copy_only=False)
        needed = next(t for t in (np.int8, np.int16, np.int32) if len(self.categories) - 1 <= np.iinfo(t).max)
        if np.dtype(needed).itemsize > self.codes.arr.itemsize:
            self.codes.widen(needed)
        self.codes.extend(mapping[indices])  # index -1 picks the trailing -1: null

    def is_set(self, row: int) -> bool:
        return bool(self.codes.arr[row] >= 0)

    def value(self, row: int) -> object:
        code = self.codes.arr[row]
        return self.categories[code] if code >= 0 else None

    def valid(self, rows: np.ndarray) -> np.ndarray:
        return cast(np.ndarray, self.codes.arr[rows] >= 0)

    def take(self, rows: np.ndarray) -> pa.Array:
        codes = self.codes.arr[rows]
        return pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0), pa.array(self.categories, pa.string()))

    def category_mask(self, predicate: Callable[[str], bool]) -> np.ndarray:
        """Per code, whether its category satisfies ``predicate``; one extra False at the end, so
        indexing with the null code -1 gives False."""
        categories = self.categories[:]  # the writer may append meanwhile
        return np.array([*map(predicate, categories), False], dtype=bool)

    @property
    def nbytes(self) -> int:
        return self.codes.nbytes + sum(len(c) + 60 for c in self.categories)

    def buffers(self) -> tuple[Buffer, ...]:
        return (self.codes,)


class _FixedColumn(Column):
    """Fixed-width numbers with a sentinel for "unset"."""

    dtype: type
    null: object

    def __init__(self, spec: FieldSpec) -> None:
        super().__init__(spec)
        self.values = Buffer(self.dtype)

    def _to_numpy(self, arr: pa.Array) -> np.ndarray:
        return cast(
            np.ndarray, pc.fill_null(arr, self.null).to_numpy(zero_copy_only=False).astype(self.dtype, copy=False)
        )

    def append(self, arr: pa.Array) -> None:
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        self.values.extend(self._to_numpy(arr))

    def is_set(self, row: int) -> bool:
        return bool(self.values.arr[row] != self.null)

    def valid(self, rows: np.ndarray) -> np.ndarray:
        return cast(np.ndarray, self.values.arr[rows] != self.null)

    def value(self, row: int) -> object:
        v = self.values.arr[row]
        return None if v == self.null else v.item()

    def take(self, rows: np.ndarray) -> pa.Array:
        values = self.values.arr[rows]
        return pa.array(values, mask=~self.valid(rows))

    @property
    def nbytes(self) -> int:
        return self.values.nbytes

    def buffers(self) -> tuple[Buffer, ...]:
        return (self.values,)


class DateColumn(_FixedColumn):
    """Dates as int32 days since 1970-01-01 (Arrow date32)."""

    json_type = pa.string()
    dtype = np.int32
    null = INT32_NULL

    def _to_numpy(self, arr: pa.Array) -> np.ndarray:
        if not pa.types.is_date32(arr.type):
            arr = arr.cast(pa.date32())
        return cast(np.ndarray, pc.fill_null(arr.cast(pa.int32()), INT32_NULL).to_numpy(zero_copy_only=False))

    def value(self, row: int) -> object:
        v = self.values.arr[row]
        return None if v == INT32_NULL else days_to_date(v)

    def take(self, rows: np.ndarray) -> pa.Array:
        return super().take(rows).cast(pa.date32())


class IntColumn(_FixedColumn):
    json_type = pa.int64()
    dtype = np.int64
    null = INT64_NULL


class DecimalColumn(_FixedColumn):
    """Decimals as float64; NaN is unset."""

    json_type = pa.float64()
    dtype = np.float64
    null = np.nan

    def is_set(self, row: int) -> bool:
        v = self.values.arr[row]
        return bool(v == v)  # NaN is unset

    def valid(self, rows: np.ndarray) -> np.ndarray:
        return cast(np.ndarray, ~np.isnan(self.values.arr[rows]))

    def value(self, row: int) -> object:
        v = self.values.arr[row]
        return None if np.isnan(v) else v.item()


class BoolColumn(_FixedColumn):
    json_type = pa.bool_()
    dtype = np.int8
    null = -1

    def _to_numpy(self, arr: pa.Array) -> np.ndarray:
        return cast(np.ndarray, pc.fill_null(arr.cast(pa.int8()), -1).to_numpy(zero_copy_only=False))

    def value(self, row: int) -> object:
        v = self.values.arr[row]
        return None if v < 0 else bool(v)

    def take(self, rows: np.ndarray) -> pa.Array:
        return super().take(rows).cast(pa.bool_())


COLUMN_TYPES: dict[str, type[Column]] = {
    "string": StringColumn,
    "code": CodeColumn,
    "date": DateColumn,
    "int": IntColumn,
    "decimal": DecimalColumn,
    "bool": BoolColumn,
    "list": ListColumn,
}


def new_column(spec: FieldSpec) -> Column:
    return COLUMN_TYPES[spec.type](spec)
