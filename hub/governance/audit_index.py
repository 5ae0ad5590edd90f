"""The audit trail as a queryable table on every replica: by subject digest and by resource.

Built with the cache's own machinery (:class:`~hub.cache.table.ResourceTable`): columnar, with a
secondary index on the subject digests for the citizen's question. The provider's question scans
the resource column vectorised, which stays fast because it is dictionary-encoded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import orjson

from hub.cache.table import Change, ResourceTable, TableVersion
from hub.catalogue.model import FieldSpec, ResourceSpec

AUDIT_SPEC = ResourceSpec(
    name="hub.audit",
    code="HUB-AUDIT",
    title="Audit trail",
    provider="hub_admin",
    summary="Every access, publish and administrative action, hash-chained per hub process.",
    key="entry_id",
    sharing_class="not_shared",
    legal_basis="evidential record of the hub (never shared)",
    published_on=dt.date(2017, 1, 1),
    fields=(
        FieldSpec(name="entry_id", type="string", title="chain:seq", required=True),
        FieldSpec(name="kind", type="code", title="access, checkpoint or genesis"),
        FieldSpec(name="at_ms", type="int", title="time, Unix ms"),
        FieldSpec(name="caller", type="code", title="department"),
        FieldSpec(name="subsystem", type="code", title="subsystem"),
        FieldSpec(name="action", type="code", title="action"),
        FieldSpec(name="resource", type="code", title="resource"),
        FieldSpec(name="subjects", type="list", title="subject digests", indexed=True),
        FieldSpec(name="fields", type="list", title="fields touched"),
        FieldSpec(name="purpose", type="code", title="purpose"),
        FieldSpec(name="case_number", type="string", title="case number"),
        FieldSpec(name="outcome", type="code", title="gRPC status"),
        FieldSpec(name="latency_us", type="int", title="latency, µs"),
        FieldSpec(name="count", type="int", title="keys touched"),
        FieldSpec(name="detail", type="string", title="detail"),
    ),
)


READ_ACTIONS = frozenset({"verify", "verify_batch", "lookup", "subscribe", "bulk"})


class AuditIndex:
    """A FeedTarget over the audit topic."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.table = ResourceTable(AUDIT_SPEC, partitions)

    def positions(self) -> tuple[int, ...]:
        return self.table.positions()

    def apply(self, changes: Sequence[Change]) -> None:
        keyed = []
        for c in changes:
            entry = orjson.loads(c.value) if c.value else {}
            keyed.append(
                Change(
                    f"{entry.get('chain', c.key)}:{entry.get('seq', c.offset)}",
                    c.value,
                    c.partition,
                    c.offset,
                    c.timestamp_ms,
                )
            )
        self.table.apply(keyed)

    def mark_caught_up(self, at_ms: int) -> None:
        self.table.mark_caught_up(at_ms)

    def settle(self) -> bool:
        return self.table.settle()

    # -- queries ---------------------------------------------------------------------------------

    @property
    def version(self) -> TableVersion:
        return self.table.version

    def by_subject(self, digest: str, limit: int) -> list[dict]:
        v = self.version
        rows = sorted(v.rows_by("subjects", digest), key=lambda r: v.columns["at_ms"].value(r), reverse=True)
        return [v.record(r) for r in rows[:limit]]

    def by_resource(self, resource: str, limit: int) -> tuple[list[tuple[str, str, int]], list[dict], int]:
        """(calls per caller and purpose, the most recent entries, total) of reads of one resource."""
        v = self.version
        col = v.columns["resource"]
        code = col.lookup.get(resource)
        if code is None or v.n_rows == 0:
            return [], [], 0
        live = v.live_rows()
        rows = live[col.codes.arr[live] == code]
        actions = v.columns["action"]
        reads = actions.category_mask(READ_ACTIONS.__contains__)
        rows = rows[reads[actions.codes.arr[rows]]]
        callers = v.columns["caller"]
        purposes = v.columns["purpose"]
        width = len(purposes.categories) + 1  # purpose code -1 (none) becomes 0
        pairs = callers.codes.arr[rows].astype(np.int64) * width + purposes.codes.arr[rows] + 1
        values, counts = np.unique(pairs, return_counts=True)
        usage = [
            (callers.categories[int(p // width)], purposes.categories[int(p % width) - 1] if p % width else "", int(n))
            for p, n in zip(values.tolist(), counts.tolist(), strict=True)
        ]
        at = v.columns["at_ms"].values.arr[rows]
        recent = rows[np.argsort(at)[::-1][:limit]]
        return usage, [v.record(int(r)) for r in recent], len(rows)
