"""Resident memory of one hub process by component, estimated when metrics are scraped.

The cache's columns are counted exactly (their arrays); Python structures (key indexes, change rings,
the audit index's and the case ledger's case numbers, the notices) are estimated from their sizes and
a sample entry, close enough to say which part grew. What no component claims (the interpreter,
libraries, librdkafka's queues, the case book, garbage not yet returned) is the rest of the resident size.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable
from itertools import islice
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from hub.cache.replica import ReplicaCache
    from hub.cache.table import Layered
    from hub.governance.audit_index import AuditIndex


class Measured(Protocol):
    """A component that says what it takes (the case ledger, the notices: their module imports this one, so
    they are not named)."""

    @property
    def nbytes(self) -> int: ...


def resident_bytes() -> int:
    """This process's resident set size (Linux; 0 where /proc is absent)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


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


def by_component(
    cache: ReplicaCache | None,
    audit_index: AuditIndex | None,
    case_ledger: Measured | None,
    notices: Measured | None = None,
) -> dict[str, int]:
    """Bytes per component, and ``other``: the resident size that none of them accounts for."""
    parts = dict.fromkeys(
        ("cache columns", "cache key indexes", "change rings", "audit index", "case ledger", "notices"), 0
    )
    if cache is not None:
        for name in list(cache.tables):
            version = cache.version(name)
            parts["cache columns"] += version.nbytes
            indexes: list[Layered[Any]] = [version.index, *version.secondary.values()]
            parts["cache key indexes"] += sum(dict_bytes(i.base) + dict_bytes(i.delta) for i in indexes)
        parts["change rings"] = sum(ring.nbytes() for ring in list(cache.rings.values()))
    if audit_index is not None:
        parts["audit index"] = audit_index.nbytes
    if case_ledger is not None:
        parts["case ledger"] = case_ledger.nbytes
    if notices is not None:
        parts["notices"] = notices.nbytes
    resident = resident_bytes()
    return {"resident": resident, **parts, "other": max(0, resident - sum(parts.values()))}
