"""Which partitions of a topic its writers are writing, announced in the topic's partition 0.

A reader that must apply every record acknowledged before it began (hub.kafka.tail, a call's catch-up
on the cases topic) would otherwise assign every partition on every read. On tansu each assigned
partition costs both sides about 20 µs a fetch, and reading a partition behind its end lists every
record batch it holds, so a topic written in small batches wants many partitions and reads that
name few of them. With the directory a read assigns partition 0 and the partitions being written,
adds those announced while it reads, and the other partitions cost nothing until written again.

The contract, which keeps "every acknowledged record" true on Kafka as on tansu:

- a writer has Kafka acknowledge an announcement of a partition before it writes there;
- an announcement lists every partition its writer may still have a write in flight to, besides the
  one it moves to: a partition a writer leaves is dropped from its list only once its writes there
  are acknowledged or known never sent (at the writer's next announcement), and never if a write's
  fate is unknown (a delivery timeout);
- a reader keeps reading a partition no list names any more until a read that began after that
  announcement was applied has finished: that read's fetches went out after every write the
  partition got was acknowledged;
- a writer that stops cleanly announces an empty list. One that crashes leaves its last list, and
  readers keep reading those partitions (about 20 µs a read each on tansu) until the topic is
  recreated: writers have no stable identity a successor could retire.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections import Counter
from collections.abc import Sequence

import orjson

from hub.errors import Unavailable
from hub.kafka.producer import AckingProducer, Delivery

DIRECTORY = 0  # the partition announcements go to; records go to the others
# Batches a writer sends to one partition before it moves to another. Each move is an announcement,
# which every reader's next catch-up then fetches from behind partition 0's end; on tansu that lists
# every announcement the partition holds, so moves cost more the longer the hub runs (32 made the
# second of two city years slow down; 128 kept it flat).
RUN = 128


def announcement(value: bytes | None) -> tuple[str, frozenset[int]] | None:
    """A directory record's writer and partitions; None if the value is not an announcement."""
    try:
        decoded = orjson.loads(value or b"")
        writer, partitions = decoded["writer"], decoded["partitions"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    if (
        not isinstance(writer, str)
        or not isinstance(partitions, list)
        or not all(type(p) is int and p >= 0 for p in partitions)
    ):
        return None
    return writer, frozenset(partitions)


class AnnouncedPartition:
    """Sends a writer's small batches: a run of them to one partition, then to another, each partition
    announced in the directory before it is written. One per writer; on one event loop.

    Like librdkafka's sticky partitioner for unkeyed records, for records whose key must not choose
    their partition (readers find them by position): a reader catching up on the other writers reads
    about one partition per writer, and a writer's own run, once its reads reach it, need not be read
    back (hub.flows.stores ``CaseLedger.record``).
    """

    def __init__(
        self,
        producer: AckingProducer,
        topic: str,
        partitions: int,
        run: int = RUN,
        rng: random.Random | None = None,
        announcer: AckingProducer | None = None,
    ) -> None:
        """``announcer`` sends the announcements (``producer`` if None). Give an idempotent one when
        ``producer`` is not: a resent announcement must not land after a newer one of the same writer."""
        if partitions < 2:
            raise ValueError(f"{topic}: a directory needs at least 2 partitions, has {partitions}")
        self._producer = producer
        self._announcer = announcer or producer
        self._topic = topic
        self._partitions = partitions
        self._run = run
        self._rng = rng or random.Random()
        self.writer = uuid.uuid4().hex
        self._current: int | None = None
        self._left = 0
        self._in_flight: Counter[int] = Counter()  # sends not settled yet, by partition
        self._unsure: set[int] = set()  # partitions a record may have reached although it was not acknowledged
        self._idle = asyncio.Event()
        self._idle.set()
        self._moving = asyncio.Lock()
        self._retired = False

    async def send(self, records: Sequence[tuple[bytes, bytes | None]]) -> list[Delivery]:
        """Produces ``records`` as one batch to this writer's current partition, announcing a new one first
        when the run is over; their deliveries, in order. Unavailable if Kafka does not acknowledge
        the announcement, or once retired.

        The partition stays in this writer's announcements until every record is acknowledged or known
        never to have left (refused before it was queued); one whose fate is unknown (a delivery timeout,
        a purge) keeps it there for good. Cancelling the caller does not cancel the send."""
        partition = await self._acquire()
        sending = asyncio.ensure_future(self._producer.send(self._topic, records, [], partition_hint=partition))
        sending.add_done_callback(lambda done: self._settled(partition, done))
        return await asyncio.shield(sending)

    async def _acquire(self) -> int:
        while self._retired or self._current is None or self._left == 0:
            if self._retired:  # checked after every wait too: a send after the last announcement goes unread
                raise Unavailable(f"this process writes no more to {self._topic}; retry (another worker answers)")
            async with self._moving:
                if not self._retired and (self._current is None or self._left == 0):
                    await self._move()
        self._left -= 1
        self._in_flight[self._current] += 1
        self._idle.clear()
        return self._current

    def _settled(self, partition: int, done: asyncio.Future[list[Delivery]]) -> None:
        if (
            done.cancelled()
            or done.exception() is not None
            or not all(d.error is None or d.partition < 0 for d in done.result())
        ):
            self._unsure.add(partition)
        self._in_flight[partition] -= 1
        if not self._in_flight[partition]:
            del self._in_flight[partition]
        if not self._in_flight:
            self._idle.set()

    async def _move(self) -> None:
        choices = [p for p in range(self._partitions) if p not in (DIRECTORY, self._current)]
        to = self._rng.choice(choices) if choices else self._partitions - 1
        await self._announce({to, *self._in_flight, *self._unsure})
        self._current, self._left = to, self._run

    async def retire(self, wait: float = 5.0) -> None:
        """For a clean stop: refuses further sends, waits up to ``wait`` seconds for those in flight, and
        announces that this writer writes nowhere any more (but where a send is still unsettled or unsure)."""
        self._retired = True
        if self._current is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), wait)
        async with self._moving:
            await self._announce({*self._in_flight, *self._unsure})
            self._current = None

    async def _announce(self, partitions: set[int]) -> None:
        value = orjson.dumps({"writer": self.writer, "partitions": sorted(partitions)})
        [delivery] = await self._announcer.send(
            self._topic, [(f"directory/{self.writer}".encode(), value)], [], partition_hint=DIRECTORY
        )
        if delivery.error is not None:
            raise Unavailable(f"{self._topic}: could not announce the partition to write to ({delivery.error}); retry")


