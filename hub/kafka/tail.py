"""Reading a topic from known positions to its end as of now: the barrier behind every "apply what
was acknowledged before this call" in the hub.

The end is where a fetch sent after the read began reports partition EOF. On Kafka that fetch sees
the high watermark, which covers every acknowledged record (acks=all). It also costs less than asking
for the ends first: tansu's ListOffsets lists every record batch of a partition, while a fetch at a
partition's end only reads its watermark, so an up-to-date partition costs the same however long its
log has grown. Only partitions with new records are read.

Against a single broker (the embedded one) a partition also ends once its records reach the high
watermark the fetch that brought them reported, without a further fetch to report EOF. That needs
the watermark librdkafka caches to be no older than the read: it copies each fetch answer's watermark
before it drops an outdated answer, and keeps one fetch in flight per broker, answered in order, so
with one broker the answer that brought the records (or a later one) set it. With several, a late
answer from a partition's former leader could set it back, so there EOF alone ends a partition.
Catch-up reads (:data:`ONE_FETCH`) also fetch again only once the last answer is consumed, and
unassign before they apply their last records. Measured with librdkafka's statistics (a 24-partition
topic on the embedded broker, a one-record change before each read): 3.0 fetches of every partition
a read with new records and 2.0 without before, 1.4 either way after.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from hub.kafka.clients import consume_ready, consumer_config
from hub.kafka.read_consumer import ReadConsumer
from hub.records.change import Change

log = logging.getLogger(__name__)


# Settings of a reader whose reads usually end after one fetch (a call's catch-up, a case event read
# back): no fetch ahead while the records of the last one are being handled. Bulk reads (a store read
# whole at start) keep librdkafka's prefetch.
ONE_FETCH = {"queued.min.messages": 1}
BROKERS_CHECK_S = 60.0  # how often a reader asks how many brokers the cluster has


@dataclass(slots=True)
class Read:
    """A read begun by :meth:`TailReader.start`: the partitions not yet at their end, and their next
    offsets."""

    at: dict[int, int]
    consumer: Consumer | None  # None: not assigned yet (finish makes the consumer first)
    named: set[int]  # every partition the read has assigned
    assigned: bool = False  # whether ``consumer`` holds an assignment to drop


# Partitions a read must also name, given those it has: asked after each batch it applies (hub.kafka.directory).
More = Callable[[Collection[int]], Mapping[int, int]]


class TailReader:
    """Reads one topic to its end from the positions it is given. One read at a time; any thread.

    The consumer is made at the first read and unassigned between reads, so it fetches nothing while
    idle. Fetches return at once unless the broker needs longer (hub.kafka.read_consumer), and a
    position Kafka no longer holds is an error rather than a silent jump to the partition's start.
    """

    def __init__(self, bootstrap: str, topic: str, consumer_extra: dict[str, Any] | None = None) -> None:
        self.topic = topic
        self._reads = ReadConsumer(
            consumer_config(
                bootstrap,
                "hub-tail-reader",
                {
                    "enable.partition.eof": True,
                    "fetch.wait.max.ms": 1,
                    "fetch.queue.backoff.ms": 1,
                    "auto.offset.reset": "error",
                    **(consumer_extra or {}),
                },
            )
        )
        self._lock = threading.Lock()
        self._one_broker = False
        self._brokers_checked_at = -BROKERS_CHECK_S

    def _watermark_ends(self, consumer: Consumer) -> bool:
        """Whether a partition may end at its records' watermark: only with a single broker (above)."""
        now = time.monotonic()
        if now - self._brokers_checked_at >= BROKERS_CHECK_S:
            try:
                self._one_broker = len(consumer.list_topics(self.topic, timeout=5).brokers) == 1
            except KafkaException:  # unknown: EOF alone until the next check
                self._one_broker = False
            self._brokers_checked_at = now
        return self._one_broker

    def read(self, positions: Sequence[int], apply: Callable[[list[Change]], object], timeout: float) -> None:
        """Hands every record from ``positions`` (the next offset per partition) to the end of each
        partition to ``apply``, in offset order per partition, in batches. Raises TimeoutError if some
        partition's end is not reached within ``timeout`` seconds."""
        self.finish(self.start(positions), apply, timeout)

    def start(self, positions: Sequence[int] | Mapping[int, int]) -> Read:
        """The first half of :meth:`read`: assigns the partitions (all of them, or those ``positions``
        maps to their next offsets), so the first fetch is on its way while
        the caller goes on (librdkafka's main thread takes the assignment, well under a millisecond,
        though nothing bounds it). Never blocks on a consumer to close or make (the first read's, a
        narrowed wait's): that is left to :meth:`finish`. Must be followed by :meth:`finish` or
        :meth:`abandon`, on any thread; a second read waits until then."""
        self._lock.acquire()
        try:
            # the next offset of each partition not yet at its end
            at = dict(positions) if isinstance(positions, Mapping) else dict(enumerate(positions))
            read = Read(at, self._reads.made, set(at))
            if read.consumer is not None:
                self._assign(read)
        except BaseException:
            self._lock.release()
            raise
        return read

    def abandon(self, read: Read) -> None:
        """Ends a :meth:`start` without reading: for a read that will never be finished."""
        try:
            self._unassign(read)
        finally:
            self._lock.release()

    def finish(
        self, read: Read, apply: Callable[[list[Change]], object], timeout: float, more: More | None = None
    ) -> None:
        """The rest of :meth:`read` from a :meth:`start`. ``more`` names partitions to read as well,
        from the given offsets, once the records applied so far call for them."""
        deadline = time.monotonic() + timeout
        at, consumer = read.at, read.consumer
        try:
            while True:
                if consumer is None:  # not assigned at start, or a stall replaced it: from where the read stands
                    consumer = read.consumer = self._reads.consumer
                    self._assign(read)
                try:
                    self._read(consumer, read, apply, deadline, more)
                finally:
                    self._unassign(read)
                if not at:
                    return
                consumer = None
        finally:
            self._lock.release()

    # librdkafka's main thread takes each (un)assignment while the caller waits holding the GIL (about
    # half a millisecond each on a busy machine), so a read makes one of each.
    def _assign(self, read: Read) -> None:
        assert read.consumer is not None
        read.consumer.assign([TopicPartition(self.topic, p, offset) for p, offset in read.at.items()])
        read.assigned = True

    def _unassign(self, read: Read) -> None:
        """Drops the read's assignment, if it holds one on the consumer still in use (a consumer replaced
        after a stall is closed, not unassigned)."""
        if read.assigned and read.consumer is not None and self._reads.current is read.consumer:
            read.consumer.unassign()
        read.assigned = False

    def _read(
        self,
        consumer: Consumer,
        read: Read,
        apply: Callable[[list[Change]], object],
        deadline: float,
        more: More | None,
    ) -> None:
        """Reads until every partition in ``read.at`` is at its end, or returns early with a new consumer."""
        at = read.at
        progress = time.monotonic()
        watermark_ends = self._watermark_ends(consumer)
        while at:
            now = time.monotonic()
            if now >= deadline:
                raise TimeoutError(f"{self.topic}: partitions {sorted(at)} did not reach their end in time")
            stall_after = self._reads.stall_after_s
            if now - progress >= stall_after and self._reads.stalled():
                return
            batch: list[Change] = []
            brought: set[int] = set()  # partitions this fetch brought records of
            for m in consume_ready(consumer, 5000, min(deadline - now, stall_after)):
                err, partition = m.error(), cast(int, m.partition())
                if partition not in at:
                    continue
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        del at[partition]
                        progress = time.monotonic()
                    elif err.code() == KafkaError._AUTO_OFFSET_RESET:
                        raise TimeoutError(f"{self.topic}[{partition}] no longer holds the position to read from")
                    continue
                offset = cast(int, m.offset())
                at[partition] = offset + 1
                brought.add(partition)
                progress = time.monotonic()
                try:
                    key = m.key().decode()  # type: ignore[union-attr]
                except (AttributeError, UnicodeDecodeError):
                    log.error("%s[%d]@%d has no UTF-8 key: skipped", self.topic, partition, offset)
                    continue
                batch.append(Change(key, m.value(), partition, offset, m.timestamp()[1]))
            if watermark_ends:
                for partition in brought & at.keys():
                    _, high = consumer.get_watermark_offsets(TopicPartition(self.topic, partition), cached=True)
                    if at[partition] >= high >= 0:  # -1001 while unknown
                        del at[partition]
            if not at:  # unassigned before applying, which takes long enough for librdkafka to fetch again
                self._unassign(read)
            if batch:
                apply(batch)
                progress = time.monotonic()  # a slow apply is not a broker that stalls
                if more is not None and (extra := more(read.named)):
                    read.named.update(extra)
                    at.update(extra)
                    read.assigned = True  # first: a failed call may have assigned some, and the end drops them
                    consumer.incremental_assign([TopicPartition(self.topic, p, o) for p, o in extra.items()])

    def close(self) -> None:
        with self._lock:
            self._reads.close()
