"""The universal connector suite: the checks every connector must pass.

A :class:`Kit` describes how to test one connector: sample catalogue records, how the department's
system renders them natively, where that system keeps them (a stand-in from
:mod:`hub.datagen.departments`), and defects that make a native row unusable. The checks run a
connector against a real hub and a real broker (and a real PostgreSQL for database sources):

- :func:`check_schema_mapping`: every native row lands in the cache as its catalogue record;
- :func:`check_resume`: a run stopped part-way and restarted loses nothing and repeats nothing;
- :func:`check_bad_rows`: defective rows go to the dead letter with a reason, the rest land;
- :func:`check_backpressure`: the runtime waits when the hub says RESOURCE_EXHAUSTED, and never
  has more calls in flight than allowed;
- :func:`check_deletes`: a row deleted at the source disappears from the cache.

``tests/test_connector_suite.py`` runs them for every connector in ``connectors/``; a connector
made by ``hub connector new`` gets a test module that runs them for it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import grpc
import orjson

from hub.catalogue.model import load_builtin
from hub.connect.registry import resolve_connector
from hub.connect.runtime import ConnectorRuntime, RuntimeOptions
from hub.connect.source import Connector, Source, SourceRecord
from hub.v1 import common_pb2, lookup_pb2, lookup_pb2_grpc, verification_pb2, verification_pb2_grpc


class HubUnderTest(Protocol):
    """What the checks need of a running hub (:class:`hub.testing.harness.RunningHub` provides it)."""

    def client(self, department: str, subsystem: str = "") -> Any: ...


class SystemUnderTest(Protocol):
    """What the checks need of the department's system (the stand-ins in :mod:`hub.datagen.departments`
    provide it): the connector under test reads it at :meth:`location`."""

    def write(self, rows: Sequence[dict[str, Any]]) -> None: ...

    def delete(self, rows: Sequence[dict[str, Any]]) -> None: ...

    def location(self) -> str: ...

    def close(self) -> None: ...


@dataclass
class Kit:
    connector: str  # short name or package.module:Class
    records: Callable[[int, int], list[dict[str, Any]]]  # (n, seed) → catalogue records
    render: Callable[[dict[str, Any]], dict[str, Any]]  # catalogue record → native row
    system: Callable[[Path, dict[str, str]], SystemUnderTest]  # (workdir, services) → stand-in
    defects: list[tuple[str, Any]] = field(default_factory=list)  # (native column, unusable value)
    needs: tuple[str, ...] = ()  # services, e.g. ("postgres",)

    def make(self) -> Connector:
        return resolve_connector(self.connector)()


class StopAfter(Source):
    """Wraps a source and stops polling after ``limit`` records, as a crash would."""

    def __init__(self, inner: Source, limit: int) -> None:
        self.inner, self.limit, self.seen = inner, limit, 0

    def setup(self, offsets: Mapping[str, Any]) -> None:
        self.inner.setup(offsets)

    def poll(self, max_records: int) -> list[SourceRecord]:
        if self.seen >= self.limit:
            return []
        rows = self.inner.poll(min(max_records, self.limit - self.seen))
        self.seen += sum(not r.control for r in rows)
        return rows

    def acknowledged(self, offsets: Mapping[str, Any]) -> None:
        self.inner.acknowledged(offsets)

    def close(self) -> None:
        self.inner.close()

    @property
    def finished(self) -> bool:
        return self.seen >= self.limit or self.inner.finished

    @property
    def idle(self) -> bool:
        return self.seen >= self.limit or self.inner.idle


def run_once(
    hub: HubUnderTest,
    connector: Connector,
    source: Source,
    state: Path,
    options: RuntimeOptions | None = None,
    channel: grpc.Channel | None = None,
) -> ConnectorRuntime:
    """Runs the connector until its source has caught up and everything is acknowledged."""
    options = options or RuntimeOptions(batch_size=200, stop_when_idle=True)
    runtime = ConnectorRuntime(connector, source, channel or hub.client(connector.department).channel, state, options)
    runtime.run()
    return runtime


def _expected(resource: str, record: dict[str, Any]) -> dict[str, Any]:
    spec = load_builtin().resource(resource)
    out = {f.name: record.get(f.name) for f in spec.fields}
    return {k: (v or None) if isinstance(v, list) else v for k, v in out.items()}


def cached(hub: HubUnderTest, connector: Connector, keys: Iterable[str]) -> dict[str, dict[str, Any] | None]:
    """The cache's records for ``keys`` (None where absent), read by the provider over gRPC."""
    channel = hub.client(connector.department).channel
    lookup = lookup_pb2_grpc.LookupStub(channel)
    ctx = common_pb2.CallContext(purpose=common_pb2.PURPOSE_DATA_CHECK, case_number="CONNECTOR-SUITE")
    out: dict[str, dict[str, Any] | None] = {}
    for key in keys:
        try:
            got = lookup.Get(lookup_pb2.GetRequest(resource=connector.resource, key=key, context=ctx))
            out[key] = orjson.loads(got.records[0])
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.NOT_FOUND:
                raise
            out[key] = None
    return out


