"""Audit: the provider's question and the citizen's question."""

from __future__ import annotations

import asyncio
from typing import cast

from grpc import aio

from hub.errors import InvalidArgument, PermissionDenied
from hub.governance.audit import subject_digest
from hub.governance.identity import HUB_ADMIN, current_caller
from hub.governance.state import PURPOSES
from hub.server.deps import Deps
from hub.server.interceptors import note_access
from hub.v1 import audit_pb2, audit_pb2_grpc, common_pb2

CITIZEN_PORTAL = "citizen_portal"


def _purpose_pb(name: str | None) -> common_pb2.Purpose:
    # the enum's numbers follow PURPOSES (0 is unspecified); the stubs type the enum as an int subclass
    return cast(common_pb2.Purpose, PURPOSES.index(name) + 1 if name in PURPOSES else 0)


def entry_to_pb(e: dict) -> audit_pb2.AuditEntry:
    return audit_pb2.AuditEntry(
        entry_id=e["entry_id"],
        at_ms=e["at_ms"] or 0,
        caller=e["caller"] or "",
        subsystem=e["subsystem"] or "",
        action=e["action"] or "",
        resource=e["resource"] or "",
        fields=e["fields"] or [],
        purpose=_purpose_pb(e["purpose"]),
        case_number=e["case_number"] or "",
        outcome=e["outcome"] or "",
        latency_us=e["latency_us"] or 0,
        count=e["count"] or 0,
    )


MAX_LIMIT = 10_000


def _limit(asked: int, default: int) -> int:
    if not 0 <= asked <= MAX_LIMIT:
        raise InvalidArgument(f"limit: between 1 and {MAX_LIMIT} (0: {default}), got {asked}", field="limit")
    return asked or default


class AuditService(audit_pb2_grpc.AuditServicer):
    def __init__(self, deps: Deps, subject_key: bytes) -> None:
        self._deps = deps
        self._subject_key = subject_key

    async def QueryResource(
        self, request: audit_pb2.QueryResourceRequest, context: aio.ServicerContext
    ) -> audit_pb2.QueryResourceResponse:
        deps = self._deps
        caller = current_caller.get()
        note_access("audit.query_resource", request.resource)
        spec = deps.catalogue.resource(request.resource)
        if caller.department not in (HUB_ADMIN, spec.provider):
            raise PermissionDenied(
                f"only the provider {spec.provider} (or the hub administrator) may ask who used {spec.name}"
            )
        limit = _limit(request.limit, 100)
        usage, recent, total = await asyncio.to_thread(deps.audit_index.by_resource, spec.name, limit)
        return audit_pb2.QueryResourceResponse(
            usage=[audit_pb2.UsageCount(caller=c, purpose=_purpose_pb(p), calls=n) for c, p, n in usage],
            recent=[entry_to_pb(e) for e in recent],
            total=total,
        )

    async def QuerySubject(
        self, request: audit_pb2.QuerySubjectRequest, context: aio.ServicerContext
    ) -> audit_pb2.QuerySubjectResponse:
        caller = current_caller.get()
        if not request.subject_key:
            raise InvalidArgument("subject_key: required", field="subject_key")
        note_access("audit.query_subject", "", subjects=(request.subject_key,))
        if caller.department not in (HUB_ADMIN, CITIZEN_PORTAL):
            raise PermissionDenied("only the citizen portal (or the hub administrator) asks who used a person's data")
        digest = subject_digest(self._subject_key, request.subject_key)
        entries = await asyncio.to_thread(self._deps.audit_index.by_subject, digest, _limit(request.limit, 1000))
        # Data accesses only: the portal's own queries are in the trail but are not uses of the data.
        return audit_pb2.QuerySubjectResponse(
            entries=[
                entry_to_pb(e)
                for e in entries
                if e["kind"] == "access" and not (e["action"] or "").startswith("audit.")
            ]
        )
