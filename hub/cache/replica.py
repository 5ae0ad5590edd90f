"""One hub replica's cache: a table per resource, fed from Kafka, read by the RPCs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence

from hub.cache.feeder import CacheFeeder
from hub.cache.table import ResourceTable, TableVersion, Watermark
from hub.catalogue.model import Catalogue
from hub.errors import DeadlineExceeded, InvalidArgument, UnknownResource
from hub.records.codec import topic_for

log = logging.getLogger(__name__)


class ReplicaCache:
    """Owns the tables and their feeder. Reads are lock-free; see :mod:`hub.cache.table`."""

    def __init__(
        self,
        catalogue: Catalogue,
        bootstrap: str,
        topic_prefix: str,
        partitions: dict[str, int],
        consumer_extra: dict | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.tables: dict[str, ResourceTable] = {}
        by_topic: dict[str, ResourceTable] = {}
        for spec in catalogue.resources:
            topic = topic_for(topic_prefix, spec.name)
            table = ResourceTable(spec, partitions[topic])
            self.tables[spec.name] = table
            by_topic[topic] = table
        self._by_topic = by_topic
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: dict[str, asyncio.Event] = {}
        self.feeder = CacheFeeder(bootstrap, by_topic, on_applied=self._applied, consumer_extra=consumer_extra)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop
        self.feeder.start()

    def stop(self) -> None:
        self.feeder.stop()

    @property
    def ready(self) -> bool:
        return self.feeder.ready.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self.feeder.ready.wait(timeout)

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
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            # Register before checking, so a batch applied in between still wakes us.
            event = self._waiters.setdefault(resource, asyncio.Event())
            version = table.version
            if version.watermark.reached(wanted):
                return version
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise DeadlineExceeded(
                    f"the cache of {resource} had not reached {list(wanted)} before the "
                    f"deadline (at {list(version.watermark.offsets)})"
                )
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                continue

    def _applied(self, topics: Iterable[str]) -> None:  # feeder thread
        if not self._waiters or self._loop is None:
            return
        for topic in topics:
            name = self._by_topic[topic].spec.name
            if name in self._waiters:
                self._loop.call_soon_threadsafe(self._wake, name)

    def _wake(self, resource: str) -> None:
        event = self._waiters.pop(resource, None)
        if event is not None:
            event.set()

    def watermarks(self) -> dict[str, Watermark]:
        return {name: t.version.watermark for name, t in self.tables.items()}
