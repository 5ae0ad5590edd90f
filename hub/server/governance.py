"""Governance: access requests with deadlines, decisions with reasons, grants that expire or are revoked."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

from grpc import aio

from hub.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from hub.governance.identity import HUB_ADMIN, Caller, current_caller
from hub.governance.state import REQUEST_STATES, AccessRequest, Grant
from hub.governance.workdays import add_working_days
from hub.server.convert import grant_to_pb, purposes_from_pb, request_to_pb
from hub.server.deps import Deps
from hub.server.interceptors import note_access
from hub.v1 import governance_pb2, governance_pb2_grpc


def _now_ms() -> int:
    return int(time.time() * 1000)


def _state(obj) -> dict:
    from dataclasses import asdict

    return asdict(obj)


class GovernanceService(governance_pb2_grpc.GovernanceServicer):
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    def _is_provider_or_admin(self, caller: Caller, resource: str) -> bool:
        return caller.department == HUB_ADMIN or self._deps.catalogue.resource(resource).provider == caller.department

    async def RequestAccess(
        self, request: governance_pb2.RequestAccessRequest, context: aio.ServicerContext
    ) -> governance_pb2.RequestAccessResponse:
        deps = self._deps
        caller = current_caller.get()
        note_access("governance.request_access", request.resource, fields=list(request.fields))
        spec = deps.catalogue.resource(request.resource)
        if spec.sharing_class == "not_shared":
            raise FailedPrecondition(
                f"{spec.name} is not shared (不予共享) under {spec.legal_basis}; access cannot be requested"
            )
        if spec.provider == caller.department:
            raise FailedPrecondition(f"{caller.label} provides {spec.name} and needs no grant for it")
        for i, name in enumerate(request.fields):
            if name not in spec.by_name:
                raise InvalidArgument(f"fields[{i}]: {name!r} is not a field of {spec.name}", field=f"fields[{i}]")
        purposes = purposes_from_pb(request.purposes, "purposes")
        if not purposes:
            raise InvalidArgument("purposes: name at least one purpose", field="purposes")
        if not request.legal_basis.strip():
            raise InvalidArgument("legal_basis: required: the law or regulation the use rests on", field="legal_basis")
        now = dt.datetime.now(dt.UTC)
        settings = deps.settings
        deadline = add_working_days(now, settings.access_request_working_days, settings.holidays)
        filed = AccessRequest(
            id=f"AR-{now:%Y%m%d}-{uuid.uuid4().hex[:8]}",
            consumer=caller.department,
            subsystem=request.subsystem or caller.subsystem,
            resource=spec.name,
            fields=tuple(request.fields) or tuple(f.name for f in spec.fields),
            purposes=purposes,
            legal_basis=request.legal_basis.strip(),
            filed_at_ms=int(now.timestamp() * 1000),
            deadline_ms=int(deadline.timestamp() * 1000),
        )
        await deps.write_state(deps.topics.governance, f"request:{filed.id}", _state(filed))
        return governance_pb2.RequestAccessResponse(request=request_to_pb(filed))

    async def DecideAccess(
        self, request: governance_pb2.DecideAccessRequest, context: aio.ServicerContext
    ) -> governance_pb2.DecideAccessResponse:
        async with self._deps.exclusive(f"request:{request.request_id}"):  # one decision per request
            return await self._decide(request)

    async def _decide(self, request: governance_pb2.DecideAccessRequest) -> governance_pb2.DecideAccessResponse:
        deps = self._deps
        caller = current_caller.get()
        filed = deps.governance.request(request.request_id)
        note_access("governance.decide_access", filed.resource if filed else "", detail=request.request_id)
        if filed is None:
            raise NotFound(f"no access request {request.request_id!r}", field="request_id")
        if not self._is_provider_or_admin(caller, filed.resource):
            raise PermissionDenied(f"only the provider of {filed.resource} decides request {filed.id}")
        if filed.state != "pending":
            raise FailedPrecondition(f"request {filed.id} is already {filed.state}")
        decided: dict[str, Any] = {"decided_at_ms": _now_ms(), "decided_by": caller.label}
        if request.decision == governance_pb2.DECISION_REFUSE:
            if not request.reason.strip():
                raise InvalidArgument("reason: a refusal must give its reason", field="reason")
            refused = AccessRequest(
                **{**_state(filed), **decided, "state": "refused", "reason": request.reason.strip()}
            )
            await deps.write_state(deps.topics.governance, f"request:{filed.id}", _state(refused))
            return governance_pb2.DecideAccessResponse(request=request_to_pb(refused))
        if request.decision != governance_pb2.DECISION_APPROVE:
            raise InvalidArgument("decision: APPROVE or REFUSE", field="decision")
        fields = tuple(request.fields) or filed.fields
        purposes = purposes_from_pb(request.purposes, "purposes") or filed.purposes
        unmasked = tuple(request.unmasked_fields)
        for label, asked, allowed in (
            ("fields", fields, filed.fields),
            ("purposes", purposes, filed.purposes),
            ("unmasked_fields", unmasked, fields),
        ):
            wider = sorted(set(asked) - set(allowed))
            if wider:
                raise InvalidArgument(f"{label}: {', '.join(wider)} go beyond what was requested", field=label)
        if request.expires_at_ms and request.expires_at_ms <= time.time() * 1000:
            raise InvalidArgument("expires_at_ms: in the past (0: no expiry)", field="expires_at_ms")
        grant = Grant(
            # one grant per request: if writing the approved request fails after the grant, approving
            # again rewrites this grant instead of adding a second
            id=f"G-{filed.id.removeprefix('AR-')}",
            consumer=filed.consumer,
            subsystem=filed.subsystem,
            resource=filed.resource,
            fields=fields,
            unmasked=unmasked,
            purposes=purposes,
            granted_at_ms=decided["decided_at_ms"],
            granted_by=caller.label,
            request_id=filed.id,
            expires_at_ms=request.expires_at_ms,
        )
        approved = AccessRequest(
            **{**_state(filed), **decided, "state": "approved", "reason": request.reason, "grant_id": grant.id}
        )
        await deps.write_state(deps.topics.governance, f"grant:{grant.id}", _state(grant))
        await deps.write_state(deps.topics.governance, f"request:{filed.id}", _state(approved))
        return governance_pb2.DecideAccessResponse(request=request_to_pb(approved), grant=grant_to_pb(grant))

    async def RevokeGrant(
        self, request: governance_pb2.RevokeGrantRequest, context: aio.ServicerContext
    ) -> governance_pb2.RevokeGrantResponse:
        deps = self._deps
        caller = current_caller.get()
        grant = deps.governance.grant(request.grant_id)
        note_access("governance.revoke_grant", grant.resource if grant else "", detail=request.grant_id)
        if grant is None:
            raise NotFound(f"no grant {request.grant_id!r}", field="grant_id")
        if not self._is_provider_or_admin(caller, grant.resource):
            raise PermissionDenied(f"only the provider of {grant.resource} may revoke grant {grant.id}")
        if not request.reason.strip():
            raise InvalidArgument("reason: required", field="reason")
        revoked = Grant(**{**_state(grant), "revoked_at_ms": _now_ms(), "revoked_reason": request.reason.strip()})
        await deps.write_state(deps.topics.governance, f"grant:{grant.id}", _state(revoked))
        return governance_pb2.RevokeGrantResponse(grant=grant_to_pb(revoked))

    def _visible(self, caller: Caller, consumer: str, resource: str) -> bool:
        if caller.department in (HUB_ADMIN, consumer):
            return True
        return (
            resource in self._deps.catalogue and self._deps.catalogue.resource(resource).provider == caller.department
        )

    async def ListAccessRequests(
        self, request: governance_pb2.ListAccessRequestsRequest, context: aio.ServicerContext
    ) -> governance_pb2.ListAccessRequestsResponse:
        caller = current_caller.get()
        if request.state and request.state not in REQUEST_STATES:
            raise InvalidArgument(f"state: {request.state!r} is not one of {', '.join(REQUEST_STATES)}", field="state")
        found = [
            r
            for r in self._deps.governance.requests()
            if self._visible(caller, r.consumer, r.resource) and (not request.state or r.state == request.state)
        ]
        return governance_pb2.ListAccessRequestsResponse(requests=[request_to_pb(r) for r in found])

    async def ListGrants(
        self, request: governance_pb2.ListGrantsRequest, context: aio.ServicerContext
    ) -> governance_pb2.ListGrantsResponse:
        caller = current_caller.get()
        found = [
            g
            for g in self._deps.governance.grants()
            if self._visible(caller, g.consumer, g.resource)
            and (not request.resource or g.resource == request.resource)
        ]
        return governance_pb2.ListGrantsResponse(grants=[grant_to_pb(g) for g in found])

    async def ListOverdue(
        self, request: governance_pb2.ListOverdueRequest, context: aio.ServicerContext
    ) -> governance_pb2.ListOverdueResponse:
        caller = current_caller.get()
        found = [r for r in self._deps.governance.overdue() if self._visible(caller, r.consumer, r.resource)]
        return governance_pb2.ListOverdueResponse(requests=[request_to_pb(r) for r in found])
