"""Verification.Verify and VerifyBatch: yes/no answers from the cache, never values."""

from __future__ import annotations

import asyncio
import datetime as dt

import numpy as np
from grpc import aio

from hub.cache.claims import Claim, compile_claims
from hub.cache.table import TableVersion
from hub.cache.verify import BatchOutcome, Outcome, key_field_of, verify_many, verify_one
from hub.catalogue.model import ResourceSpec
from hub.errors import InvalidArgument, Unavailable
from hub.flows.restrictions import check_context
from hub.governance.identity import current_caller
from hub.governance.policy import Access
from hub.records.identifiers import credit_code_problem
from hub.records.shards import shards_of
from hub.server.case_shards import gathered_restrictions
from hub.server.convert import claims_from_pb, wanted_offsets, watermark_to_pb
from hub.server.deps import Deps
from hub.server.interceptors import note_access
from hub.server.receipts import receipt_for_batch, receipt_for_verify
from hub.server.shards import is_forwarded, merge_watermarks
from hub.v1 import cases_pb2, common_pb2, verification_pb2, verification_pb2_grpc

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
        route = deps.shards.route(request.key if field == spec.key else None, spec_partitions(deps, spec.name), context)
        if not route.local:  # the owning shard checks, audits and answers; disputes as this replica knows them
            answer = await deps.shards.call(route.remote[0], _verify, request, context)
            del answer.disputed_fields[:]
            answer.disputed_fields.extend(_disputed(deps, spec, request.key, claims))
            return answer
        touched = [c.field for c in claims] + ([field] if field != spec.key else [])
        authorize_read(deps, request, "verify", (request.key,), touched)
        version = await version_for(deps, request.resource, request.consistency, context)
        outcome = verify_one(version, field, request.key, compiled)
        watermark = watermark_to_pb(version.watermark)
        if route.remote:  # an indexed field: its rows may be on every shard
            remote = verification_pb2.VerifyRequest()
            remote.CopyFrom(request)
            remote.receipt = False
            remote.context.restricted_context = ""  # gathered once, below
            answers = await asyncio.gather(*(deps.shards.call(i, _verify, remote, context) for i in route.remote))
            outcome = Outcome(
                outcome.found or any(a.found for a in answers),
                outcome.match or any(a.match for a in answers),
                [c or any(a.claims[i] for a in answers) for i, c in enumerate(outcome.claims)],
            )
            watermark = merge_watermarks([watermark, *(a.watermark for a in answers)])
        response = verification_pb2.VerifyResponse(
            found=outcome.found, match=outcome.match, claims=outcome.claims, watermark=watermark
        )
        if field == spec.key:
            response.disputed_fields.extend(_disputed(deps, spec, request.key, claims))
        if request.context.restricted_context and credit_code_problem(request.key) is None:
            query = cases_pb2.RestrictionQuery(
                credit_code=request.key,
                restricted_context=request.context.restricted_context,
                date=dt.date.today().isoformat(),
            )
            [found] = await gathered_restrictions(deps, [query], context)
            for r in found:
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
        if deps.shards.sharded:
            outcome, watermark = await self._scattered(request, spec, field, version, context)
        else:
            outcome, watermark = verify_many(version, field, keys, compiled), watermark_to_pb(version.watermark)
        response = verification_pb2.VerifyBatchResponse(
            found=outcome.found.tolist(),
            match=outcome.match.tolist(),
            claims=[verification_pb2.ClaimColumnResult(matched=c.tolist()) for c in outcome.claims],
            watermark=watermark,
        )
        for index, message in outcome.invalid:
            response.invalid_keys.add(index=index, message=message)
        if request.receipt:
            receipt = receipt_for_batch(deps, request, field, claims, compiled, outcome, version.watermark)
            response.receipt.CopyFrom(receipt)
        return response

    async def _scattered(
        self,
        request: verification_pb2.VerifyBatchRequest,
        spec: ResourceSpec,
        field: str,
        version: TableVersion,
        context: aio.ServicerContext,
    ) -> tuple[BatchOutcome, common_pb2.Watermark]:
        """A batch over the shards: each key to its shard (by key), or every key to every shard (by an
        indexed field), answered here for this shard's share and gathered into one outcome."""
        deps, n, here = self._deps, len(request.keys), self._deps.shards.shard.index
        partitions = spec_partitions(deps, request.resource)
        if field == spec.key:
            owners = shards_of(request.keys, partitions, deps.shards.shard.count)
            if is_forwarded(context) and np.any(owners != here):
                raise Unavailable(f"shard {deps.shards.shard} was sent keys it does not hold")
        else:
            owners = np.full(n, -1, dtype=np.int64)  # -1: every shard
        route = deps.shards.route(None, partitions, context)
        picks = {i: np.flatnonzero((owners == i) | (owners == -1)) for i in (here, *route.remote)}
        picks = {i: p for i, p in picks.items() if len(p)}

        async def remote(index: int) -> tuple:
            answer = await deps.shards.call(index, _verify_batch, _sub_batch(request, picks[index]), context)
            columns = [np.array(c.matched, dtype=bool) for c in answer.claims]
            invalid = [(k.index, k.message) for k in answer.invalid_keys]
            found, match = np.array(answer.found, dtype=bool), np.array(answer.match, dtype=bool)
            return found, match, columns, invalid, answer.watermark

        others = [i for i in picks if i != here]
        pending = asyncio.gather(*(remote(i) for i in others))  # the other shards work meanwhile
        answers = []
        if here in picks:
            part = _sub_batch(request, picks[here])
            local = verify_many(
                version, field, list(part.keys), compile_claims(spec, claims_from_pb(part.claims), len(part.keys))
            )
            answers.append((local.found, local.match, local.claims, local.invalid, watermark_to_pb(version.watermark)))
        answers += await pending
        found, match = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        claims = [np.zeros(n, dtype=bool) for _ in request.claims]
        invalid: dict[int, str] = {}
        order = ([here] if here in picks else []) + others
        for index, (part_found, part_match, part_claims, part_invalid, _) in zip(order, answers, strict=True):
            picked = picks[index]
            found[picked] |= part_found
            match[picked] |= part_match
            for column, part_column in zip(claims, part_claims, strict=True):
                column[picked] |= part_column
            for i, message in part_invalid:
                original = int(picked[i])
                invalid[original] = message.replace(f"keys[{i}]", f"keys[{original}]", 1)
        marks = [a[4] for a in answers]
        return BatchOutcome(found, match, claims, sorted(invalid.items())), merge_watermarks(marks)


