"""Verification.Verify and VerifyBatch: yes/no answers from the cache, never values."""

from __future__ import annotations

from grpc import aio

from hub.cache.claims import compile_claims
from hub.cache.replica import ReplicaCache
from hub.cache.table import TableVersion
from hub.cache.verify import key_field_of, verify_many, verify_one
from hub.errors import InvalidArgument
from hub.server.convert import claims_from_pb, wanted_offsets, watermark_to_pb
from hub.v1 import verification_pb2, verification_pb2_grpc

MAX_KEYS = 100_000
# Without a deadline, read-your-writes waits at most this long.
DEFAULT_CONSISTENCY_WAIT_S = 30.0


async def version_for(cache: ReplicaCache, resource: str, consistency, context: aio.ServicerContext) -> TableVersion:
    """The version to answer from, after waiting for the caller's writes if asked."""
    wanted = wanted_offsets(consistency) if consistency.min_offsets else None
    if not wanted:
        return cache.version(resource)
    remaining = context.time_remaining()
    return await cache.version_at(resource, wanted, DEFAULT_CONSISTENCY_WAIT_S if remaining is None else remaining)


class VerificationService(verification_pb2_grpc.VerificationServicer):
    def __init__(self, cache: ReplicaCache) -> None:
        self._cache = cache

    async def Verify(
        self, request: verification_pb2.VerifyRequest, context: aio.ServicerContext
    ) -> verification_pb2.VerifyResponse:
        version = await version_for(self._cache, request.resource, request.consistency, context)
        spec = version.spec
        field = key_field_of(spec, request.key_field)
        claims = compile_claims(spec, claims_from_pb(request.claims))
        outcome = verify_one(version, field, request.key, claims)
        return verification_pb2.VerifyResponse(
            found=outcome.found,
            match=outcome.match,
            claims=outcome.claims,
            watermark=watermark_to_pb(version.watermark),
        )

    async def VerifyBatch(
        self, request: verification_pb2.VerifyBatchRequest, context: aio.ServicerContext
    ) -> verification_pb2.VerifyBatchResponse:
        keys = list(request.keys)
        if len(keys) > MAX_KEYS:
            raise InvalidArgument(f"keys: at most {MAX_KEYS} per call, got {len(keys)}", field="keys")
        version = await version_for(self._cache, request.resource, request.consistency, context)
        spec = version.spec
        field = key_field_of(spec, request.key_field)
        claims = compile_claims(spec, claims_from_pb(request.claims), n_keys=len(keys))
        outcome = verify_many(version, field, keys, claims)
        response = verification_pb2.VerifyBatchResponse(
            found=outcome.found.tolist(),
            match=outcome.match.tolist(),
            claims=[verification_pb2.ClaimColumnResult(matched=c.tolist()) for c in outcome.claims],
            watermark=watermark_to_pb(version.watermark),
        )
        for index, message in outcome.invalid:
            response.invalid_keys.add(index=index, message=message)
        return response
