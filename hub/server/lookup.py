"""Lookup.Get: a record's fields from the cache."""

from __future__ import annotations

import orjson
from grpc import aio

from hub.cache.replica import ReplicaCache
from hub.cache.verify import key_field_of, key_problem
from hub.errors import InvalidArgument, NotFound
from hub.server.convert import watermark_to_pb
from hub.server.verification import version_for
from hub.v1 import lookup_pb2, lookup_pb2_grpc


class LookupService(lookup_pb2_grpc.LookupServicer):
    def __init__(self, cache: ReplicaCache) -> None:
        self._cache = cache

    async def Get(self, request: lookup_pb2.GetRequest, context: aio.ServicerContext) -> lookup_pb2.GetResponse:
        version = await version_for(self._cache, request.resource, request.consistency, context)
        spec = version.spec
        field = key_field_of(spec, request.key_field)
        fields = list(request.fields) or [f.name for f in spec.fields]
        for i, name in enumerate(fields):
            if name not in spec.by_name:
                raise InvalidArgument(f"fields[{i}]: {name!r} is not a field of {spec.name}", field=f"fields[{i}]")
        if field == spec.key:
            row = version.row(request.key)
            rows: tuple[int, ...] = (row,) if row >= 0 else ()
        else:
            rows = version.rows_by(field, request.key)
        if not rows:
            problem = key_problem(spec, field, request.key)
            if problem is not None:
                raise InvalidArgument(f"key: {problem}", field="key")
            raise NotFound(f"{spec.name} has no record with {field} {request.key!r}", field="key")
        return lookup_pb2.GetResponse(
            records=[orjson.dumps(version.record(r, fields)) for r in rows],
            watermark=watermark_to_pb(version.watermark),
        )