def _disputed(deps: Deps, spec: ResourceSpec, key: str, claims: list[Claim]) -> list[str]:
    """Claims on fields of the record under an open correction request."""
    return sorted(deps.corrections.disputed(spec.name, key) & {c.field for c in claims})


def _verify(channel):
    return verification_pb2_grpc.VerificationStub(channel).Verify


def _verify_batch(channel):
    return verification_pb2_grpc.VerificationStub(channel).VerifyBatch


def spec_partitions(deps: Deps, resource: str) -> int:
    """The resource topic's partition count (the key's placement depends on it)."""
    return deps.cache.table(resource).partitions


def _sub_batch(request: verification_pb2.VerifyBatchRequest, picked: np.ndarray) -> verification_pb2.VerifyBatchRequest:
    """The keys at ``picked``, with per-key claim values cut to match; no receipt (the gatherer signs)."""
    n = len(request.keys)
    part = verification_pb2.VerifyBatchRequest(
        resource=request.resource,
        key_field=request.key_field,
        keys=[request.keys[i] for i in picked],
        context=request.context,
        consistency=request.consistency,
    )
    for c in request.claims:
        column = part.claims.add(field=c.field, op=c.op, or_unset=c.or_unset)
        per_key = n > 1 and len(c.values) == n and c.op != verification_pb2.CLAIM_OP_IN
        column.values.extend([c.values[i] for i in picked] if per_key else c.values)
    return part
