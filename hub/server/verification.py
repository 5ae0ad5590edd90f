"""Verification.Verify and VerifyBatch: yes/no answers from the cache, never values."""

from __future__ import annotations

import datetime as dt

from grpc import aio

from hub.cache.claims import compile_claims
from hub.cache.table import TableVersion
from hub.cache.verify import key_field_of, verify_many, verify_one
from hub.errors import InvalidArgument
from hub.flows.restrictions import check_context, restrictions_of
from hub.governance.identity import current_caller
from hub.governance.policy import Access
from hub.records.identifiers import credit_code_problem
from hub.server.convert import claims_from_pb, wanted_offsets, watermark_to_pb
from hub.server.deps import Deps
from hub.server.interceptors import note_access
from hub.server.receipts import receipt_for_batch, receipt_for_verify
from hub.v1 import verification_pb2, verification_pb2_grpc

MAX_KEYS = 100_000
# Without a deadline, read-your-writes waits at most this long.
DEFAULT_CONSISTENCY_WAIT_S = 30.0


async def version_for(deps: Deps, resource: str, consistency, context: aio.ServicerContext) -> TableVersion:
    """The version to answer from, after waiting for the caller's writes if asked."""
    wanted = wanted_offsets(consistency) if consistency.min_offsets else None
    if not wanted:
        return deps.cache.version(resource)
    remaining = context.time_remaining()
    return await deps.cache.version_at(resource, wanted, DEFAULT_CONSISTENCY_WAIT_S if remaining is None else remaining)


def authorize_read(deps: Deps, request, method: str, subjects, fields: list[str]) -> tuple:
    """Notes the access for the audit trail, then asks the policy. Returns (spec, access)."""
    spec = deps.catalogue.resource(request.resource)
    ctx = request.context
    note_access(method, spec.name, subjects, fields, "", ctx.case_number)
    purpose = deps.policy.check_context(ctx.purpose, ctx.case_number)
    note_access(method, spec.name, subjects, fields, purpose, ctx.case_number)
    access: Access = deps.policy.read(current_caller.get(), spec, method.split("_")[0], purpose, fields)
    return spec, access


class VerificationService(verification_pb2_grpc.VerificationServicer):
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def Verify(
        self, request: verification_pb2.VerifyRequest, context: aio.ServicerContext
    ) -> verification_pb2.VerifyResponse:
        deps = self._deps
        claims = claims_from_pb(request.claims)
        spec = deps.catalogue.resource(request.resource)
        field = key_field_of(spec, request.key_field)
        compiled = compile_claims(spec, claims)  # a malformed claim is INVALID_ARGUMENT before any policy
        check_context(request.context.restricted_context, "context.restricted_context")
        touched = [c.field for c in claims] + ([field] if field != spec.key else [])
        authorize_read(deps, request, "verify", (request.key,), touched)
        version = await version_for(deps, request.resource, request.consistency, context)
        outcome = verify_one(version, field, request.key, compiled)
        response = verification_pb2.VerifyResponse(
            found=outcome.found,
            match=outcome.match,
            claims=outcome.claims,
            watermark=watermark_to_pb(version.watermark),
        )
        if field == spec.key:  # claims on fields under an open correction request say so
            disputed = deps.corrections.disputed(spec.name, request.key)
            if disputed:
                response.disputed_fields.extend(sorted(disputed & {c.field for c in claims}))
        if request.context.restricted_context and credit_code_problem(request.key) is None:
            today = dt.date.today().isoformat()
            for r in restrictions_of(
                deps.cache.version("credit.list_entry"), request.key, request.context.restricted_context, today
            ):
                response.restrictions.add(credit_code=r.credit_code, measure=r.measure, entry_id=r.entry_id)
        if request.receipt:
            response.receipt.CopyFrom(receipt_for_verify(deps, request, field, claims, outcome, version.watermark))
        return response

    async def VerifyBatch(
        self, request: verification_pb2.VerifyBatchRequest, context: aio.ServicerContext
    ) -> verification_pb2.VerifyBatchResponse:
        deps = self._deps
        keys = list(request.keys)
        if len(keys) > MAX_KEYS:
            raise InvalidArgument(f"keys: at most {MAX_KEYS} per call, got {len(keys)}", field="keys")
        claims = claims_from_pb(request.claims)
        spec = deps.catalogue.resource(request.resource)
        field = key_field_of(spec, request.key_field)
        compiled = compile_claims(spec, claims, n_keys=len(keys))
        touched = [c.field for c in claims] + ([field] if field != spec.key else [])
        authorize_read(deps, request, "verify_batch", keys, touched)
        version = await version_for(deps, request.resource, request.consistency, context)
        outcome = verify_many(version, field, keys, compiled)
        response = verification_pb2.VerifyBatchResponse(
            found=outcome.found.tolist(),
            match=outcome.match.tolist(),
            claims=[verification_pb2.ClaimColumnResult(matched=c.tolist()) for c in outcome.claims],
            watermark=watermark_to_pb(version.watermark),
        )
        for index, message in outcome.invalid:
            response.invalid_keys.add(index=index, message=message)
        if request.receipt:
            receipt = receipt_for_batch(deps, request, field, claims, compiled, outcome, version.watermark)
            response.receipt.CopyFrom(receipt)
        return response
