"""The provider's side of correction requests: disputes routed to the connector that owns the data.

A consumer disputes a value (``Corrections.Dispute``); the hub routes it to the provider, whose
connector follows ``Corrections.Watch``. The :class:`CorrectionDesk` hands each open dispute on the
connector's resource to :meth:`Connector.review <hub.connect.source.Connector.review>`:

- a :class:`~hub.connect.source.Verdict` is sent back with ``Corrections.Resolve`` (corrected or confirmed);
- ``None`` means a person must decide: the dispute goes to the department's inbox file, once, and
  a clerk answers with ``hub corrections resolve``. The hub raises no verdict by itself; an
  unanswered dispute shows as overdue after its deadline.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict
from pathlib import Path

import grpc
import orjson

from hub.connect.source import Connector, Dispute, Source, Verdict
from hub.v1 import corrections_pb2, corrections_pb2_grpc

log = logging.getLogger(__name__)

_VERDICT_STATES = {
    "corrected": corrections_pb2.CORRECTION_STATE_CORRECTED,
    "confirmed": corrections_pb2.CORRECTION_STATE_CONFIRMED,
}


class CorrectionDesk:
    """Follows the provider's disputes and answers them. :meth:`run` blocks until :meth:`stop`
    (callable from any thread); it reconnects after the hub goes away."""

    def __init__(
        self, connector: Connector, source: Source, channel: grpc.Channel, inbox: Path, *, retry_s: float = 1.0
    ) -> None:
        self.connector = connector
        self.source = source
        self.inbox = inbox
        self.retry_s = retry_s
        self._stub = corrections_pb2_grpc.CorrectionsStub(channel)
        self._stop = threading.Event()
        self._call: grpc.Call | None = None
        self._handled: set[str] = set()
        self.resolved = 0
        self.referred = 0

    def stop(self) -> None:
        self._stop.set()
        if self._call is not None:
            self._call.cancel()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self._call = call = self._stub.Watch(corrections_pb2.CorrectionsWatchRequest())
                for item in call:
                    self._consider(item.request)
            except grpc.RpcError as err:
                if self._stop.is_set():
                    return
                log.warning("corrections: watch interrupted (%s); resuming", err.code().name)
            self._stop.wait(self.retry_s)

    def _consider(self, r: corrections_pb2.CorrectionRequest) -> None:
        if r.resource != self.connector.resource or r.state != corrections_pb2.CORRECTION_STATE_OPEN:
            return
        if r.id in self._handled:
            return
        dispute = Dispute(r.id, r.resource, r.key, r.field, r.proposed_value, r.evidence_ref, r.filed_by, r.due_ms)
        try:
            verdict = self.connector.review(dispute, self.source)
        except Exception:  # a failing review must not stop the desk; a person decides instead
            log.exception("corrections: reviewing %s failed", r.id)
            verdict = None
        if verdict is None:
            self._refer(dispute)
        else:
            self._resolve(dispute, verdict)
        self._handled.add(r.id)

    def _resolve(self, dispute: Dispute, verdict: Verdict) -> None:
        try:
            self._stub.Resolve(
                corrections_pb2.ResolveRequest(id=dispute.id, state=_VERDICT_STATES[verdict.state], note=verdict.note),
                timeout=30,
            )
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.FAILED_PRECONDITION:  # already answered, e.g. by a clerk
                raise
        self.resolved += 1
        log.info("corrections: %s %s (%s)", dispute.id, verdict.state, verdict.note)

    def _refer(self, dispute: Dispute) -> None:
        """To the clerks' inbox; an entry may repeat after a restart, so readers key it by id."""
        self.inbox.parent.mkdir(parents=True, exist_ok=True)
        with self.inbox.open("ab") as f:
            f.write(orjson.dumps({**asdict(dispute), "referred_at_ms": int(time.time() * 1000)}) + b"\n")
        self.referred += 1
        log.warning("corrections: %s on %s needs a person; see %s", dispute.id, dispute.key, self.inbox)