class WriterDirectory:
    """A reader's view of the directory: which partitions a read must name. Not thread-safe: its owner
    locks (hub.flows.stores ``CaseLedger``)."""

    def __init__(self) -> None:
        self._writers: dict[str, frozenset[int]] = {}
        self._live: frozenset[int] = frozenset()
        self._leaving: dict[int, int] = {}  # partition → the count of announcements when no list named it
        self.applied = 0  # announcements applied: what a read records when it begins

    def apply(self, writer: str, partitions: frozenset[int]) -> None:
        """``writer``'s latest announcement, in the directory's order: it may write to ``partitions`` only."""
        self.applied += 1
        before = self._live
        if partitions:
            self._writers[writer] = partitions
        else:
            self._writers.pop(writer, None)
        self._live = frozenset().union(*self._writers.values())
        for p in before - self._live:
            self._leaving[p] = self.applied
        for p in self._live:
            self._leaving.pop(p, None)

    def wanted(self) -> set[int]:
        """The partitions a read beginning now must name: the directory, the live ones, those leaving."""
        return {DIRECTORY, *self._live, *self._leaving}

    def read_done(self, began_at: int) -> None:
        """A read that began when ``began_at`` announcements were applied has finished: partitions no list
        named by then are read no more."""
        for p, at in list(self._leaving.items()):
            if at <= began_at:
                del self._leaving[p]
