"""An acks=all producer (idempotent unless configured not to be: hub.kafka.clients), awaitable from asyncio.

A Publish RPC awaits :meth:`AckingProducer.send` and answers only when Kafka
has acknowledged (or finally refused) every record of its batch. Delivery
callbacks run on one poller thread; each batch wakes its caller's event loop
once, not once per record.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from hub.kafka.clients import discard, renewal_errors
from hub.records.codec import Headers

log = logging.getLogger(__name__)


@dataclass(slots=True)  # not frozen: one per record produced, and a frozen dataclass takes 3x as long to make
class Delivery:
    """Where a record was written, or why it was not."""

    partition: int
    offset: int
    error: KafkaError | None


class _Pending:
    """The deliveries of one batch; resolved on the loop when the last arrives."""

    __slots__ = ("future", "lock", "loop", "remaining", "results")

    def __init__(self, size: int, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[list[Delivery]] = loop.create_future()
        self.results: list[Delivery | None] = [None] * size
        self.remaining = size
        # Deliveries arrive on the poller thread, refusals on the loop: a lost decrement would hang the call.
        self.lock = threading.Lock()

    def on_delivery(self, index: int, err: KafkaError | None, msg: Message) -> None:
        # A retried batch the broker already had is acknowledged without an offset (None).
        offset = msg.offset() if err is None else None
        self.results[index] = Delivery(msg.partition(), -1 if offset is None else offset, err)  # type: ignore[arg-type]
        self._count(1)

    def refuse(self, index: int, err: KafkaError) -> None:
        self._settle(index, [Delivery(-1, -1, err)])

    def refuse_from(self, index: int, err: KafkaError) -> None:
        """Records from ``index`` on were never queued: they will never call back."""
        self._settle(index, [Delivery(-1, -1, err)] * (len(self.results) - index))

    def _settle(self, index: int, deliveries: list[Delivery]) -> None:
        self.results[index : index + len(deliveries)] = deliveries
        self._count(len(deliveries))

    def _count(self, settled: int) -> None:
        with self.lock:
            self.remaining -= settled
            done = self.remaining == 0
        if done:
            self.loop.call_soon_threadsafe(self._resolve)

    def _resolve(self) -> None:
        if not self.future.done():
            self.future.set_result(self.results)  # type: ignore[arg-type]


class AckingProducer:
    """Wraps one librdkafka producer. ``send`` may be called from any event loop."""

    def __init__(self, config: dict, queue_wait_s: float = 10.0) -> None:
        self._config = {**config, "error_cb": self._on_error}
        self._producer = Producer(self._config)
        self._fatal = threading.Event()
        self._renewed_by = renewal_errors(config)  # replaced at once, the next call goes through
        self._queue_wait_s = queue_wait_s
        self._stopping = threading.Event()
        self._poller = threading.Thread(target=self._poll_loop, name="producer-poll", daemon=True)
        self._poller.start()
        self.produced = 0

    def _on_error(self, err: KafkaError) -> None:
        log.warning("kafka producer: %s", err)
        if err.fatal():  # e.g. PRODUCER_FENCED after the broker's storage came back: never recovers by itself
            self._fatal.set()

    def _poll_loop(self) -> None:
        while not self._stopping.is_set():
            if self._fatal.is_set():
                self._replace()
            self._producer.poll(0.05)

    def _replace(self) -> None:
        """A fresh producer (a new producer id) for what comes next; what the old one held fails its
        callers as retriable, so nothing it was not sure of is reported acknowledged."""
        old, self._producer = self._producer, Producer(self._config)
        self._fatal.clear()
        log.error("kafka producer hit a fatal error; replaced it")
        discard(old)

    async def send(
        self,
        topic: str,
        records: Sequence[tuple[bytes, bytes | None]],
        headers: Headers,
        partition_hint: int | None = None,
    ) -> list[Delivery]:
        """Produces ``(key, value)`` pairs; returns one Delivery per record, in order.

        Waits while the local queue is full (backpressure). If it stays full
        for ``queue_wait_s``, the records not yet queued are reported with a
        ``_QUEUE_FULL`` error and the caller may retry them.
        """
        loop = asyncio.get_running_loop()
        pending = _Pending(len(records), loop)
        if not records:
            return []
        while self._fatal.is_set() and self._poller.is_alive():  # not on the producer being replaced
            await asyncio.sleep(0.005)
        first = self._producer
        for i, (key, value) in enumerate(records):
            callback = partial(pending.on_delivery, i)
            deadline = None
            while True:
                producer = self._producer  # the poller may replace it while this call waits for room
                try:
                    if partition_hint is None:
                        producer.produce(topic, value, key, headers=headers, on_delivery=callback)
                    else:
                        producer.produce(
                            topic, value, key, partition=partition_hint, headers=headers, on_delivery=callback
                        )
                    break
                except KafkaException as exc:  # refused before queueing (too large): this record only
                    pending.refuse(i, exc.args[0])
                    break
                except RuntimeError:  # closed: replaced meanwhile (then on the new one), or shutting down
                    if self._producer is producer:
                        pending.refuse_from(i, KafkaError(KafkaError._DESTROY))
                        return await pending.future
                except BufferError:
                    deadline = deadline or time.monotonic() + self._queue_wait_s
                    if time.monotonic() < deadline:
                        await asyncio.sleep(0.005)
                        continue
                    # Records never queued never call back: settle them here.
                    log.warning(
                        "producer queue full for %.0fs; refusing %d records", self._queue_wait_s, len(records) - i
                    )
                    pending.refuse_from(i, KafkaError(KafkaError._QUEUE_FULL))
                    self.produced += i
                    return await pending.future
        self.produced += len(records)
        deliveries = await pending.future
        # Fenced records come back one by one, not through error_cb. A producer already replaced is not
        # renewed again: its late timeouts would purge the new one's records in flight.
        if self._producer is first and any(
            d.error is not None and d.error.code() in self._renewed_by for d in deliveries
        ):
            self._fatal.set()
        return deliveries

    def abandon(self) -> None:
        """Fails what is queued or in flight now (retriable for its callers): for a broker that lost
        its log, where waiting for delivery only waits out the timeout. Call before :meth:`close`."""
        self._producer.purge()

    def close(self, timeout: float = 10.0) -> None:
        remaining = self._producer.flush(timeout)
        if remaining:
            log.error("%d records were not acknowledged before shutdown", remaining)
        self._stopping.set()
        self._poller.join(timeout=2)
        self._producer.close()  # releases librdkafka at once instead of at garbage collection
