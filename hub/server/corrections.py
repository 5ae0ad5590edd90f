"""Corrections: disputes routed to the provider, resolved within a deadline."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict

import orjson
from grpc import aio

from hub.cache.verify import key_problem
from hub.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from hub.flows.changefeed import ChangeStream, TopicReader
from hub.flows.model import CorrectionRequest
from hub.governance.identity import HUB_ADMIN, current_caller
from hub.governance.workdays import add_working_days
from hub.server.convert import CORRECTION_STATES, correction_to_pb
from hub.server.deps import Deps
from hub.server.interceptors import note_access
from hub.v1 import corrections_pb2, corrections_pb2_grpc


class CorrectionsService(corrections_pb2_grpc.CorrectionsServicer):
    def __init__(self, deps: Deps, working_days: int) -> None:
        self._deps = deps
        self._working_days = working_days

    def _provider(self, c: CorrectionRequest) -> str:
        catalogue = self._deps.catalogue
        return catalogue.resource(c.resource).provider if c.resource in catalogue else ""

    def _visible(self, c: CorrectionRequest) -> bool:
        department = current_caller.get().department
        return department in (HUB_ADMIN, self._provider(c), c.filed_by.split(".")[0])

    async def Dispute(
        self, request: corrections_pb2.DisputeRequest, context: aio.ServicerContext
    ) -> corrections_pb2.DisputeResponse:
        deps = self._deps
        caller = current_caller.get()
        note_access("correction.dispute", request.resource, subjects=(request.key,), fields=(request.field,))
        spec = deps.catalogue.resource(request.resource)
        if request.field not in spec.by_name:
            raise InvalidArgument(f"field: {request.field!r} is not a field of {spec.name}", field="field")
        problem = key_problem(spec, spec.key, request.key)
        if problem is not None:
            raise InvalidArgument(f"key: {problem}", field="key")
        deps.policy.check_may_read_field(caller, spec, request.field)
        if not request.evidence_ref.strip():
            raise InvalidArgument(
                "evidence_ref: required: where the provider can check the right value", field="evidence_ref"
            )
        now = dt.datetime.now(dt.UTC)
        due = add_working_days(now, self._working_days, deps.settings.holidays)
        filed = CorrectionRequest(
            id=f"CR-{now:%Y%m%d}-{uuid.uuid4().hex[:8]}",
            resource=spec.name,
            key=request.key,
            field=request.field,
            proposed_value=request.proposed_value,
            evidence_ref=request.evidence_ref.strip(),
            filed_by=caller.label,
            filed_at_ms=int(now.timestamp() * 1000),
            due_ms=int(due.timestamp() * 1000),
        )
        await deps.write_state(deps.topics.corrections, f"correction:{filed.id}", asdict(filed))
        return corrections_pb2.DisputeResponse(request=correction_to_pb(filed))

    async def List(
        self, request: corrections_pb2.CorrectionsListRequest, context: aio.ServicerContext
    ) -> corrections_pb2.CorrectionsListResponse:
        found = [
            c
            for c in self._deps.corrections.requests()
            if self._visible(c) and (not request.open_only or c.state == "open")
        ]
        return corrections_pb2.CorrectionsListResponse(requests=[correction_to_pb(c) for c in found])

    async def Resolve(
        self, request: corrections_pb2.ResolveRequest, context: aio.ServicerContext
    ) -> corrections_pb2.ResolveResponse:
        async with self._deps.exclusive(f"correction:{request.id}"):  # one answer per dispute
            return await self._resolve(request)

    async def _resolve(self, request: corrections_pb2.ResolveRequest) -> corrections_pb2.ResolveResponse:
        deps = self._deps
        caller = current_caller.get()
        filed = deps.corrections.request(request.id)
        note_access("correction.resolve", filed.resource if filed else "", detail=request.id)
        if filed is None:
            raise NotFound(f"no correction request {request.id!r}", field="id")
        if caller.department != self._provider(filed):
            raise PermissionDenied(f"only the provider of {filed.resource} resolves {request.id}")
        state = CORRECTION_STATES.from_pb(request.state)
        if state not in ("corrected", "confirmed"):
            raise InvalidArgument("state: CORRECTED or CONFIRMED", field="state")
        if filed.state != "open":
            raise FailedPrecondition(f"{request.id} is already {filed.state}")
        resolved = filed.resolved(state, caller.label, request.note.strip(), int(time.time() * 1000))
        await deps.write_state(deps.topics.corrections, f"correction:{filed.id}", asdict(resolved))
        return corrections_pb2.ResolveResponse(request=correction_to_pb(resolved))

    async def Watch(
        self, request: corrections_pb2.CorrectionsWatchRequest, context: aio.ServicerContext
    ) -> AsyncIterator[corrections_pb2.CorrectionsWatchResponse]:
        deps = self._deps
        note_access("correction.watch", "")
        topic = deps.topics.corrections
        ring = deps.cache.rings[topic]
        stream = ChangeStream(
            ring, ring.ends(), lambda: TopicReader(deps.cache.bootstrap, topic, deps.cache.consumer_extra)
        )
        mine = current_caller.get().department
        try:
            for c in deps.corrections.requests():
                if c.state == "open" and self._provider(c) == mine:
                    yield corrections_pb2.CorrectionsWatchResponse(request=correction_to_pb(c))
            while True:
                for change in await stream.next_batch():
                    stream.advance(change)
                    if change.value is not None:
                        c = CorrectionRequest(**orjson.loads(change.value))
                        if self._provider(c) == mine:
                            yield corrections_pb2.CorrectionsWatchResponse(request=correction_to_pb(c))
        finally:
            await stream.close()