def wait_visible(hub: HubUnderTest, connector: Connector, runtime: ConnectorRuntime, key: str) -> None:
    """Read-your-writes on the connector's last publish."""
    if not runtime.last_offsets:
        return
    verification_pb2_grpc.VerificationStub(hub.client(connector.department).channel).Verify(
        verification_pb2.VerifyRequest(
            resource=connector.resource,
            key=key,
            context=common_pb2.CallContext(purpose=common_pb2.PURPOSE_DATA_CHECK, case_number="CONNECTOR-SUITE"),
            consistency=common_pb2.Consistency(min_offsets=runtime.last_offsets),
        ),
        timeout=60,
    )


def _key(kit: Kit, record: dict[str, Any]) -> str:
    spec = load_builtin().resource(kit.make().resource)
    return str(record[spec.key])


def check_schema_mapping(kit: Kit, hub: HubUnderTest, workdir: Path, services: dict[str, str]) -> None:
    connector = kit.make()
    records = kit.records(120, 1)
    system = kit.system(workdir / "system", services)
    try:
        system.write([kit.render(r) for r in records])
        runtime = run_once(hub, connector, connector.default_source(system.location()), workdir / "state")
        assert runtime.stats.dead_lettered == 0, runtime.dead_letter.entries()[:3]
        assert runtime.stats.published == len(records)
        wait_visible(hub, connector, runtime, _key(kit, records[-1]))
        got = cached(hub, connector, [_key(kit, r) for r in records])
        for record in records:
            assert got[_key(kit, record)] == _expected(connector.resource, record), _key(kit, record)
    finally:
        system.close()


def check_resume(kit: Kit, hub: HubUnderTest, workdir: Path, services: dict[str, str]) -> None:
    connector = kit.make()
    records = kit.records(300, 2)
    system = kit.system(workdir / "system", services)
    try:
        system.write([kit.render(r) for r in records])
        first = run_once(hub, connector, StopAfter(connector.default_source(system.location()), 110), workdir / "state")
        assert first.stats.read == 110, first.stats
        second = run_once(hub, kit.make(), connector.default_source(system.location()), workdir / "state")
        assert first.stats.read + second.stats.read == len(records), "rows read twice or never"
        assert first.stats.published + second.stats.published == len(records)
        wait_visible(hub, connector, second, _key(kit, records[-1]))
        got = cached(hub, connector, [_key(kit, r) for r in records])
        assert all(got[_key(kit, r)] == _expected(connector.resource, r) for r in records)
    finally:
        system.close()


def check_bad_rows(kit: Kit, hub: HubUnderTest, workdir: Path, services: dict[str, str]) -> None:
    connector = kit.make()
    records = kit.records(40, 3)
    bad = []
    for i, (column, value) in enumerate(kit.defects):
        row = kit.render(records[i])
        row[column] = value
        bad.append(row)
    good = records[len(kit.defects) :]
    system = kit.system(workdir / "system", services)
    try:
        system.write(bad + [kit.render(r) for r in good])
        runtime = run_once(hub, connector, connector.default_source(system.location()), workdir / "state")
        entries = runtime.dead_letter.entries()
        assert len(entries) == len(bad) == runtime.stats.dead_lettered, entries
        assert all(e["reason"] and e["row"] for e in entries)
        assert runtime.stats.published == len(good)
        wait_visible(hub, connector, runtime, _key(kit, good[-1]))
        got = cached(hub, connector, [_key(kit, r) for r in good])
        assert all(got[_key(kit, r)] == _expected(connector.resource, r) for r in good)
    finally:
        system.close()


