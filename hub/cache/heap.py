"""The process heap: what Python objects take on it, and handing freed memory back to the system."""

from __future__ import annotations

import ctypes
import sys
import threading
import time
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


_MIN_INTERVAL_S = 5.0
_trim_lock = threading.Lock()
_last_trim = -_MIN_INTERVAL_S
_deferred: threading.Timer | None = None


def release_free_memory() -> None:
    """Hands the heap memory already freed back to the system (glibc's ``malloc_trim``).

    glibc returns only the top of each heap on free; what was freed below live data stays resident.
    A load frees much of that kind (fetched batches, decoded JSON, replaced index dicts and column
    buffers, in the feeder's, librdkafka's and the server's own heaps): ~300 MiB at city scale that no
    component holds. Call once writes have paused. A trim holds the heaps' locks (30-60 ms on a
    fragmented heap), so under a steady trickle of writes it runs at most once every 5 s: a call
    within that time is deferred to its end, not dropped.
    """
    global _last_trim, _deferred
    if _TRIM is None:
        return
    with _trim_lock:
        wait = _last_trim + _MIN_INTERVAL_S - time.monotonic()
        if wait > 0:
            if _deferred is None:
                _deferred = threading.Timer(wait, _deferred_trim)
                _deferred.daemon = True
                _deferred.start()
            return
        _last_trim = time.monotonic()
    _TRIM(0)


def _deferred_trim() -> None:
    global _deferred
    with _trim_lock:
        _deferred = None
    release_free_memory()


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
