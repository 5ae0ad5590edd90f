"""The process heap: what Python objects take on it, and handing freed memory back to the system."""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable
from itertools import islice
from typing import Any


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None
    return trim


_TRIM = _malloc_trim()


def release_free_memory() -> None:
    """Hands the heap memory already freed back to the system (glibc's ``malloc_trim``).

    glibc returns only the top of each heap on free; what was freed below live data stays resident.
    A load frees much of that kind (fetched batches, decoded JSON, replaced index dicts and column
    buffers, in the feeder's, librdkafka's and the server's own heaps): ~300 MiB at city scale that no
    component holds. Call once writes have paused; it takes the heaps' locks for a few milliseconds.
    """
    if _TRIM is not None:
        _TRIM(0)


def object_bytes(o: object) -> int:
    """What an object takes on the heap: Python gives objects of up to 512 bytes blocks in steps of 16 (an
    18-character key, 67 bytes, takes 80), which over millions of index keys is a quarter more."""
    size = sys.getsizeof(o)
    return (size + 15) & ~15 if size <= 512 else size


def dict_bytes(d: dict[str, Any], sample: int = 64) -> int:
    """A str-keyed dict's table, keys and values, estimated from its first entries. Every int counts (the
    first rows' numbers are Python's shared small ints, the millions after them are not); a tuple's items do
    not (a secondary index's row numbers are the key index's ints)."""
    size = sys.getsizeof(d)
    try:
        entries = list(islice(d.items(), sample))
    except RuntimeError:  # changed while we looked: its table only
        return size
    if not entries:
        return size
    each = sum(object_bytes(k) + object_bytes(v) for k, v in entries)
    return size + len(d) * each // len(entries)