if TYPE_CHECKING:  # the stubs' generics: grpc's own classes are not subscriptable
    _MethodHandler = grpc.RpcMethodHandler[Any, Any]
    _Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[_MethodHandler | None]]
    _Publish = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]


class PublishInterceptor(grpc.aio.ServerInterceptor):
    """Wraps the hub's Publish handler, to stage the hub's faults for connector tests."""

    async def intercept_service(
        self, continuation: _Continuation, details: grpc.HandlerCallDetails
    ) -> _MethodHandler | None:
        handler = await continuation(details)
        if handler is None or not details.method.endswith("/Publish"):
            return handler
        inner = cast("_Publish", handler.unary_unary)  # on an aio server, a coroutine function (the stubs say sync)

        async def publish(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            return await self.publish(inner, request, context)

        return grpc.unary_unary_rpc_method_handler(publish, handler.request_deserializer, handler.response_serializer)

    async def publish(self, inner: _Publish, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        """Answers one Publish call; ``await inner(request, context)`` is the hub's own answer."""
        raise NotImplementedError


class Throttle(PublishInterceptor):
    """Answers RESOURCE_EXHAUSTED (retry after ``retry_after_ms``) to the first ``refusals`` Publish
    calls, and records the most Publish calls ever in flight at once."""

    def __init__(self, refusals: int, retry_after_ms: int = 300) -> None:
        self.refusals = refusals
        self.retry_after_ms = retry_after_ms
        self.in_flight = 0
        self.peak = 0
        self.refused_at: list[float] = []
        self.accepted_at: list[float] = []

    async def publish(self, inner: _Publish, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if self.refusals > 0:
                self.refusals -= 1
                self.refused_at.append(time.monotonic())
                context.set_trailing_metadata((("retry-after-ms", str(self.retry_after_ms)),))
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "the hub is saturated")
            self.accepted_at.append(time.monotonic())
            return await inner(request, context)
        finally:
            self.in_flight -= 1


def check_backpressure(
    kit: Kit, hub: HubUnderTest, throttle: Throttle, workdir: Path, services: dict[str, str]
) -> None:
    """``hub`` must run with ``throttle`` among its interceptors."""
    connector = kit.make()
    records = kit.records(200, 4)
    system = kit.system(workdir / "system", services)
    try:
        system.write([kit.render(r) for r in records])
        options = RuntimeOptions(batch_size=20, max_in_flight=2, backoff_initial_s=0.01, stop_when_idle=True)
        runtime = run_once(hub, connector, connector.default_source(system.location()), workdir / "state", options)
        assert runtime.stats.published == len(records)
        assert throttle.peak <= 2, f"{throttle.peak} calls in flight, allowed 2"
        assert runtime.stats.retried > 0
        wait = throttle.retry_after_ms / 1000
        assert throttle.accepted_at[0] - throttle.refused_at[0] >= wait * 0.9, "retry-after was not honoured"
    finally:
        system.close()


def check_deletes(kit: Kit, hub: HubUnderTest, workdir: Path, services: dict[str, str]) -> None:
    connector = kit.make()
    records = kit.records(60, 5)
    doomed = records[::3]
    system = kit.system(workdir / "system", services)
    try:
        system.write([kit.render(r) for r in records])
        runtime = run_once(hub, connector, connector.default_source(system.location()), workdir / "state")
        wait_visible(hub, connector, runtime, _key(kit, records[-1]))
        system.delete([kit.render(r) for r in doomed])
        runtime = run_once(hub, kit.make(), connector.default_source(system.location()), workdir / "state")
        wait_visible(hub, connector, runtime, _key(kit, doomed[-1]))
        got = cached(hub, connector, [_key(kit, r) for r in records])
        gone = {_key(kit, r) for r in doomed}
        wrong = {k: got[k] for k in got if (got[k] is None) != (k in gone)}
        assert not wrong, f"deleted but still cached, or gone without a delete: {sorted(wrong)[:5]}"
    finally:
        system.close()


CHECKS: dict[str, Callable[..., None]] = {
    "schema_mapping": check_schema_mapping,
    "resume": check_resume,
    "bad_rows": check_bad_rows,
    "deletes": check_deletes,
}


def first_records(generate: Callable[[], Iterable[dict[str, Any]]], n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for record in generate():
        out.append(record)
        if len(out) >= n:
            break
    return out
