"""Change feeds for subscribers: recent changes in memory, older ones read from Kafka.

Each replica keeps, per topic, a :class:`ChangeRing` of the latest changes the feeder applied
(bounded per partition). A subscriber reads from the ring while its position is inside it. If it
falls behind the ring (a slow reader, or a cursor from long ago), it reads the topic itself with
a :class:`TopicReader` until it is back in the ring's range. The hub's memory therefore never
depends on how slow a subscriber is; gRPC flow control paces the subscriber.

Positions are "next offset to deliver" per partition; a cursor is those positions as text.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import threading
from collections.abc import Sequence

from confluent_kafka import Consumer, KafkaError, TopicPartition

from hub.cache.table import Change
from hub.errors import InvalidArgument
from hub.kafka.clients import consume_ready, consumer_config

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


class _PartitionRing:
    __slots__ = ("changes", "next", "offsets")

    def __init__(self, start: int) -> None:
        self.offsets: list[int] = []
        self.changes: list[Change] = []
        self.next = start  # the offset after the newest change seen

    def oldest(self) -> int:
        return self.offsets[0] if self.offsets else self.next


class ChangeRing:
    """Latest changes of one topic. One writer (the feeder thread); readers on the event loop."""

    def __init__(self, partitions: int, start: Sequence[int], capacity: int = 20_000) -> None:
        self.partitions = partitions
        self.capacity = capacity
        self._parts = [_PartitionRing(start[p]) for p in range(partitions)]
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def append(self, changes: Sequence[Change]) -> None:  # feeder thread
        with self._lock:
            for c in changes:
                part = self._parts[c.partition]
                part.offsets.append(c.offset)
                part.changes.append(c)
                part.next = c.offset + 1
            for part in self._parts:
                if len(part.offsets) > self.capacity * 3 // 2:  # trim in steps: amortised O(1)
                    del part.offsets[: -self.capacity]
                    del part.changes[: -self.capacity]
        if self._event is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        event, self._event = self._event, None
        if event is not None:
            event.set()

    def waiter(self) -> asyncio.Event:
        """An event the next append sets. Take it *before* reading, so an append in between is not missed."""
        if self._event is None:
            self._event = asyncio.Event()
        return self._event

    def ends(self) -> list[int]:
        return [p.next for p in self._parts]

    def behind(self, positions: Sequence[int]) -> list[int]:
        """Partitions whose position is older than what the ring still holds."""
        with self._lock:
            return [p for p in range(self.partitions) if positions[p] < self._parts[p].oldest()]

    def read(self, positions: Sequence[int], limit: int) -> list[Change]:
        """Changes at or after ``positions``, at most ``limit``, partition by partition in order."""
        out: list[Change] = []
        with self._lock:
            for p, part in enumerate(self._parts):
                if positions[p] >= part.next or not part.offsets:
                    continue
                start = bisect.bisect_left(part.offsets, positions[p])
                out.extend(part.changes[start : start + max(1, limit - len(out))])
                if len(out) >= limit:
                    break
        return out


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

    def __init__(self, ring: ChangeRing, positions: list[int], reader_factory) -> None:
        self.ring = ring
        self.positions = positions
        self._reader_factory = reader_factory
        self._reader: TopicReader | None = None

    async def next_batch(self, limit: int = 500, wait_s: float = 1.0) -> list[Change]:
        """The next changes after the positions; empty after ``wait_s`` of quiet. The caller hands
        each change on and then calls :meth:`advance`, so a cursor never runs ahead of delivery."""
        behind = self.ring.behind(self.positions)
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
