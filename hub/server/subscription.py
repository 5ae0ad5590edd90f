"""Subscription.Subscribe and Ack: resumable, filtered, masked change streams.

On a sharded hub a stream gathers the shards' streams: this replica's partitions from its own
ring, the others' from a replica of each other shard, merged into one stream with one cursor.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import orjson
from grpc import aio

from hub.cache.changes import ChangeRing
from hub.errors import InvalidArgument, Unavailable
from hub.flows.changefeed import ChangeStream, TopicReader, decode_cursor, encode_cursor, topic_ends
from hub.governance.identity import current_caller
from hub.records.masking import mask_record
from hub.server.deps import Deps
from hub.server.interceptors import note_access
from hub.server.shards import relayed
from hub.v1 import subscription_pb2, subscription_pb2_grpc

MAX_FILTERS = 16


def _ring(deps: Deps, topic: str) -> ChangeRing:
    ring = deps.cache.rings.get(topic)
    if ring is None:  # registered a moment ago on another replica; this one is still creating its table
        raise Unavailable(f"{topic} is not loaded on this replica yet")
    return ring


UPSERT, DELETE = subscription_pb2.CHANGE_OP_UPSERT, subscription_pb2.CHANGE_OP_DELETE


def _subscribe(channel):
    return subscription_pb2_grpc.SubscriptionStub(channel).Subscribe


async def _gathered(sources: list[AsyncIterator], positions: list[int]) -> AsyncIterator:
    """The sources' responses as they come, each with the cursor over every partition; the first
    failure of any source ends the stream with it."""
    queue: asyncio.Queue = asyncio.Queue(maxsize=1000)

    async def pump(source: AsyncIterator) -> None:
        try:
            async for item in source:
                await queue.put(item)
        except BaseException as exc:  # handed to the consumer, which raises it
            await queue.put(exc)
            raise

    tasks = [asyncio.create_task(pump(s)) for s in sources]
    try:
        while True:
            item = await queue.get()
            if isinstance(item, BaseException):
                raise item
            positions[item.partition] = item.offset + 1
            item.cursor = encode_cursor(positions)
            yield item
    finally:
        for task in tasks:
            task.cancel()


class SubscriptionService(subscription_pb2_grpc.SubscriptionServicer):
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def _positions(self, request: subscription_pb2.SubscribeRequest, partitions: int, ring) -> list[int]:
        cursor = request.cursor
        if not cursor and request.name:
            cursor = (
                self._deps.subscriptions.cursor(current_caller.get().department, request.name, request.resource) or ""
            )
        if cursor:
            return decode_cursor(cursor, partitions)
        if request.start == subscription_pb2.START_FROM_EARLIEST:
            return [0] * partitions
        ends = ring.ends()
        deps = self._deps
        topic = deps.topics.resource(request.resource)
        others = sorted(set(range(partitions)) - set(deps.cache.owned(topic, partitions)))
        if others:  # partitions other shards hold: the ring here never saw them
            known = await asyncio.to_thread(topic_ends, deps.cache.bootstrap, topic, others, deps.cache.consumer_extra)
            ends = [known.get(p, e) for p, e in enumerate(ends)]
        return ends

    async def Subscribe(self, request: subscription_pb2.SubscribeRequest, context: aio.ServicerContext):
        deps = self._deps
        spec = deps.catalogue.resource(request.resource)
        if len(request.filters) > MAX_FILTERS:
            raise InvalidArgument(f"filters: at most {MAX_FILTERS}", field="filters")
        filters = [(f.field, f.prefix) for f in request.filters]
        for i, (name, _) in enumerate(filters):
            if name not in spec.by_name:
                raise InvalidArgument(
                    f"filters[{i}].field: {name!r} is not a field of {spec.name}", field=f"filters[{i}].field"
                )
        ctx = request.context
        note_access("subscribe", spec.name, fields=[f for f, _ in filters], case_number=ctx.case_number)
        purpose = deps.policy.check_context(ctx.purpose, ctx.case_number)
        note_access(
            "subscribe", spec.name, fields=[f for f, _ in filters], purpose=purpose, case_number=ctx.case_number
        )
        access = deps.policy.read(current_caller.get(), spec, "subscribe", purpose, [f for f, _ in filters])
        topic = deps.topics.resource(spec.name)
        ring = _ring(deps, topic)
        positions = await self._positions(request, ring.partitions, ring)
        projection = (
            None if access.fields >= set(spec.by_name) else [f.name for f in spec.fields if f.name in access.fields]
        )
        masks = access.masks
        plain = not filters and not masks and projection is None
        stream = ChangeStream(
            ring,
            list(positions),
            lambda: TopicReader(deps.cache.bootstrap, topic, deps.cache.consumer_extra),
            deps.cache.owned(topic, ring.partitions),
        )
        local = self._local(stream, spec.name, filters, projection, masks, plain)
        route = deps.shards.route(None, ring.partitions, context)
        if not route.remote:
            async for response in local:
                yield response
            return
        remote = subscription_pb2.SubscribeRequest()
        remote.CopyFrom(request)
        remote.name, remote.cursor = "", encode_cursor(positions)
        sources = [local, *(self._shard_stream(i, remote) for i in route.remote)]
        async for response in _gathered(sources, positions):
            yield response

    async def _shard_stream(self, index: int, request: subscription_pb2.SubscribeRequest) -> AsyncIterator:
        """Shard ``index``'s stream: its first replica that answers; UNAVAILABLE once it fails (the
        caller resumes from its cursor)."""
        problems = []
        for open_stream in self._deps.shards.stream(index, _subscribe, request):
            call = open_stream()
            delivered = False
            try:
                async for response in call:
                    delivered = True
                    yield response
                return
            except aio.AioRpcError as err:
                if err.code() != grpc.StatusCode.UNAVAILABLE:
                    raise relayed(err) from None
                if delivered:
                    raise Unavailable(
                        f"the stream of shard {index} broke: {err.details()}; resume from the cursor"
                    ) from None
                problems.append(err.details() or "")
            finally:
                call.cancel()
        raise Unavailable(f"shard {index} is unavailable: {'; '.join(problems)}; its changes cannot be streamed")

    async def _local(self, stream: ChangeStream, spec_name: str, filters, projection, masks, plain: bool):
        """The changes of this replica's partitions, filtered, projected and masked."""
        try:
            while True:
                for change in await stream.next_batch():
                    cursor = stream.advance(change)
                    if change.value is None:
                        yield subscription_pb2.SubscribeResponse(
                            resource=spec_name,
                            key=change.key,
                            op=DELETE,
                            partition=change.partition,
                            offset=change.offset,
                            timestamp_ms=change.timestamp_ms,
                            cursor=cursor,
                        )
                        continue
                    value = change.value
                    if not plain:
                        record = orjson.loads(value)
                        if not all(str(record.get(f) or "").startswith(p) for f, p in filters):
                            continue
                        if projection is not None:
                            record = {k: record.get(k) for k in projection}
                        value = orjson.dumps(mask_record(record, masks))
                    yield subscription_pb2.SubscribeResponse(
                        resource=spec_name,
                        key=change.key,
                        op=UPSERT,
                        record=value,
                        partition=change.partition,
                        offset=change.offset,
                        timestamp_ms=change.timestamp_ms,
                        cursor=cursor,
                    )
        finally:
            await stream.close()

    async def Ack(
        self, request: subscription_pb2.AckRequest, context: aio.ServicerContext
    ) -> subscription_pb2.AckResponse:
        deps = self._deps
        caller = current_caller.get()
        spec = deps.catalogue.resource(request.resource)
        if not request.name:
            raise InvalidArgument("name: required", field="name")
        decode_cursor(request.cursor, _ring(deps, deps.topics.resource(spec.name)).partitions)
        await deps.write_state(
            deps.topics.subscriptions,
            f"{caller.department}:{request.name}",
            {"resource": spec.name, "cursor": request.cursor},
        )
        return subscription_pb2.AckResponse()
