"""Reading a topic from known positions to its end as of now: the barrier behind every "apply what
was acknowledged before this call" in the hub.

The end is where a fetch sent after the read began reports partition EOF. On Kafka that fetch sees
the high watermark, which covers every acknowledged record (acks=all). It also costs less than asking
for the ends first: tansu's ListOffsets lists every record batch of a partition, while a fetch at a
partition's end only reads its watermark, so an up-to-date partition costs the same however long its
log has grown. Only partitions with new records are read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from confluent_kafka import Consumer, KafkaError, TopicPartition

from hub.kafka.clients import consume_ready, consumer_config
from hub.records.change import Change

log = logging.getLogger(__name__)


class TailReader:
    """Reads one topic to its end from the positions it is given. One read at a time; any thread.

    The consumer is made at the first read and unassigned between reads, so it fetches nothing while
    idle. Fetches return at once (a read waits on them), and a position Kafka no longer holds is an
    error rather than a silent jump to the partition's start.
    """

    def __init__(self, bootstrap: str, topic: str, consumer_extra: dict[str, Any] | None = None) -> None:
        self.topic = topic
        self._config = consumer_config(
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
        self._consumer: Consumer | None = None
        self._lock = threading.Lock()

    def read(self, positions: Sequence[int], apply: Callable[[list[Change]], object], timeout: float) -> None:
        """Hands every record from ``positions`` (the next offset per partition) to the end of each
        partition to ``apply``, in offset order per partition, in batches. Raises TimeoutError if some
        partition's end is not reached within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._consumer is None:
                self._consumer = Consumer(self._config)
            consumer = self._consumer
            consumer.assign([TopicPartition(self.topic, p, at) for p, at in enumerate(positions)])
            try:
                self._read(consumer, set(range(len(positions))), apply, deadline)
            finally:
                consumer.unassign()

    def _read(
        self, consumer: Consumer, pending: set[int], apply: Callable[[list[Change]], object], deadline: float
    ) -> None:
        while pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.topic}: partitions {sorted(pending)} did not reach their end in time")
            batch = []
            for m in consume_ready(consumer, 5000, min(remaining, 0.2)):
                err, partition = m.error(), cast(int, m.partition())
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        pending.discard(partition)
                    elif err.code() == KafkaError._AUTO_OFFSET_RESET:
                        raise TimeoutError(f"{self.topic}[{partition}] no longer holds the position to read from")
                    continue
                try:
                    key = m.key().decode()  # type: ignore[union-attr]
                except (AttributeError, UnicodeDecodeError):
                    log.error("%s[%d]@%d has no UTF-8 key: skipped", self.topic, partition, m.offset())
                    continue
                batch.append(Change(key, m.value(), partition, cast(int, m.offset()), m.timestamp()[1]))
            if batch:
                apply(batch)

    def close(self) -> None:
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None
