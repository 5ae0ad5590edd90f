"""The connector runtime's second step: Publish calls, and what the hub's answers mean for each record."""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Protocol, cast

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from hub.connect.batches import Batch, Call, Entry, RunStats, ToRetry
from hub.connect.state import DeadLetterFile
from hub.errors import RETRIABLE
from hub.v1 import common_pb2, exchange_pb2, exchange_pb2_grpc

# Calls of one record alone answered INTERNAL before it goes to the dead letter.
MAX_INTERNAL = 5
_CODES = {code.value[0]: code for code in grpc.StatusCode}


class ConnectorFailed(RuntimeError):
    """The hub refused the connector in a way retrying cannot fix."""


class PublishMethod(Protocol):
    def future(
        self, request: exchange_pb2.PublishRequest, timeout: float | None = None
    ) -> grpc.Future[exchange_pb2.PublishResponse]: ...


class PublishStub(Protocol):
    """What the publisher needs of ``hub.v1.Exchange``: a real stub, or a fake one in a unit test."""

    @property
    def Publish(self) -> PublishMethod: ...


# the generated stub module has no annotations: say what it provides
publish_stub = cast(Callable[[grpc.Channel], PublishStub], exchange_pb2_grpc.ExchangeStub)


class Publisher:
    """Sends Publish calls and settles their records from the hub's answers.

    Contract:

    - :meth:`send` does not block: it starts the call and returns. gRPC's thread queues the answer;
      :meth:`settle` takes answers on the runtime thread, the only thread that calls either method.
    - A call of upserts only carries them as one JSON Lines blob (``jsonl``), cheaper on both sides
      than a message per record; a call with deletes carries ``records``, and so does every call
      with ``jsonl=False``, for a hub older than that field (which would find no records).
    - A record the hub acknowledged is marked published and done; one it refused as invalid
      (INVALID_ARGUMENT, for the record or the whole call) goes to the dead letter with the reason.
    - Records answered with a retriable status (:data:`hub.errors.RETRIABLE`) come back from
      :meth:`settle` as :class:`ToRetry`, with the hub's ``retry-after-ms``. So do the records of a
      call the hub failed on (INTERNAL), to be tried one per call: a record the hub has failed on
      alone ``MAX_INTERNAL`` times goes to the dead letter instead of holding the connector up.
    - Any other status of the whole call (NOT_FOUND, PERMISSION_DENIED, UNAUTHENTICATED, ...)
      raises :class:`ConnectorFailed` from :meth:`settle`.
    """

    def __init__(
        self,
        stub: PublishStub,
        connector: str,
        resource: str,
        dead_letter: DeadLetterFile,
        stats: RunStats,
        call_timeout_s: float,
        jsonl: bool = True,
    ) -> None:
        self._stub = stub
        self._jsonl = jsonl
        self.connector = connector
        self.resource = resource
        self.dead_letter = dead_letter
        self.stats = stats
        self.call_timeout_s = call_timeout_s
        self.in_flight = 0
        # the hub's Kafka offsets of the last acknowledged call, for read-your-writes
        self.last_offsets: list[common_pb2.PartitionOffset] = []
        self._answers: queue.SimpleQueue[tuple[Call, grpc.Future[exchange_pb2.PublishResponse]]] = queue.SimpleQueue()

    def send(self, call: Call) -> None:
        entries = (*call.entries, *call.resend)
        request = exchange_pb2.PublishRequest(resource=self.resource)
        if not self._jsonl or any(e.delete for e in entries):
            request.records.extend(
                exchange_pb2.Record(key=e.key, delete=True) if e.delete else exchange_pb2.Record(json=e.payload)
                for e in entries
            )
        else:  # upserts only: one JSON Lines blob, which the hub validates column by column
            request.jsonl = b"\n".join(cast(bytes, e.payload) for e in entries)
        self.in_flight += 1
        self.stats.calls += 1
        future = self._stub.Publish.future(request, timeout=self.call_timeout_s)
        future.add_done_callback(lambda f: self._answers.put((call, f)))

    def settle(self, timeout: float = 0.0) -> list[ToRetry]:
        """Settles every call answered by now, waiting up to ``timeout`` seconds for the first one.
        Returns what must be retried, in the order the answers came."""
        try:
            answer = self._answers.get(timeout=timeout) if timeout > 0 else self._answers.get_nowait()
        except queue.Empty:
            return []
        retries: list[ToRetry] = []
        while True:
            self.in_flight -= 1
            retries.extend(self._settle(*answer))
            try:
                answer = self._answers.get_nowait()
            except queue.Empty:
                return retries

    def _settle(self, call: Call, future: grpc.Future[exchange_pb2.PublishResponse]) -> list[ToRetry]:
        try:
            response = future.result()
        except grpc.RpcError as err:
            return self._failed(call, err)
        if response.offsets:
            self.last_offsets = list(response.offsets)
        results = response.results
        if len(results) == len(call.entries) + len(call.resend) and not any(r.code for r in results):  # all OK (0)
            call.batch.resolve_all(call.entries)
            self.stats.published += len(call.entries)
            return []
        retry = []
        for entry, result in zip(call.entries, results[: len(call.entries)], strict=True):
            code = _CODES.get(result.code, grpc.StatusCode.UNKNOWN)
            if code == grpc.StatusCode.OK:
                entry.published = True
                call.batch.resolve(entry)
                self.stats.published += 1
            elif code in RETRIABLE:
                retry.append(entry)
            elif code == grpc.StatusCode.INVALID_ARGUMENT:
                self._reject(call.batch, entry, result.message)
            else:  # no retry fixes it, and the hub has not taken it
                self._reject(call.batch, entry, f"{code.name}: {result.message}")
        # re-sent records were acknowledged before: only a failure that retrying fixes matters
        later = results[len(call.entries) :]
        resend = tuple(e for e, r in zip(call.resend, later, strict=True) if _CODES.get(r.code) in RETRIABLE)
        return [ToRetry(call.batch, tuple(retry), resend)] if retry or resend else []

    def _failed(self, call: Call, err: grpc.RpcError) -> list[ToRetry]:
        code = err.code()
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            reasons = _violations(err)
            for i, entry in enumerate(call.entries):
                self._reject(call.batch, entry, reasons.get(i, err.details() or code.name))
            return []
        if code == grpc.StatusCode.INTERNAL:
            return self._isolate(call, err)
        if code in RETRIABLE:
            return [ToRetry(call.batch, call.entries, call.resend, _retry_after(err))]
        raise ConnectorFailed(
            f"{self.connector}: the hub refused Publish to {self.resource}: {code.name}: {err.details()}"
        )

    def _isolate(self, call: Call, err: grpc.RpcError) -> list[ToRetry]:
        """INTERNAL is the hub failing, perhaps on one record: retry the records one call each, in
        order, and dead-letter a record the hub has failed on ``MAX_INTERNAL`` times, so one record
        cannot hold its connector up forever."""
        if len(call.entries) > 1:
            return [ToRetry(call.batch, call.entries, call.resend, one_per_call=True)]
        entries = call.entries
        for entry in call.entries:
            entry.internal_failures += 1
            if entry.internal_failures >= MAX_INTERNAL:
                self._reject(
                    call.batch, entry, f"the hub failed on this record {MAX_INTERNAL} times: INTERNAL: {err.details()}"
                )
                entries = ()
        return [ToRetry(call.batch, entries, call.resend)] if entries or call.resend else []

    def _reject(self, batch: Batch, entry: Entry, reason: str) -> None:
        self.dead_letter.write(
            partition=entry.source.partition,
            line=entry.source.line,
            reason=reason,
            row=dict(entry.source.row),
            record=entry.record,
            stage="hub",
        )
        self.stats.dead_lettered += 1
        batch.resolve(entry)


def _violations(err: grpc.RpcError) -> dict[int, str]:
    """Per-record reasons from the google.rpc.BadRequest details of an INVALID_ARGUMENT."""
    status = rpc_status.from_call(cast(grpc.Call, err))  # the error of a call is the call
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
    for item in err.trailing_metadata() or ():
        if item.key == "retry-after-ms":
            return int(item.value) / 1000
    return None
