"""Runs a connector: poll the source, map rows, publish to the hub, store offsets.

Guarantees:

- **At least once.** A source offset is stored only when every record up to
  it has been acknowledged by the hub (which answers only after Kafka has) or
  written to the dead letter. Batches complete out of order; offsets are
  committed in order.
- **Nothing silently dropped.** A row the connector cannot map, and a record
  the hub rejects, go to the dead letter with the reason.
- **Retries with backoff** on retriable statuses (UNAVAILABLE,
  RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ABORTED, INTERNAL), honouring the hub's
  ``retry-after-ms``; records the hub reports UNAVAILABLE are retried alone.
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

import heapq
import itertools
import logging
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import orjson
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from hub.connect.files import ERROR_KEY
from hub.connect.source import Backpressure, Connector, MappingError, Source, SourceRecord
from hub.connect.state import DeadLetterFile, OffsetStore
from hub.v1 import exchange_pb2, exchange_pb2_grpc

log = logging.getLogger(__name__)

RETRIABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.INTERNAL,
}
OK, INVALID = 0, 3
# Calls of one record alone answered INTERNAL before it goes to the dead letter.
MAX_INTERNAL = 5


class ConnectorFailed(RuntimeError):
    """The hub refused the connector in a way retrying cannot fix."""


@dataclass
class RunStats:
    read: int = 0
    published: int = 0
    dead_lettered: int = 0
    retried: int = 0
    calls: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        return self.published / self.elapsed if self.elapsed > 0 else 0.0


@dataclass(slots=True)
class _Entry:
    source: SourceRecord
    key: str = ""
    payload: bytes | None = None
    record: dict | None = None
    done: bool = False
    delete: bool = False
    published: bool = False  # acknowledged by the hub (not dead-lettered)
    internal_failures: int = 0  # calls of this record alone that the hub failed with INTERNAL


@dataclass(slots=True)
class _Batch:
    seq: int
    entries: list[_Entry]
    remaining: int = 0
    attempts: int = 0

    def offsets(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for e in self.entries:
            out[e.source.partition] = e.source.offset
        return out


@dataclass(frozen=True)
class RuntimeOptions:
    batch_size: int = 2000
    max_in_flight: int = 4
    call_timeout_s: float = 60.0
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 30.0
    idle_poll_s: float = 0.2
    # Stop once a live source has caught up and everything is acknowledged (a one-shot run).
    # A bounded source (a file) always stops when it is finished.
    stop_when_idle: bool = False


class ConnectorRuntime:
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
        self.options = options or RuntimeOptions()
        self._stub = exchange_pb2_grpc.ExchangeStub(channel)
        self.offsets = OffsetStore(state_dir / "offsets.json")
        self.dead_letter = DeadLetterFile(state_dir / "dead-letter.jsonl")
        self.stats = RunStats()
        self._on_progress = on_progress
        self._stop = threading.Event()
        self._done: queue.Queue = queue.Queue()
        self._pending: deque[_Batch] = deque()
        self._waiting: deque[tuple[_Batch, list[_Entry]]] = deque()  # cut from a large poll, not yet sent
        # (batch seq, due, tiebreak, batch, entries, re-sent newer entries), oldest batch first
        self._retries: list[tuple[int, float, int, _Batch, list[_Entry], list[_Entry]]] = []
        self._in_flight = 0
        self._source_paused_until = 0.0
        self._hub_paused_until = 0.0  # the hub asked every sender to wait (retry-after)
        self._seq = itertools.count()
        self._tiebreak = itertools.count()
        self._last_progress = 0.0
        self.last_offsets: list[exchange_pb2.PartitionOffset] = []

    def stop(self) -> None:
        """Stops after in-flight calls settle. Safe from any thread or signal handler."""
        self._stop.set()
        self.source.stop()

    # -- the loop --------------------------------------------------------------------------------

    def run(self) -> RunStats:
        self.source.setup(self.offsets.load())
        try:
            while True:
                self._settle(block=False)
                self._resubmit_due()
                self._send_waiting()
                if (
                    not self._stop.is_set()
                    and not self._waiting
                    and not self._retries
                    and self._in_flight < self.options.max_in_flight
                    and time.monotonic() >= max(self._source_paused_until, self._hub_paused_until)
                ):
                    try:
                        rows = self.source.poll(self.options.batch_size)
                    except Backpressure as bp:  # the department's system asks for a pause
                        self._source_paused_until = time.monotonic() + bp.retry_after
                        rows = []
                    if rows:
                        self._submit_new(rows)
                        continue
                drained = not self._pending and not self._retries and not self._waiting
                caught_up = self.source.finished or (self.options.stop_when_idle and self.source.idle)
                if (drained and caught_up) or (self._stop.is_set() and self._in_flight == 0):
                    break  # a stop leaves unsent and unacknowledged records to the next run: no offset covers them
                self._settle(block=True)
        finally:
            self.source.close()
        self._progress(force=True)
        return self.stats

    def _submit_new(self, rows: list[SourceRecord]) -> None:
        """Cuts what the source returned (a source may return whole transactions, more than asked)
        into calls of at most ``batch_size``; calls beyond ``max_in_flight`` wait their turn."""
        self.stats.read += sum(not r.control for r in rows)
        size = self.options.batch_size
        for start in range(0, len(rows), size):
            batch = _Batch(next(self._seq), [self._prepare(r) for r in rows[start : start + size]])
            self._pending.append(batch)
            to_send = [e for e in batch.entries if not e.done]
            batch.remaining = len(to_send)
            if to_send:
                self._waiting.append((batch, to_send))
        self._send_waiting()
        self._commit_ready()

    def _send_waiting(self) -> None:
        if time.monotonic() < self._hub_paused_until or self._retries:
            return
        while self._waiting and self._in_flight < self.options.max_in_flight:
            self._send(*self._waiting.popleft())

    def _prepare(self, rec: SourceRecord) -> _Entry:
        entry = _Entry(rec)
        row = rec.row
        if rec.control:
            entry.done = True
            return entry
        try:
            if ERROR_KEY in row:
                raise MappingError(str(row[ERROR_KEY]))
            if rec.delete or self.connector.deleted(row):
                entry.delete = True
                entry.key = self.connector.key(row)
            else:
                entry.record = self.connector.map(row)
                entry.payload = orjson.dumps(entry.record)
        except MappingError as exc:
            reason = f"{exc.field}: {exc.reason}" if exc.field else exc.reason
            self.dead_letter.write(
                partition=rec.partition, line=rec.line, reason=reason, row=dict(row), stage="mapping"
            )
            self.stats.dead_lettered += 1
            entry.done = True
        return entry

    def _send(self, batch: _Batch, entries: list[_Entry], resend: list[_Entry] | None = None) -> None:
        resend = resend or []
        request = exchange_pb2.PublishRequest(
            resource=self.connector.resource,
            records=[
                exchange_pb2.Record(key=e.key, delete=True) if e.delete else exchange_pb2.Record(json=e.payload)
                for e in (*entries, *resend)
            ],
        )
        self._in_flight += 1
        self.stats.calls += 1
        future = self._stub.Publish.future(request, timeout=self.options.call_timeout_s)
        future.add_done_callback(lambda f: self._done.put((batch, entries, resend, f)))

    # -- outcomes --------------------------------------------------------------------------------

    def _settle(self, block: bool) -> None:
        timeout = self.options.idle_poll_s if block else 0
        if block and self._retries and self._in_flight == 0:  # else a completion wakes us
            due = max(self._retries[0][1], self._hub_paused_until)
            timeout = min(timeout, max(0.001, due - time.monotonic()))
        try:
            item = self._done.get(timeout=timeout) if block else self._done.get_nowait()
        except queue.Empty:
            return
        while True:
            self._in_flight -= 1
            self._handle(*item)
            try:
                item = self._done.get_nowait()
            except queue.Empty:
                break
        self._commit_ready()
        self._progress()

    def _handle(self, batch: _Batch, entries: list[_Entry], resend: list[_Entry], future: grpc.Future) -> None:
        try:
            response: exchange_pb2.PublishResponse = future.result()
        except grpc.RpcError as err:
            self._handle_error(batch, entries, resend, err)
            return
        if response.offsets:
            self.last_offsets = list(response.offsets)
        retry = []
        results = response.results
        for entry, result in zip(entries, results[: len(entries)], strict=True):
            if result.code == OK:
                entry.published = True
                self._resolve(batch, entry)
                self.stats.published += 1
            elif result.code == INVALID:
                self._reject(batch, entry, result.message)
            else:
                retry.append(entry)
        # re-sent records were accepted before: only a retriable failure matters
        later = results[len(entries) :]
        resend_again = [e for e, r in zip(resend, later, strict=True) if r.code not in (OK, INVALID)]
        if retry or resend_again:
            self._schedule_retry(batch, retry, resend_again, None)

    def _handle_error(self, batch: _Batch, entries: list[_Entry], resend: list[_Entry], err: grpc.RpcError) -> None:
        code = err.code()
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            reasons = _violations(err)
            for i, entry in enumerate(entries):
                self._reject(batch, entry, reasons.get(i, err.details()))
            return
        if code == grpc.StatusCode.INTERNAL:
            self._isolate(batch, entries, resend, err)
            return
        if code in RETRIABLE:
            self._schedule_retry(batch, entries, resend, _retry_after(err))
            return
        self._stop.set()
        raise ConnectorFailed(
            f"{self.connector.name}: the hub refused Publish to {self.connector.resource}: {code.name}: {err.details()}"
        )

    def _isolate(self, batch: _Batch, entries: list[_Entry], resend: list[_Entry], err: grpc.RpcError) -> None:
        """INTERNAL is the hub failing, perhaps on one record: retry the records one call each, in
        order, and dead-letter a record the hub has failed on ``MAX_INTERNAL`` times, so one record
        cannot hold its connector up forever."""
        if len(entries) > 1:
            self._schedule_retry(batch, entries, resend, None, one_per_call=True)
            return
        for entry in entries:
            entry.internal_failures += 1
            if entry.internal_failures >= MAX_INTERNAL:
                self._reject(
                    batch, entry, f"the hub failed on this record {MAX_INTERNAL} times: INTERNAL: {err.details()}"
                )
                entries = []
        if entries or resend:
            self._schedule_retry(batch, entries, resend, None)

    def _resolve(self, batch: _Batch, entry: _Entry) -> None:
        entry.done = True
        batch.remaining -= 1

    def _reject(self, batch: _Batch, entry: _Entry, reason: str) -> None:
        self.dead_letter.write(
            partition=entry.source.partition,
            line=entry.source.line,
            reason=reason,
            row=dict(entry.source.row),
            record=entry.record,
            stage="hub",
        )
        self.stats.dead_lettered += 1
        self._resolve(batch, entry)

    def _schedule_retry(
        self,
        batch: _Batch,
        entries: list[_Entry],
        resend: list[_Entry],
        retry_after: float | None,
        one_per_call: bool = False,
    ) -> None:
        batch.attempts += 1
        self.stats.retried += len(entries)
        delay = min(self.options.backoff_max_s, self.options.backoff_initial_s * 2 ** (batch.attempts - 1))
        delay = max(delay * random.uniform(0.5, 1.0), retry_after or 0.0)
        if retry_after:  # the hub is saturated: hold back all new work too, not just this batch
            self._hub_paused_until = max(self._hub_paused_until, time.monotonic() + retry_after)
        log.warning(
            "%s: retrying %d records in %.1fs (attempt %d)", self.connector.name, len(entries), delay, batch.attempts
        )
        due = time.monotonic() + delay
        calls = [[e] for e in entries] if one_per_call else [entries]
        for i, part in enumerate(calls):  # same due, in order: the tiebreak keeps the batch's order
            heapq.heappush(self._retries, (batch.seq, due, next(self._tiebreak), batch, part, resend if i == 0 else []))

    def _resubmit_due(self) -> None:
        """The oldest batch's retry, alone: whatever else was in flight has settled, so nothing
        newer can overtake it, and the newer values of its keys follow it in the same call."""
        now = time.monotonic()
        if not self._retries or self._in_flight or now < max(self._retries[0][1], self._hub_paused_until):
            return
        _, _, _, batch, entries, resend = heapq.heappop(self._retries)
        newer = self._newer_of_same_keys(batch, entries)
        self._send(batch, entries, list({id(e): e for e in (*resend, *newer)}.values()))

    def _newer_of_same_keys(self, batch: _Batch, entries: list[_Entry]) -> list[_Entry]:
        """For each key of ``entries``, the newest record of it that the hub has acknowledged after
        the last retried one (later in this batch, or in a later batch): it overtook the retried
        records, and must be written after them again."""
        position = {id(e): i for i, e in enumerate(batch.entries)}
        last_retried: dict[str, int] = {}
        for e in entries:
            key = self._key_of(e)
            last_retried[key] = max(last_retried.get(key, -1), position[id(e)])
        newest: dict[str, _Entry] = {}
        for i, e in enumerate(batch.entries):
            if e.published and i > last_retried.get(key := self._key_of(e), len(batch.entries)):
                newest[key] = e
        for later in self._pending:  # later batches are all still pending: offsets commit in order
            if later.seq > batch.seq:
                for e in later.entries:
                    if e.published and (key := self._key_of(e)) in last_retried:
                        newest[key] = e
        return list(newest.values())

    def _key_of(self, entry: _Entry) -> str:
        return entry.key if entry.delete else self.connector.key(entry.source.row)

    def _commit_ready(self) -> None:
        offsets: dict[str, Any] = {}
        # not past a batch whose retry is pending, even with its own records done: it re-sends newer ones
        limit = min((r[0] for r in self._retries), default=None)
        while (
            self._pending
            and (limit is None or self._pending[0].seq < limit)
            and self._pending[0].remaining == 0
            and all(e.done for e in self._pending[0].entries)
        ):
            offsets.update(self._pending.popleft().offsets())
        if offsets:
            self.dead_letter.sync()  # a dead-lettered row is handled only once its report is on disk
            self.offsets.commit(offsets)
            self.source.acknowledged(offsets)

    def _progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._on_progress is not None and (force or now - self._last_progress > 0.25):
            self._last_progress = now
            self._on_progress(self.stats)


def _violations(err: grpc.RpcError) -> dict[int, str]:
    """Per-record reasons from the google.rpc.BadRequest details of an INVALID_ARGUMENT."""
    status = rpc_status.from_call(err)
    out: dict[int, str] = {}
    if status is None:
        return out
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            for v in bad.field_violations:
                if v.field.startswith("records[") and "]" in v.field:
                    out[int(v.field[8 : v.field.index("]")])] = v.description
    return out


def _retry_after(err: grpc.RpcError) -> float | None:
    for key, value in err.trailing_metadata() or ():
        if key == "retry-after-ms":
            return int(value) / 1000
    return None
