"""Reads one case's events back from the cases topic, for a reviewer asking for the proofs behind a
case number. The topic is the record (not compacted): every submission of the case is an event.

A reviewer's question is rare, so this scans the topic rather than keeping an index in every replica.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, TopicPartition

from hub.errors import Unavailable
from hub.kafka.clients import consumer_config


def case_events(
    bootstrap: str, topic: str, case_number: str, consumer_extra: dict[str, Any] | None = None, timeout: float = 60.0
) -> list[dict]:
    """Every event keyed ``case_number``, oldest first, each with ``at_ms`` (its record's timestamp)."""
    consumer = Consumer(
        consumer_config(bootstrap, "hub-case-events", {"enable.partition.eof": True, **(consumer_extra or {})})
    )
    wanted = case_number.encode()
    deadline = time.monotonic() + timeout
    try:
        partitions = consumer.list_topics(topic, timeout=timeout).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        found: list[dict] = []
        done: set[int] = set()
        while len(done) < len(partitions):
            if time.monotonic() > deadline:
                raise Unavailable(f"could not read {topic} to its end within {timeout:.0f} s; try again")
            for m in consumer.consume(5000, 1.0):
                error, partition, value = m.error(), m.partition(), m.value()
                if partition is None:
                    continue
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        done.add(partition)
                    continue
                done.discard(partition)
                if m.key() == wanted and value:
                    found.append(orjson.loads(value))
        return sorted(found, key=lambda e: e.get("at_ms", 0))
    finally:
        consumer.close()
