"""Reading a topic from known positions to its end as of now: the barrier behind every "apply what
was acknowledged before this call" in the hub.

The end is the high watermark a fetch sent after the read began reports, which covers every
acknowledged record (acks=all): a partition is at its end once its last record below that watermark
is read, or when the fetch reports partition EOF. It also costs less than asking for the ends first:
tansu's ListOffsets lists every record batch of a partition, while a fetch at a partition's end only
reads its watermark, so an up-to-date partition costs the same however long its log has grown. Only
partitions with new records are read.

A read costs one fetch of every partition it names when nothing is new: the records that end at the
watermark end their partition without a second fetch to report EOF, and librdkafka fetches again
only once the records and EOFs of the last fetch are consumed (``queued.min.messages`` of 1), by
which time the read has unassigned what it finished. Before, a read cost two fetches with nothing
new and three with new records (librdkafka's statistics), each naming every partition.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from confluent_kafka import Consumer, KafkaError, TopicPartition

from hub.kafka.clients import consume_ready, consumer_config
from hub.kafka.read_consumer import ReadConsumer
from hub.records.change import Change

log = logging.getLogger(__name__)


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
                    "queued.min.messages": 1,
                    "fetch.queue.backoff.ms": 1,
                    "auto.offset.reset": "error",
                    **(consumer_extra or {}),
                },
            )
        )
        self._lock = threading.Lock()

    def read(self, positions: Sequence[int], apply: Callable[[list[Change]], object], timeout: float) -> None:
        """Hands every record from ``positions`` (the next offset per partition) to the end of each
        partition to ``apply``, in offset order per partition, in batches. Raises TimeoutError if some
        partition's end is not reached within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        at = dict(enumerate(positions))  # the next offset of each partition not yet at its end
        with self._lock:
            while at:
                consumer = self._reads.consumer
                consumer.assign([TopicPartition(self.topic, p, offset) for p, offset in at.items()])
                try:
                    self._read(consumer, at, apply, deadline)
                finally:
                    if self._reads.current is consumer:
                        consumer.unassign()

    def _read(
        self, consumer: Consumer, at: dict[int, int], apply: Callable[[list[Change]], object], deadline: float
    ) -> None:
        """Reads until every partition in ``at`` is at its end, or returns early with a new consumer."""
        progress = time.monotonic()
        while at:
            now = time.monotonic()
            if now >= deadline:
                raise TimeoutError(f"{self.topic}: partitions {sorted(at)} did not reach their end in time")
            stall_after = self._reads.stall_after_s
            if now - progress >= stall_after and self._reads.stalled():
                return
            batch: list[Change] = []
            read: set[int] = set()
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
                read.add(partition)
                progress = time.monotonic()
                try:
                    key = m.key().decode()  # type: ignore[union-attr]
                except (AttributeError, UnicodeDecodeError):
                    log.error("%s[%d]@%d has no UTF-8 key: skipped", self.topic, partition, offset)
                    continue
                batch.append(Change(key, m.value(), partition, offset, m.timestamp()[1]))
            for partition in read & at.keys():
                # Set from the response that brought the partition's records (librdkafka updates it
                # before queueing them), so it is no older than the read; -1001 while unknown.
                _, high = consumer.get_watermark_offsets(TopicPartition(self.topic, partition), cached=True)
                if at[partition] >= high >= 0:
                    del at[partition]
            if not at:
                consumer.unassign()  # before applying, which takes long enough for librdkafka to fetch again
            if batch:
                apply(batch)

    def close(self) -> None:
        with self._lock:
            self._reads.close()
