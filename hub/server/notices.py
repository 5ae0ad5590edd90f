"""Notices: watch, list, claim and feed back; and the alerts on them."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import asdict

import orjson
from grpc import aio

from hub.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from hub.flows.changefeed import ChangeStream, TopicReader
from hub.flows.model import Alert, Notice
from hub.governance.identity import HUB_ADMIN, current_caller
from hub.server.convert import FEEDBACK_KINDS, NOTICE_STATES, alert_to_pb, notice_to_pb
from hub.server.deps import Deps
from hub.server.interceptors import note_access
from hub.v1 import notices_pb2, notices_pb2_grpc


class NoticesService(notices_pb2_grpc.NoticesServicer):
    def __init__(self, deps: Deps, feedback_limit_s: float) -> None:
        self._deps = deps
        self._feedback_limit_ms = int(feedback_limit_s * 1000)

    def _mine(self, record: Notice | Alert) -> bool:
        caller = current_caller.get()
        return caller.department in (HUB_ADMIN, record.department)

    def _owned(self, ident: str) -> Notice:
        notice = self._deps.notices.notice(ident)
        if notice is None:
            raise NotFound(f"no notice {ident!r}", field="id")
        if notice.department != current_caller.get().department:
            raise PermissionDenied(f"notice {ident} is for {notice.department}")
        return notice

    async def Watch(
        self, request: notices_pb2.NoticesWatchRequest, context: aio.ServicerContext
    ) -> AsyncIterator[notices_pb2.NoticesWatchResponse]:
        deps = self._deps
        note_access("notices.watch", "")
        topic = deps.topics.notices
        ring = deps.cache.rings[topic]
        stream = ChangeStream(
            ring, ring.ends(), lambda: TopicReader(deps.cache.bootstrap, topic, deps.cache.consumer_extra)
        )
        try:
            for notice in deps.notices.notices():  # what is open now, then what happens next
                if notice.state != "done" and self._mine(notice):
                    yield notices_pb2.NoticesWatchResponse(notice=notice_to_pb(notice))
            while True:
                for change in await stream.next_batch():
                    stream.advance(change)
                    if change.value is not None and change.key.startswith("notice:"):
                        notice = Notice(**orjson.loads(change.value))
                        if self._mine(notice):
                            yield notices_pb2.NoticesWatchResponse(notice=notice_to_pb(notice))
        finally:
            await stream.close()

    async def List(
        self, request: notices_pb2.NoticesListRequest, context: aio.ServicerContext
    ) -> notices_pb2.NoticesListResponse:
        state = NOTICE_STATES.from_pb(request.state)
        if request.state and state is None:
            raise InvalidArgument(f"state: {request.state} is not a NoticeState", field="state")
        found = [n for n in self._deps.notices.notices() if self._mine(n) and (state is None or n.state == state)]
        return notices_pb2.NoticesListResponse(notices=[notice_to_pb(n) for n in found])

    async def Get(
        self, request: notices_pb2.NoticesGetRequest, context: aio.ServicerContext
    ) -> notices_pb2.NoticesGetResponse:
        notice = self._deps.notices.notice(request.id)
        if notice is None or not self._mine(notice):
            raise NotFound(f"no notice {request.id!r} for {current_caller.get().label}", field="id")
        return notices_pb2.NoticesGetResponse(notice=notice_to_pb(notice))

    async def Claim(self, request: notices_pb2.ClaimRequest, context: aio.ServicerContext) -> notices_pb2.ClaimResponse:
        note_access("notices.claim", "", detail=request.id)
        async with self._deps.exclusive(f"notice:{request.id}"):
            notice = self._owned(request.id)
            if notice.state != "open":
                raise FailedPrecondition(f"notice {request.id} is already {notice.state}")
            claimed = notice.claimed(current_caller.get().label, int(time.time() * 1000), self._feedback_limit_ms)
            await self._deps.write_state(self._deps.topics.notices, f"notice:{notice.id}", asdict(claimed))
        return notices_pb2.ClaimResponse(notice=notice_to_pb(claimed))

    async def Feedback(
        self, request: notices_pb2.FeedbackRequest, context: aio.ServicerContext
    ) -> notices_pb2.FeedbackResponse:
        note_access("notices.feedback", "", detail=request.id)
        kind = FEEDBACK_KINDS.from_pb(request.kind)
        if kind is None:
            raise InvalidArgument("kind: PERMIT_ISSUED, INSPECTED, NOT_APPLICABLE or OTHER", field="kind")
        if kind == "other" and not request.note.strip():
            raise InvalidArgument("note: required when the feedback is OTHER", field="note")
        async with self._deps.exclusive(f"notice:{request.id}"):
            notice = self._owned(request.id)
            if notice.state != "claimed":
                raise FailedPrecondition(f"notice {request.id} is {notice.state}: claim it before feeding back")
            done = notice.done(kind, request.note.strip(), int(time.time() * 1000))
            await self._deps.write_state(self._deps.topics.notices, f"notice:{notice.id}", asdict(done))
        return notices_pb2.FeedbackResponse(notice=notice_to_pb(done))

    async def ListAlerts(
        self, request: notices_pb2.ListAlertsRequest, context: aio.ServicerContext
    ) -> notices_pb2.ListAlertsResponse:
        alerts = [a for a in self._deps.notices.alerts() if self._mine(a)]
        return notices_pb2.ListAlertsResponse(alerts=[alert_to_pb(a) for a in alerts])
