"""Lookup.Get: a record's fields from the cache, masked per the caller's grant; on a sharded hub from
the key's shard, or from every shard for an indexed field."""

from __future__ import annotations

import asyncio

import grpc
import orjson
from grpc import aio

from hub.cache.verify import key_field_of, key_problem
from hub.errors import InvalidArgument, NotFound
from hub.records.masking import mask_record
from hub.server.convert import watermark_to_pb
from hub.server.deps import Deps
from hub.server.shards import Relayed, merge_watermarks
from hub.server.verification import authorize_read, spec_partitions, version_for
from hub.v1 import lookup_pb2, lookup_pb2_grpc


class LookupService(lookup_pb2_grpc.LookupServicer):
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def Get(self, request: lookup_pb2.GetRequest, context: aio.ServicerContext) -> lookup_pb2.GetResponse:
        deps = self._deps
        spec = deps.catalogue.resource(request.resource)
        field = key_field_of(spec, request.key_field)
        for i, name in enumerate(request.fields):
            if name not in spec.by_name:
                raise InvalidArgument(f"fields[{i}]: {name!r} is not a field of {spec.name}", field=f"fields[{i}]")
        route = deps.shards.route(request.key if field == spec.key else None, spec_partitions(deps, spec.name), context)
        if not route.local:  # the owning shard checks the policy, audits and answers
            return await deps.shards.call(route.remote[0], _get, request, context)
        asked = list(request.fields)
        by_key = field == spec.key
        # Looking up by a field reads it: the grant must cover it even when no field list is given. By
        # the key, the caller supplied it and learns nothing from getting it back: no grant needs it.
        free = {spec.key} if by_key else set()
        touched = [n for n in asked if n not in free] + ([] if by_key else [field])
        _, access = authorize_read(deps, request, "lookup", (request.key,), touched)
        # Without a field list, a grantee gets the fields its grant covers, and the key it looked up by.
        fields = asked or [f.name for f in spec.fields if f.name in access.fields or f.name in free]
        version = await version_for(deps, request.resource, request.consistency, context)
        if field == spec.key:
            row = version.row(request.key)
            rows: tuple[int, ...] = (row,) if row >= 0 else ()
        else:
            rows = version.rows_by(field, request.key)
        masks = {f: m for f, m in access.masks.items() if f in fields}
        key_spec = spec.field(spec.key)
        if by_key and spec.key in fields and spec.key not in access.fields and key_spec.sensitive:
            masks[spec.key] = key_spec.mask  # shown as a grant listing it (masked) would show it
        records = [orjson.dumps(mask_record(version.record(r, fields), masks)) for r in rows]
        watermark = watermark_to_pb(version.watermark)
        if route.remote:  # an indexed field: matching records may be on every shard
            answers = await asyncio.gather(*(_get_or_none(deps, i, request, context) for i in route.remote))
            records += [r for a in answers if a is not None for r in a.records]
            watermark = merge_watermarks([watermark, *(a.watermark for a in answers if a is not None)])
        if not records:
            problem = key_problem(spec, field, request.key)
            if problem is not None:
                raise InvalidArgument(f"key: {problem}", field="key")
            raise NotFound(f"{spec.name} has no record with {field} {request.key!r}", field="key")
        return lookup_pb2.GetResponse(records=records, watermark=watermark, masked_fields=sorted(masks))


def _get(channel):
    return lookup_pb2_grpc.LookupStub(channel).Get


async def _get_or_none(
    deps: Deps, index: int, request: lookup_pb2.GetRequest, context
) -> lookup_pb2.GetResponse | None:
    """Shard ``index``'s records for the key, None if it has none (any other refusal is raised)."""
    try:
        return await deps.shards.call(index, _get, request, context)
    except Relayed as exc:
        if exc.code == grpc.StatusCode.NOT_FOUND:
            return None
        raise
