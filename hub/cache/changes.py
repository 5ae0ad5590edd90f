"""The latest changes the feeder applied to one topic, kept in memory for subscribers.

The cache's replica fills one :class:`ChangeRing` per topic as it applies batches; the change
feeds (:mod:`hub.flows.changefeed`) read subscribers' changes from it while their positions are
inside it, and from Kafka when they fall behind.
"""

from __future__ import annotations

import asyncio
import bisect
import threading
from collections.abc import Sequence

from hub.records.change import Change


class _PartitionRing:
    __slots__ = ("changes", "next", "offsets")

    def __init__(self, start: int) -> None:
        self.offsets: list[int] = []
        self.changes: list[Change] = []
        self.next = start  # the offset after the newest change seen

    def oldest(self) -> int:
        return self.offsets[0] if self.offsets else self.next


class ChangeRing:
    """Latest changes of one topic. One writer (the feeder thread); readers on the event loop.

    ``capacity`` is the topic's, shared by its partitions: a fixed count per partition made a six-partition
    topic keep six times the changes of a one-partition topic of the same traffic (up to 1.5 times that
    between trims), a resident memory set by the partition count rather than by the data."""

    def __init__(self, partitions: int, start: Sequence[int], capacity: int = 20_000) -> None:
        self.partitions = partitions
        self.capacity = max(1, -(-capacity // partitions))  # per partition
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

    def nbytes(self) -> int:
        """Roughly what the held changes take: their keys and values, and ~200 bytes of objects each."""
        with self._lock:
            return sum(len(c.key) + len(c.value or b"") + 200 for part in self._parts for c in part.changes)

    def behind(self, positions: Sequence[int]) -> list[int]:
        """Partitions whose position is older than what the ring still holds."""
        with self._lock:
            return [p for p in range(self.partitions) if positions[p] < self._parts[p].oldest()]

    def read(self, positions: Sequence[int], limit: int) -> list[Change]:
        """Changes at or after ``positions``, at most ``limit``, partition by partition in order. Nothing
        of a partition whose position the ring no longer holds (:meth:`behind`): the ring may have
        dropped it since the caller last asked, and what it still holds would skip the changes between."""
        out: list[Change] = []
        with self._lock:
            for p, part in enumerate(self._parts):
                if positions[p] >= part.next or positions[p] < part.oldest():
                    continue
                start = bisect.bisect_left(part.offsets, positions[p])
                out.extend(part.changes[start : start + max(1, limit - len(out))])
                if len(out) >= limit:
                    break
        return out
