"""The sink side of the SDK: receive a resource's pushed changes into a department's system.

A :class:`Sink` writes change events (upserts and deletes, masked per the department's grant). The
:class:`SinkRuntime` follows a named subscription and acknowledges its cursor only after the sink
has written the events, so a restarted sink (or hub) resumes after the last write: at least once,
and idempotent sinks (keyed upserts) see no duplicate effect. A sink that cannot take more raises
:class:`~hub.connect.source.Backpressure`; the runtime stops reading (gRPC flow control then holds
the stream) and retries the same events after ``retry_after``.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import grpc
import orjson

from hub.connect.source import Backpressure
from hub.errors import RESUMABLE
from hub.v1 import common_pb2, subscription_pb2, subscription_pb2_grpc

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    resource: str
    key: str
    record: dict[str, Any] | None  # None: the record was deleted
    cursor: str


class SubscriptionStub(Protocol):
    """What the sink runtime needs of ``hub.v1.Subscription``."""

    @property
    def Subscribe(
        self,
    ) -> grpc.UnaryStreamMultiCallable[subscription_pb2.SubscribeRequest, subscription_pb2.SubscribeResponse]: ...

    @property
    def Ack(self) -> grpc.UnaryUnaryMultiCallable[subscription_pb2.AckRequest, subscription_pb2.AckResponse]: ...


# the generated stub module has no annotations: say what it provides
_subscription_stub = cast(Callable[[grpc.Channel], SubscriptionStub], subscription_pb2_grpc.SubscriptionStub)


class Sink(ABC):
    """Contract: :meth:`write` is called from one thread with events in order; it must be
    idempotent (an event may come again after a restart) and may raise Backpressure."""

    def setup(self) -> None:  # noqa: B027 - optional hook
        pass

    @abstractmethod
    def write(self, events: Sequence[ChangeEvent]) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class JsonlSink(Sink):
    """Appends events to a JSON Lines file: the simplest inbox a department can pick up."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, events: Sequence[ChangeEvent]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as f:
            for e in events:
                f.write(orjson.dumps({"resource": e.resource, "key": e.key, "record": e.record}) + b"\n")


class SinkRuntime:
    def __init__(
        self,
        sink: Sink,
        channel: grpc.Channel,
        resource: str,
        name: str,
        context: common_pb2.CallContext,
        *,
        batch_size: int = 200,
        flush_after_s: float = 0.5,
        start_from_earliest: bool = True,
        filters: Mapping[str, str] | None = None,
    ) -> None:
        self.sink = sink
        self._stub = _subscription_stub(channel)
        self.resource = resource
        self.name = name
        self.context = context
        self.batch_size = batch_size
        self.flush_after_s = flush_after_s
        self.filters = [subscription_pb2.SubscriptionFilter(field=f, prefix=p) for f, p in (filters or {}).items()]
        self.start = subscription_pb2.START_FROM_EARLIEST if start_from_earliest else subscription_pb2.START_FROM_LATEST
        self._stop = threading.Event()
        self._call: grpc.Call | None = None
        self.written = 0

    def stop(self) -> None:
        self._stop.set()
        if self._call is not None:
            self._call.cancel()

    def run(self, until: int | None = None) -> int:
        """Runs until stopped (or until ``until`` events were written); reconnects after errors."""
        self.sink.setup()
        try:
            while not self._stop.is_set() and (until is None or self.written < until):
                try:
                    self._follow(until)
                except grpc.RpcError as err:
                    if self._stop.is_set():
                        break
                    if err.code() not in RESUMABLE:
                        raise
                    log.warning("%s: subscription interrupted (%s); resuming", self.name, err.code().name)
                    time.sleep(0.5)
        finally:
            self.sink.close()
        return self.written

    def _follow(self, until: int | None) -> None:
        self._call = call = self._stub.Subscribe(
            subscription_pb2.SubscribeRequest(
                resource=self.resource,
                name=self.name,
                start=self.start,
                context=self.context,
                filters=self.filters,
            )
        )
        if self._stop.is_set():  # stop() came before this call existed: it could not cancel it
            call.cancel()
        pending: list[ChangeEvent] = []
        lock = threading.Lock()
        done = threading.Event()

        def flush_quiet_tail() -> None:  # a quiet stream must not hold written-out events back
            while not done.wait(self.flush_after_s):
                with lock:
                    self._flush(pending)

        timer = threading.Thread(target=flush_quiet_tail, daemon=True)
        timer.start()
        try:
            for event in call:
                record = orjson.loads(event.record) if event.op == subscription_pb2.CHANGE_OP_UPSERT else None
                with lock:
                    pending.append(ChangeEvent(event.resource, event.key, record, event.cursor))
                    if len(pending) >= self.batch_size:
                        self._flush(pending)
                if self._stop.is_set() or (until is not None and self.written + len(pending) >= until):
                    break
        finally:
            done.set()
            timer.join()
            with lock:
                self._flush(pending)
            call.cancel()

    def _flush(self, events: list[ChangeEvent]) -> None:
        """Writes and acknowledges ``events``, then empties the list."""
        if not events:
            return
        while True:
            try:
                self.sink.write(events)
                break
            except Backpressure as bp:
                time.sleep(bp.retry_after)
        self._stub.Ack(subscription_pb2.AckRequest(name=self.name, resource=self.resource, cursor=events[-1].cursor))
        self.written += len(events)
        events.clear()
