"""The audit index, brought up to date when someone asks, not followed by every worker.

Every call writes to the audit topic, so its partitions grow by a message per group commit. A
replica that followed them would parse every entry of every worker as it arrives, and poll their
tails all the time, for questions (Audit.QueryResource, Audit.QuerySubject) that are rare next to
the writes. tansu's fetch cost grows with the number of record batches in a partition, so those
polls also got dearer the longer a hub ran. Instead, a question first reads the topic from where
the index stopped to its end (partition EOF at or past the high watermark, as hub.cache.feeder),
then answers from the index. That also makes the answer include every entry acknowledged before
the question: answered calls are acknowledged before they answer.
"""

from __future__ import annotations

import threading
import time
from typing import Any, cast

from confluent_kafka import Consumer, KafkaError, TopicPartition

from hub.errors import Unavailable
from hub.governance.audit_index import AuditIndex
from hub.kafka.clients import consumer_config
from hub.records.change import Change


class AuditReader:
    """An :class:`AuditIndex` read up to the audit topic's end before each question. Any thread."""

    def __init__(
        self, bootstrap: str, topic: str, partitions: int, consumer_extra: dict[str, Any] | None = None
    ) -> None:
        self.index = AuditIndex(partitions)
        self._topic = topic
        self._config = consumer_config(
            bootstrap, "hub-audit-reader", {"enable.partition.eof": True, **(consumer_extra or {})}
        )
        self._lock = threading.Lock()  # one catch-up at a time; the index has one writer

    def catch_up(self, timeout: float = 60.0) -> None:
        """Applies what the topic holds past the index; raises :class:`Unavailable` if it cannot."""
        with self._lock:
            consumer = Consumer(self._config)
            try:
                self._read(consumer, time.monotonic() + timeout)
            finally:
                consumer.close()

    def _read(self, consumer: Consumer, deadline: float) -> None:
        topic, positions = self._topic, self.index.positions()
        highs = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1]
            for p in range(len(positions))
        }
        consumer.assign([TopicPartition(topic, p, position) for p, position in enumerate(positions)])
        pending = set(highs)
        while pending:
            if time.monotonic() > deadline:
                raise Unavailable(f"could not read the audit topic {topic} to its end; ask again")
            batch = []
            for m in consumer.consume(5000, 0.5):
                err, partition = m.error(), cast(int, m.partition())
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF and cast(int, m.offset()) >= highs[partition]:
                        pending.discard(partition)
                    continue
                key = m.key() or b""
                batch.append(Change(key.decode(), m.value(), partition, cast(int, m.offset())))
            if batch:
                self.index.apply(batch)

    def by_subject(self, digest: str, limit: int) -> list[dict]:
        self.catch_up()
        return self.index.by_subject(digest, limit)

    def by_resource(self, resource: str, limit: int) -> tuple[list[tuple[str, str, int]], list[dict], int]:
        self.catch_up()
        return self.index.by_resource(resource, limit)
