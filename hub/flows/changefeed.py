"""Change feeds for subscribers: recent changes in memory, older ones read from Kafka.

Each replica keeps, per topic, a :class:`~hub.cache.changes.ChangeRing` of the latest changes the
feeder applied (bounded per partition). A subscriber reads from the ring while its position is inside it. If it
falls behind the ring (a slow reader, or a cursor from long ago), it reads the topic itself with
a :class:`TopicReader` until it is back in the ring's range. The hub's memory therefore never
depends on how slow a subscriber is; gRPC flow control paces the subscriber.

Positions are "next offset to deliver" per partition; a cursor is those positions as text.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Sequence

from confluent_kafka import Consumer, KafkaError, TopicPartition

from hub.cache.changes import ChangeRing
from hub.errors import InvalidArgument
from hub.kafka.clients import consume_ready, consumer_config
from hub.records.change import Change

CURSOR_PREFIX = "c1:"


def encode_cursor(positions: Sequence[int]) -> str:
    return CURSOR_PREFIX + ".".join(str(p) for p in positions)


def decode_cursor(cursor: str, partitions: int) -> list[int]:
    try:
        if not cursor.startswith(CURSOR_PREFIX) or len(cursor) > len(CURSOR_PREFIX) + 20 * partitions:
            raise ValueError
        positions = [int(p) for p in cursor[len(CURSOR_PREFIX) :].split(".")]
    except ValueError:
        raise InvalidArgument(f"cursor: {cursor[:40]!r} is not a cursor from this hub", field="cursor") from None
    if len(positions) != partitions or min(positions) < 0:
        raise InvalidArgument(
            f"cursor: has {len(positions)} positions, the topic has {partitions} partitions", field="cursor"
        )
    return positions


def topic_ends(
    bootstrap: str, topic: str, partitions: Sequence[int], consumer_extra: dict | None = None
) -> dict[int, int]:
    """The end offsets of ``partitions`` (where "from now on" starts for partitions this replica does not hold)."""
    consumer = Consumer({**consumer_config(bootstrap, "hub-subscriber-unused"), **(consumer_extra or {})})
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    finally:
        consumer.close()


class TopicReader:
    """Reads partitions of a topic from given positions, for a subscriber behind the ring."""

    def __init__(self, bootstrap: str, topic: str, consumer_extra: dict | None = None) -> None:
        self.topic = topic
        # A stream reads a page at a time: a small prefetch keeps 200 lagging subscribers from
        # holding the feeder's 256 MB each.
        config = consumer_config(bootstrap, "hub-subscriber-unused", {"queued.max.messages.kbytes": 8192})
        self._consumer = Consumer({**config, **(consumer_extra or {})})
        self._assigned: dict[int, int] = {}

    def assign(self, positions: dict[int, int]) -> None:
        if positions != self._assigned:
            self._consumer.assign([TopicPartition(self.topic, p, o) for p, o in positions.items()])
            self._assigned = dict(positions)

    def fetch(self, limit: int, timeout: float) -> list[Change]:  # blocking: call from a worker thread
        out = []
        for m in consume_ready(self._consumer, limit, timeout):
            if (err := m.error()) is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(f"reading {self.topic}: {err}")
                continue
            key = m.key()
            # A consumed message has its partition and offset; an ignore, not casts, on this hot path.
            out.append(Change(key.decode() if key else "", m.value(), m.partition(), m.offset(), m.timestamp()[1]))  # type: ignore[arg-type]
        for c in out:
            self._assigned[c.partition] = c.offset + 1
        return out

    def close(self) -> None:
        self._consumer.close()


class ChangeStream:
    """One subscriber's position over a topic: ring while it can, Kafka while it must."""

    def __init__(
        self, ring: ChangeRing, positions: list[int], reader_factory, owned: Collection[int] | None = None
    ) -> None:
        self.ring = ring
        self.positions = positions
        self._owned = set(range(ring.partitions) if owned is None else owned)  # a sharded replica's partitions
        self._reader_factory = reader_factory
        self._reader: TopicReader | None = None

    async def next_batch(self, limit: int = 500, wait_s: float = 1.0) -> list[Change]:
        """The next changes after the positions; empty after ``wait_s`` of quiet. The caller hands
        each change on and then calls :meth:`advance`, so a cursor never runs ahead of delivery."""
        behind = [p for p in self.ring.behind(self.positions) if p in self._owned]
        if behind:
            if self._reader is None:
                self._reader = self._reader_factory()
            self._reader.assign({p: self.positions[p] for p in behind})
            reader = self._reader
            changes = await asyncio.to_thread(reader.fetch, limit, 0.2)
        else:
            if self._reader is not None:
                await asyncio.to_thread(self._reader.close)
                self._reader = None
            appended = self.ring.waiter()
            changes = self.ring.read(self.positions, limit)
            if not changes:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(appended.wait(), wait_s)
                changes = self.ring.read(self.positions, limit)
        # The ring and the reader may overlap; within one partition changes are in offset order.
        return [c for c in changes if c.offset >= self.positions[c.partition]]

    def advance(self, change: Change) -> str:
        """Marks ``change`` delivered (or skipped by a filter); returns the cursor just after it."""
        self.positions[change.partition] = change.offset + 1
        return encode_cursor(self.positions)

    async def close(self) -> None:
        if self._reader is not None:
            await asyncio.to_thread(self._reader.close)
            self._reader = None
