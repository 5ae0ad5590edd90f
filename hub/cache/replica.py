"""One hub replica's state, fed from Kafka: a table per resource, plus the hub's own stores.

A sharded replica (``shard``) consumes, caches and snapshots only its shard's partitions of each
resource topic; the hub's own stores are always whole.

Start-up: the feeder thread first loads each resource's snapshot (if it matches the topic), then
consumes from the snapshot's offsets. A snapshotter thread writes a snapshot of every resource
that changed, every ``snapshot_interval_s`` and once more on a clean stop. Resources registered
while the hub runs get a table and join the feed at once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.cache.changes import ChangeRing
from hub.cache.feeder import CacheFeeder, FeedTarget
from hub.cache.heap import release_free_memory
from hub.cache.snapshot import SnapshotInfo, read_snapshot, write_snapshot
from hub.cache.table import ResourceTable, TableVersion
from hub.catalogue.model import ResourceSpec
from hub.errors import DeadlineExceeded, InvalidArgument, UnknownResource
from hub.records.change import Change
from hub.records.codec import topic_for
from hub.records.shards import WHOLE, ShardAssignment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SnapshotPolicy:
    directory: Path
    interval_s: float = 60.0
    write: bool = True  # False: only load them (another process of the same replica set writes)


class ReplicaCache:
    """Owns the tables, the internal stores and their feeder. Reads are lock-free (hub.cache.table)."""

    def __init__(
        self,
        resources: Iterable[ResourceSpec],
        bootstrap: str,
        topic_prefix: str,
        partitions: dict[str, int],
        *,
        internal: dict[str, FeedTarget] | None = None,
        consumer_extra: dict[str, Any] | None = None,
        identities: dict[str, str] | None = None,
        snapshots: SnapshotPolicy | None = None,
        feeds: Iterable[str] = (),
        ring_capacity: int = 20_000,
        shard: ShardAssignment = WHOLE,
        shared: Iterable[str] = (),
        on_demand: Iterable[str] = (),
    ) -> None:
        self._topic_prefix = topic_prefix
        self.shard = shard
        self._resource_topics: set[str] = set()
        self.bootstrap = bootstrap
        self.consumer_extra = consumer_extra or {}
        self._identities = dict(identities or {})
        self._snapshots = snapshots
        self._snapshot_stop = threading.Event()
        self._snapshotter: threading.Thread | None = None
        self._written: dict[str, tuple[int, ...]] = {}
        self.snapshotted: dict[str, SnapshotInfo] = {}  # the last snapshot this process wrote of each
        self.loaded_from_snapshot: dict[str, int] = {}
        self.tables: dict[str, ResourceTable] = {}
        self._targets: dict[str, FeedTarget] = dict(internal or {})
        for spec in resources:
            topic = topic_for(topic_prefix, spec.name)
            self._add_table(spec, partitions[topic])
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: dict[str, asyncio.Event] = {}
        # Change rings for subscribers: every resource topic, plus the hub's own topics in `feeds`.
        self._feed_topics = set(feeds) | {topic_for(topic_prefix, name) for name in self.tables}
        self.rings: dict[str, ChangeRing] = {}
        self._ring_capacity = ring_capacity
        self.feeder = CacheFeeder(
            bootstrap,
            self._targets,
            on_applied=self._applied,
            before_assign=self._prepare,
            on_changes=self._changes,
            consumer_extra=consumer_extra,
            owned=self.owned,
            shared=shared,
            on_demand=on_demand,
        )

    def owned(self, topic: str, partitions: int) -> tuple[int, ...]:
        """The partitions of ``topic`` this replica holds: its shard's of a resource topic, else all."""
        return self.shard.partitions(partitions) if topic in self._resource_topics else tuple(range(partitions))

    def _add_table(self, spec: ResourceSpec, partitions: int) -> tuple[str, ResourceTable]:
        table = ResourceTable(spec, partitions)
        self.tables[spec.name] = table
        topic = topic_for(self._topic_prefix, spec.name)
        self._resource_topics.add(topic)
        self._targets[topic] = table
        return topic, table

    def add_resource(self, spec: ResourceSpec, partitions: int, identity: str) -> None:
        """A resource registered while the hub runs: give it a table and start feeding it."""
        current = self.tables.get(spec.name)
        if current is not None and [f.model_dump() for f in current.spec.fields] == [
            f.model_dump() for f in spec.fields
        ]:
            return  # same schema: nothing to rebuild
        if current is not None:
            log.warning("%s: schema changed; a new table is built from the topic", spec.name)
        self._identities[topic_for(self._topic_prefix, spec.name)] = identity
        topic, table = self._add_table(spec, partitions)
        ring = ChangeRing(partitions, table.positions(), self._ring_capacity)
        if self._loop is not None:
            ring.attach(self._loop)
        self.rings[topic] = ring
        self.feeder.add({topic: table})

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop
        self.feeder.start()
        if self._snapshots is not None and self._snapshots.write and self._snapshots.interval_s > 0:
            self._snapshotter = threading.Thread(target=self._snapshot_loop, name="snapshotter", daemon=True)
            self._snapshotter.start()

    def stop(self, final_snapshot: bool = True) -> None:
        self._snapshot_stop.set()
        if self._snapshotter is not None:
            self._snapshotter.join()
        self.feeder.stop()
        if final_snapshot and self._snapshots is not None and self._snapshots.write and self.ready:
            try:
                self.snapshot_all()
            except OSError:  # a full disk must not stop the hub from stopping; a restart replays more
                log.exception("final snapshot failed; the previous one stays valid")

    @property
    def ready(self) -> bool:
        return self.feeder.ready.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self.feeder.ready.wait(timeout)

    # -- snapshots -------------------------------------------------------------------------------

    def _identity(self, resource: str) -> str:
        return self._identities.get(topic_for(self._topic_prefix, resource), "")

    def _prepare(self) -> None:  # feeder thread, before it assigns partitions
        self._load_snapshots()
        for topic in self._feed_topics:
            target = self._targets[topic]
            ring = ChangeRing(target.partitions, target.positions(), self._ring_capacity)
            if self._loop is not None:
                ring.attach(self._loop)
            self.rings[topic] = ring

    def _changes(self, topic: str, changes: Sequence[Change]) -> None:  # feeder thread
        ring = self.rings.get(topic)
        if ring is not None:
            ring.append(changes)

    def _load_snapshots(self) -> None:
        if self._snapshots is None:
            return
        for name, table in self.tables.items():
            started = time.perf_counter()
            loaded = read_snapshot(
                self._snapshots.directory, table.spec, self._identity(name), table.partitions, str(self.shard)
            )
            if loaded is None:
                continue
            arrow_table, watermark = loaded
            table.load(arrow_table, watermark)
            self._written[name] = watermark.offsets
            self.loaded_from_snapshot[name] = arrow_table.num_rows
            log.info(
                "%s: loaded %d rows from snapshot in %.2fs; replaying from %s",
                name,
                arrow_table.num_rows,
                time.perf_counter() - started,
                list(watermark.offsets),
            )

    def snapshot_all(self) -> list[SnapshotInfo]:
        """Snapshots every resource whose offsets moved since its last snapshot."""
        assert self._snapshots is not None
        written = []
        for name, table in list(self.tables.items()):
            version = table.version
            if self._written.get(name) == version.watermark.offsets:
                continue
            started = time.perf_counter()
            info = write_snapshot(self._snapshots.directory, version, self._identity(name), str(self.shard))
            self._written[name] = info.offsets
            written.append(info)
            log.info(
                "%s: snapshot of %d rows at %s in %.2fs",
                name,
                info.rows,
                list(info.offsets),
                time.perf_counter() - started,
            )
        self.snapshotted.update((info.resource, info) for info in written)
        if written:  # the rows gathered for the files are freed, but kept by the heap (~200 MiB at city scale)
            release_free_memory()
        return written

    def _snapshot_loop(self) -> None:
        assert self._snapshots is not None
        while not self._snapshot_stop.wait(self._snapshots.interval_s):
            if not self.ready:
                continue
            try:
                self.snapshot_all()
            except OSError:
                log.exception("snapshot failed; the previous one stays valid")

    # -- reads -----------------------------------------------------------------------------------

    def table(self, resource: str) -> ResourceTable:
        table = self.tables.get(resource)
        if table is None:
            raise UnknownResource(resource)
        return table

    def version(self, resource: str) -> TableVersion:
        return self.table(resource).version

    async def version_at(self, resource: str, wanted: Sequence[tuple[int, int]], timeout: float | None) -> TableVersion:
        """The current version once it has applied every ``(partition, offset)`` in ``wanted``."""
        table = self.table(resource)
        for p, _ in wanted:
            if not 0 <= p < table.partitions:
                raise InvalidArgument(
                    f"consistency.min_offsets: partition {p} does not exist ({resource} has {table.partitions})",
                    field="consistency.min_offsets",
                )
        # Another shard's partitions never reach this replica, and hold none of the keys it answers for;
        # a scattered call asks their shards to wait for them.
        held = [(p, o) for p, o in wanted if self.shard.owns(p)]
        await self.reached(topic_for(self._topic_prefix, resource), held, timeout)
        return table.version

    def positions(self, topic: str) -> tuple[int, ...]:
        """The next offset to apply, per partition, of a topic this replica follows."""
        return self._targets[topic].positions()

    def apply_read(self, topic: str, changes: Sequence[Change]) -> None:
        """Applies records of a ``shared`` or ``on_demand`` topic that a call read itself
        (hub.kafka.tail); any thread. Records the feeder applied first are left out, and the feeder
        leaves out these. An ``on_demand`` topic is followed only until the cache is ready."""
        if self.feeder.apply(topic, changes):
            self._applied([topic])

    async def reached(self, topic: str, wanted: Sequence[tuple[int, int]], timeout: float | None) -> None:
        """Waits until the target of ``topic`` has applied every ``(partition, offset)`` in ``wanted``."""
        target = self._targets[topic]
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            # Register before checking, so a batch applied in between still wakes us.
            event = self._waiters.setdefault(topic, asyncio.Event())
            positions = target.positions()
            if all(p < len(positions) and positions[p] > o for p, o in wanted):
                return
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise DeadlineExceeded(
                    f"{topic} had not reached {list(wanted)} before the deadline (at {list(positions)})"
                )
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                continue

    def _applied(self, topics: Iterable[str]) -> None:  # feeder thread
        if not self._waiters or self._loop is None:
            return
        for topic in topics:
            if topic in self._waiters:
                self._loop.call_soon_threadsafe(self._wake, topic)

    def _wake(self, topic: str) -> None:
        event = self._waiters.pop(topic, None)
        if event is not None:
            event.set()
