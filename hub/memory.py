"""Resident memory of one hub process by component, estimated when metrics are scraped.

The cache's columns are counted exactly (their arrays); Python structures (key indexes, change rings,
the audit index's and the case ledger's case numbers, the notices) are estimated from their sizes and
a sample of entries (hub.cache.heap), close enough to say which part grew. What no component claims (the interpreter,
libraries, librdkafka's queues, the case book, garbage not yet returned) is the rest of the resident size.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Protocol

from hub.cache.heap import dict_bytes, object_bytes
from hub.cache.key_index import DictIndex

if TYPE_CHECKING:
    from hub.cache.replica import ReplicaCache
    from hub.cache.table import Layered
    from hub.governance.audit_index import AuditIndex


class Measured(Protocol):
    """A component that says what it takes (the case ledger, the notices)."""

    @property
    def nbytes(self) -> int: ...


def resident_bytes() -> int:
    """This process's resident set size (Linux; 0 where /proc is absent)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


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
            secondary: list[Layered[Any]] = list(version.secondary.values())
            parts["cache key indexes"] += version.index.base.nbytes + dict_bytes(version.index.delta)
            parts["cache key indexes"] += sum(dict_bytes(i.base) + dict_bytes(i.delta) for i in secondary)
            if secondary and not isinstance(version.index.base, DictIndex):  # the row ints are the secondaries'
                parts["cache key indexes"] += object_bytes(version.live) * version.live
        parts["change rings"] = sum(ring.nbytes() for ring in list(cache.rings.values()))
    if audit_index is not None:
        parts["audit index"] = audit_index.nbytes
    if case_ledger is not None:
        parts["case ledger"] = case_ledger.nbytes
    if notices is not None:
        parts["notices"] = notices.nbytes
    resident = resident_bytes()
    return {"resident": resident, **parts, "other": max(0, resident - sum(parts.values()))}
