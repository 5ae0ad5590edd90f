"""Reads recorded case events back from the cases topic, at the positions the case ledger keeps: a
resubmitted case's recorded result, and a case's receipt for a reviewer. The topic is the record (not
compacted), so an acknowledged event stays where the ledger saw it.

Both questions are rare next to submissions, so one consumer, made at the first read, serves them one
read at a time; it is unassigned between reads, so it fetches nothing while idle.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, cast

import orjson
from confluent_kafka import KafkaError, TopicPartition

from hub.errors import FailedPrecondition, Unavailable
from hub.kafka.clients import consumer_config
from hub.kafka.read_consumer import ReadConsumer
from hub.kafka.tail import ONE_FETCH


class CaseEvents:
    """The events at given (partition, offset) positions of the cases topic. Any thread."""

    def __init__(self, bootstrap: str, topic: str, consumer_extra: dict[str, Any] | None = None) -> None:
        self._topic = topic
        # Fetch only what is asked for, at once: the record is there, so no fetch need wait for more
        # (tansu holds each fetch for the whole wait; hub.kafka.read_consumer widens it when tansu needs
        # longer), nothing is prefetched past it (one record queued stops fetching, where the default
        # fetched on to the partition's end), a partition whose queue was full is not held back 1 s into
        # the next read (librdkafka's queue backoff), and an offset Kafka no longer holds is an error,
        # not a read from the partition's start.
        self._reads = ReadConsumer(
            consumer_config(
                bootstrap,
                "hub-case-events",
                {
                    "fetch.wait.max.ms": 1,
                    **ONE_FETCH,
                    "fetch.queue.backoff.ms": 1,
                    "auto.offset.reset": "error",
                    **(consumer_extra or {}),
                },
            )
        )
        self._lock = threading.Lock()

    def read(self, positions: Sequence[tuple[int, int]], timeout: float = 30.0) -> list[dict]:
        """The events at ``positions``, in their order. :class:`Unavailable` if Kafka does not give them all
        within ``timeout`` seconds; :class:`FailedPrecondition` if it no longer holds one (past retention)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            try:
                found = self._read(set(positions), deadline)
            finally:
                if (consumer := self._reads.current) is not None:
                    consumer.unassign()
        return [orjson.loads(found[p]) for p in positions]

    def _read(self, wanted: set[tuple[int, int]], deadline: float) -> dict[tuple[int, int], bytes]:
        found: dict[tuple[int, int], bytes] = {}
        # One assignment per position not yet read: a call's events are consecutive in one partition,
        # so the first fetch usually brings the rest of them too.
        for partition, offset in sorted(wanted):
            if (partition, offset) in found:
                continue
            consumer = self._reads.consumer
            consumer.assign([TopicPartition(self._topic, partition, offset)])
            while (partition, offset) not in found:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Unavailable(f"could not read the case event at {self._topic}[{partition}]@{offset}; retry")
                m = consumer.poll(min(remaining, self._reads.stall_after_s))
                if m is None:
                    if self._reads.stalled():
                        consumer = self._reads.consumer
                        consumer.assign([TopicPartition(self._topic, partition, offset)])
                    continue
                err, at = m.error(), (cast(int, m.partition()), cast(int, m.offset()))
                if err is None and at in wanted:
                    found[at] = cast(bytes, m.value())
                    continue
                # Out of the partition's range, or skipped: removed by retention, and a retry would not bring
                # it back. Other errors (a broker away) are retried until the deadline.
                out_of_range = err is not None and err.code() == KafkaError._AUTO_OFFSET_RESET
                skipped = err is None and at[0] == partition and at[1] > offset
                if out_of_range or skipped:
                    raise FailedPrecondition(
                        f"the case event at {self._topic}[{partition}]@{offset} is no longer held (topic retention)"
                    )
        return found

    def close(self) -> None:
        with self._lock:
            self._reads.close()
