"""A consumer for reads that a caller waits on, whose fetch wait widens when the broker needs longer.

Such reads want each fetch answered at once (``fetch.wait.max.ms`` of 1 ms): tansu holds every fetch
for its whole wait, and Kafka holds a fetch at a partition's end that long. But to serve a fetch behind
a partition's end, tansu 0.6.0 lists every record batch of that partition, and when the broker takes
longer than the fetch's wait it answers with no records and no error. The client fetches again at
once, and the read spins, the broker busy listing, until its deadline. Measured (one-record batches
in one partition, reading its last ten records): 2,000 batches already failed now and then with a
1 ms wait, 30,000 never answered with 5 ms and were read in 40 ms with 20 ms. A partition's batch
count only grows, so no fixed wait is right for its whole life, and a short one is wrong sooner on
a busy machine.

So a read that makes no progress (no record, no end of partition) for ten fetch waits, and at least
:data:`MIN_STALL_S`, says so with :meth:`ReadConsumer.stalled`: the consumer is replaced by one whose
wait is twice as long, up to :data:`MAX_WAIT_MS`, and the caller assigns again from where it stands
(steps of four went from 4 straight to 16 ms in two years of cases, and on tansu every fetch costs
its whole wait). A broker that is away stalls reads too, but the client says so (a transport
error): such a stall widens nothing. A wider wait is tried one step narrower after
:data:`NARROW_AFTER_S` without a stall: a narrowing costs one stall while the log is long, but every
read at a wider wait costs that wait on tansu (two years of cases ran slower with widened waits kept
ten minutes than one). On Kafka a fetch returns as soon as there is data, so there a stall means a
slow broker and a wider wait costs little.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import Consumer, KafkaError

log = logging.getLogger(__name__)

MIN_STALL_S = 0.05
STALL_FETCHES = 10
MAX_WAIT_MS = 1024
WIDEN = 2
NARROW_AFTER_S = 60.0
# How recent a transport error must be for a stall to count as the broker being away (librdkafka
# retries a lost connection with a backoff of up to 10 s).
AWAY_S = 10.0
_AWAY = (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE)


class ReadConsumer:
    """Holds the consumer of one kind of read (not thread-safe: the reader serialises its reads)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = {**config, "error_cb": self._on_error}
        self._away_at = -AWAY_S  # when the client last said the broker is away
        self._narrowest = self.wait_ms = int(config.get("fetch.wait.max.ms", 1))
        self._stalled_at = 0.0
        self._consumer: Consumer | None = None

    @property
    def consumer(self) -> Consumer:
        """The consumer to assign for a read: made at first use, after :meth:`stalled`, and when a
        widened wait is narrowed again (closing and making one may block)."""
        if self._narrowing_due():
            self.close()
            self.wait_ms = max(self.wait_ms // WIDEN, self._narrowest)
            self._stalled_at = time.monotonic()
        if self._consumer is None:
            self._consumer = Consumer({**self._config, "fetch.wait.max.ms": self.wait_ms})
        return self._consumer

    @property
    def made(self) -> Consumer | None:
        """:attr:`consumer` if taking it needs no consumer closed or made (which may block); else None."""
        return None if self._narrowing_due() else self._consumer

    def _narrowing_due(self) -> bool:
        return self.wait_ms > self._narrowest and time.monotonic() - self._stalled_at > NARROW_AFTER_S

    @property
    def stall_after_s(self) -> float:
        """How long a read may go without progress before it calls :meth:`stalled`."""
        return max(MIN_STALL_S, STALL_FETCHES * self.wait_ms / 1000)

    @property
    def current(self) -> Consumer | None:
        """The consumer made last, if it is still open."""
        return self._consumer

    def _on_error(self, err: KafkaError) -> None:  # served by the consumer's poll
        if err.code() in _AWAY:
            self._away_at = time.monotonic()

    def stalled(self) -> bool:
        """A read made no progress for :attr:`stall_after_s`. Returns True if the consumer was replaced by
        one that waits longer (the caller assigns again); False if the broker is away or the wait is
        already the longest."""
        now = time.monotonic()
        if now - self._away_at < AWAY_S:
            return False
        self._stalled_at = now
        if self.wait_ms >= MAX_WAIT_MS:
            return False
        self.close()
        before, self.wait_ms = self.wait_ms, min(self.wait_ms * WIDEN, MAX_WAIT_MS)
        log.warning(
            "%s: the broker answered no fetch within %d ms; fetching with a %d ms wait from now on",
            self._config.get("group.id", "a reader"),
            before,
            self.wait_ms,
        )
        return True

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
