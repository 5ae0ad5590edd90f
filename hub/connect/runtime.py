"""Runs a connector: poll the source, map rows, publish to the hub, store offsets.

The work is done by steps chained as arroyo chains ``RunTask → Produce → CommitOffsets``:

    source.poll → Mapper → Publisher ⇄ RetryQueue → OffsetCommitter

- :class:`~hub.connect.mapper.Mapper` maps native rows into batches and dead-letters what it cannot;
- :class:`~hub.connect.publisher.Publisher` sends Publish calls and settles each record from the answer;
- :class:`~hub.connect.retries.RetryQueue` holds what must go again until it is due, oldest batch first;
- :class:`~hub.connect.committer.OffsetCommitter` stores offsets in order, per its
  :class:`~hub.connect.committer.CommitPolicy`.

:class:`ConnectorRuntime` only wires them, on one thread. Guarantees:

- **At least once.** A source offset is stored only when every record up to
  it has been acknowledged by the hub (which answers only after Kafka has) or
  written to the dead letter. Batches complete out of order; offsets are
  committed in order.
- **Nothing silently dropped.** A row the source cannot read or the connector cannot map, and a
  record the hub rejects, go to the dead letter with the reason.
- **Retries with backoff** on retriable statuses (:data:`hub.errors.RETRIABLE`), honouring the
  hub's ``retry-after-ms``; records the hub reports UNAVAILABLE are retried alone.
- **Per-key order survives retries.** While a retry is pending nothing new is
  sent; retries go one call at a time, oldest batch first, once nothing is in
  flight, and each carries after its own records the newest acknowledged
  record of every same key from later batches, so the latest value is written
  last again.
- **Backpressure.** At most ``max_in_flight`` Publish calls are outstanding;
  the source is not polled while they are. When the hub answers RESOURCE_EXHAUSTED or
  UNAVAILABLE with ``retry-after-ms``, nothing is sent until that time has passed. A source may
  raise :class:`~hub.connect.source.Backpressure` to pause polling.
- **A record the hub keeps failing on is isolated.** After INTERNAL, a call's
  records are retried one per call; one the hub fails on ``MAX_INTERNAL`` times
  goes to the dead letter instead of holding the connector up.
- A status that retrying cannot fix (NOT_FOUND, PERMISSION_DENIED,
  UNAUTHENTICATED) stops the run with :class:`ConnectorFailed`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from hub.connect.batches import Call, RunStats
from hub.connect.committer import CommitPolicy, OffsetCommitter
from hub.connect.mapper import Mapper
from hub.connect.publisher import MAX_INTERNAL, ConnectorFailed, Publisher, publish_stub
from hub.connect.retries import RetryQueue
from hub.connect.source import Backpressure, Connector, Source, SourceRecord
from hub.connect.state import DeadLetterFile, OffsetStore
from hub.v1 import common_pb2

__all__ = ["MAX_INTERNAL", "CommitPolicy", "ConnectorFailed", "ConnectorRuntime", "RunStats", "RuntimeOptions"]


@dataclass(frozen=True)
class RuntimeOptions:
    batch_size: int = 2000
    max_in_flight: int = 4
    call_timeout_s: float = 60.0
    # Upserts go as one JSON Lines blob per call; False sends a message per record, as hubs before it need.
    jsonl: bool = True
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 30.0
    idle_poll_s: float = 0.2
    # Stop once a live source has caught up and everything is acknowledged (a one-shot run).
    # A bounded source (a file) always stops when it is finished.
    stop_when_idle: bool = False
    # How often ready offsets are stored; the default stores them as soon as they are ready.
    commit_policy: CommitPolicy = field(default_factory=CommitPolicy)


class ConnectorRuntime:
    """Wires the steps. :meth:`run` is the runtime thread: every step is called from it alone, and
    it returns when the source is finished (or caught up, with ``stop_when_idle``) and everything
    read is acknowledged or dead-lettered, or after :meth:`stop`, which any thread may call."""

    def __init__(
        self,
        connector: Connector,
        source: Source,
        channel: grpc.Channel,
        state_dir: Path,
        options: RuntimeOptions | None = None,
        on_progress: Callable[[RunStats], None] | None = None,
    ) -> None:
        self.connector = connector
        self.source = source
        self.options = options = options or RuntimeOptions()
        self.offsets = OffsetStore(state_dir / "offsets.json")
        self.dead_letter = DeadLetterFile(state_dir / "dead-letter.jsonl")
        self.stats = RunStats()
        self._mapper = Mapper(connector, self.dead_letter, self.stats)
        stub = publish_stub(channel)
        self._publisher = Publisher(
            stub,
            connector.name,
            connector.resource,
            self.dead_letter,
            self.stats,
            options.call_timeout_s,
            options.jsonl,
        )
        self._retries = RetryQueue(
            connector.name, self._mapper.key_of, self.stats, options.backoff_initial_s, options.backoff_max_s
        )
        self._committer = OffsetCommitter(self.offsets, self.dead_letter, source.acknowledged, options.commit_policy)
        self._waiting: deque[Call] = deque()  # cut from a large poll, not yet sent
        self._on_progress = on_progress
        self._stop = threading.Event()
        self._source_paused_until = 0.0
        self._last_progress = 0.0

    @property
    def last_offsets(self) -> list[common_pb2.PartitionOffset]:
        """The hub's Kafka offsets of the last acknowledged call, for read-your-writes."""
        return self._publisher.last_offsets

    def stop(self) -> None:
        """Stops after in-flight calls settle. Safe from any thread or signal handler."""
        self._stop.set()
        self.source.stop()

    def run(self) -> RunStats:
        self.source.setup(self.offsets.load())
        try:
            while True:
                self._settle(0)
                self._resubmit_due()
                self._send_waiting()
                if self._may_poll():
                    try:
                        rows = self.source.poll(self.options.batch_size)
                    except Backpressure as bp:  # the department's system asks for a pause
                        self._source_paused_until = time.monotonic() + bp.retry_after
                        rows = []
                    if rows:
                        self._submit_new(rows)
                        continue
                drained = not self._committer.pending and not self._retries and not self._waiting
                caught_up = self.source.finished or (self.options.stop_when_idle and self.source.idle)
                if (drained and caught_up) or (self._stop.is_set() and self._publisher.in_flight == 0):
                    break  # a stop leaves unsent and unacknowledged records to the next run: no offset covers them
                self._settle(self._wait_s())
            self._committer.commit(before=self._retries.oldest_batch(), force=True)
        finally:
            self.source.close()
        self._progress(force=True)
        return self.stats

    def _may_poll(self) -> bool:
        return (
            not self._stop.is_set()
            and not self._waiting
            and not self._retries
            and self._publisher.in_flight < self.options.max_in_flight
            and time.monotonic() >= max(self._source_paused_until, self._retries.held_until)
        )

    def _submit_new(self, rows: list[SourceRecord]) -> None:
        """Calls beyond ``max_in_flight`` wait their turn."""
        for batch in self._mapper.batches(rows, self.options.batch_size):
            self._committer.track(batch)
            if batch.remaining:
                self._waiting.append(Call(batch, tuple(e for e in batch.entries if not e.done)))
        self._send_waiting()
        self._committer.commit(before=self._retries.oldest_batch())

    def _send_waiting(self) -> None:
        if self._retries or self._retries.holding():
            return
        while self._waiting and self._publisher.in_flight < self.options.max_in_flight:
            self._publisher.send(self._waiting.popleft())

    def _resubmit_due(self) -> None:
        """The oldest batch's retry, alone: whatever else was in flight has settled, so nothing
        newer can overtake it, and the newer values of its keys follow it in the same call."""
        if self._publisher.in_flight:
            return
        call = self._retries.pop_due(self._committer.pending)
        if call is not None:
            self._publisher.send(call)

    def _wait_s(self) -> float:
        """How long to wait for an answer: a completion wakes the loop, else a due retry must."""
        due = self._retries.next_due()
        if due is None or self._publisher.in_flight:
            return self.options.idle_poll_s
        return min(self.options.idle_poll_s, max(0.001, due - time.monotonic()))

    def _settle(self, timeout: float) -> None:
        for retry in self._publisher.settle(timeout):
            self._retries.schedule(retry)
        self._committer.commit(before=self._retries.oldest_batch())
        self._progress()

    def _progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._on_progress is not None and (force or now - self._last_progress > 0.25):
            self._last_progress = now
            self._on_progress(self.stats)
