"""A hub running in this process on a real gRPC port, for the hub's tests and connector authors' tests.

:func:`running_hub` starts a :class:`~hub.server.app.HubServer` on its own event loop thread
against a given Kafka bootstrap (the embedded broker or a cluster) and yields a
:class:`RunningHub`: stubs calling as any department, and helpers to publish and verify. The
universal connector suite (:mod:`hub.connect.testing`) runs against it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import orjson
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hub.catalogue.model import load_catalogue
from hub.client import open_channel
from hub.server.app import HubServer
from hub.settings import HubSettings
from hub.v1 import (
    audit_pb2_grpc,
    catalog_pb2_grpc,
    common_pb2,
    exchange_pb2,
    exchange_pb2_grpc,
    governance_pb2_grpc,
    lookup_pb2_grpc,
    verification_pb2,
    verification_pb2_grpc,
)

CTX = common_pb2.CallContext(purpose=common_pb2.PURPOSE_LEGAL_BASIS, case_number="DY-TEST-0001")


class Client:
    """Stubs on one channel, calling as one department."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.channel = channel
        self.exchange = exchange_pb2_grpc.ExchangeStub(channel)
        self.verification = verification_pb2_grpc.VerificationStub(channel)
        self.lookup = lookup_pb2_grpc.LookupStub(channel)
        self.catalog = catalog_pb2_grpc.CatalogStub(channel)
        self.governance = governance_pb2_grpc.GovernanceStub(channel)
        self.audit = audit_pb2_grpc.AuditStub(channel)


class RunningHub:
    """A HubServer on its own event loop thread, reached through a real channel."""

    def __init__(self, settings: HubSettings, bootstrap: str, interceptors: list | None = None) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.server = HubServer(settings, bootstrap, load_catalogue(settings.catalogue_path), interceptors=interceptors)
        self.port = self._call(self.server.start())
        self.address = f"{settings.host}:{self.port}"
        self._clients: dict[str, Client] = {}
        # Most tests act as the population registry, the provider of population.resident.
        default = self.client("public_security")
        self.channel = default.channel
        self.exchange, self.verification, self.lookup = default.exchange, default.verification, default.lookup
        self.catalog = default.catalog
        self.health = health_pb2_grpc.HealthStub(self.channel)
        self.replicas = [self]  # every shard's replica, this one included (running_shards sets it)

    def settle(self, topic: str, timeout: float = 60) -> None:
        """Waits until every replica has applied what this one has of a state topic (``server.topics``):
        a grant or a dispute made here is then known to the shard that checks a forwarded call."""
        assert self.server.cache is not None
        wanted = [(p, n - 1) for p, n in enumerate(self.server.cache.positions(topic)) if n]
        for hub in self.replicas:
            assert hub.server.cache is not None
            hub._call(hub.server.cache.reached(topic, wanted, timeout), timeout + 5)

    def client(self, department: str, subsystem: str = "") -> Client:
        """Stubs calling as ``department``: with its certificate under mutual TLS (issued on first use),
        or naming it in a header in insecure development mode."""
        key = f"{department}.{subsystem}"
        if key not in self._clients:
            tls_dir = self.settings.tls_dir
            if tls_dir is None:
                channel = open_channel(self.address, department=department, subsystem=subsystem)
            else:
                from hub.governance.pki import CertificateAuthority

                issued = CertificateAuthority(tls_dir).issue(department, subsystem)
                channel = open_channel(
                    self.address, tls=(tls_dir / "ca.crt", Path(issued.cert_path), Path(issued.key_path))
                )
            self._clients[key] = Client(channel)
        return self._clients[key]

    def provider_of(self, resource: str) -> str:
        catalogue = self.server.catalogue
        return catalogue.resource(resource).provider if resource in catalogue else "public_security"

    def _call(self, coro, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def wait_ready(self, timeout: float = 60) -> None:
        assert self.server.cache is not None
        assert self.server.cache.wait_ready(timeout), "cache did not catch up"
        # health flips to SERVING right after the cache is ready (on the hub's loop, however busy)
        deadline = time.monotonic() + timeout
        # types-grpcio-health-checking's HealthStub declares no RPC methods
        while self.health.Check(health_pb2.HealthCheckRequest()).status != health_pb2.HealthCheckResponse.SERVING:  # type: ignore[attr-defined]
            assert time.monotonic() < deadline, "health never reported SERVING"
            threading.Event().wait(0.05)

    def stop(self) -> None:
        for client in self._clients.values():
            client.channel.close()
        self._call(self.server.stop(grace=2))
        self._call(self.loop.shutdown_default_executor())  # its threads would outlive the hub
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    # -- helpers ---------------------------------------------------------------------------------

    def publish(
        self, resource: str, records: list[dict | tuple[str, None]], department: str | None = None
    ) -> exchange_pb2.PublishResponse:
        pb = []
        for r in records:
            if isinstance(r, tuple):
                pb.append(exchange_pb2.Record(key=r[0], delete=True))
            else:
                pb.append(exchange_pb2.Record(json=orjson.dumps(r)))
        client = self.client(department or self.provider_of(resource))
        return client.exchange.Publish(exchange_pb2.PublishRequest(resource=resource, records=pb), timeout=30)

    def verify(
        self,
        resource: str,
        key: str,
        claims: dict[str, str] | list | None = None,
        after: exchange_pb2.PublishResponse | None = None,
        key_field: str = "",
        timeout: float = 30,
        department: str | None = None,
        context: common_pb2.CallContext = CTX,
    ) -> verification_pb2.VerifyResponse:
        if isinstance(claims, dict):
            claims = [verification_pb2.Claim(field=f, values=[v]) for f, v in claims.items()]
        consistency = common_pb2.Consistency(min_offsets=after.offsets) if after is not None else None
        client = self.client(department or self.provider_of(resource))
        return client.verification.Verify(
            verification_pb2.VerifyRequest(
                resource=resource,
                key=key,
                key_field=key_field,
                claims=claims or [],
                consistency=consistency,
                context=context,
            ),
            timeout=timeout,
        )


def _settings(bootstrap: str, prefix: str, data_dir: Path, settings: dict) -> HubSettings:
    options = {
        "insecure_dev": "tls_dir" not in settings,
        "audit_checkpoint_interval_s": 0.2,
        "notice_engine": False,
        "metrics_port": None,
        **settings,
    }
    return HubSettings(bootstrap_servers=bootstrap, topic_prefix=prefix, port=0, data_dir=data_dir, **options)


@contextmanager
def running_hub(
    bootstrap: str, prefix: str, data_dir: Path, interceptors: list | None = None, **settings
) -> Iterator[RunningHub]:
    """A hub in insecure development mode, or with mutual TLS when ``tls_dir`` is given. The notice
    engine (a consumer group: joining takes seconds on tansu) runs only when a test asks for it."""
    hub = RunningHub(_settings(bootstrap, prefix, data_dir, settings), bootstrap, interceptors)
    try:
        hub.wait_ready()
        yield hub
    finally:
        hub.stop()


@contextmanager
def running_shards(bootstrap: str, prefix: str, data_dir: Path, count: int, **settings) -> Iterator[list[RunningHub]]:
    """One replica of each of ``count`` shards (``--shard I/count``), all in this process and sharing
    ``data_dir`` (its keys, as replicas share a secret; snapshots go to a directory per shard). Ready
    once each is SERVING and each has read every shard's announcement, so any one answers for all."""
    hubs: list[RunningHub] = []
    try:
        for index in range(count):
            hubs.append(
                RunningHub(_settings(bootstrap, prefix, data_dir, {**settings, "shard": f"{index}/{count}"}), bootstrap)
            )
        for hub in hubs:
            hub.wait_ready()
            hub.replicas = hubs
        deadline = time.monotonic() + 60
        while not all(h.server.deps and all(h.server.deps.shards.replicas(i) for i in range(count)) for h in hubs):
            if time.monotonic() > deadline:
                raise AssertionError("the shards did not see each other's announcements")
            time.sleep(0.05)
        yield hubs
    finally:
        for hub in hubs:
            hub.stop()


@contextmanager
def running_layout(bootstrap: str, prefix: str, data_dir: Path, count: int) -> Iterator[RunningHub]:
    """An unsharded hub (``count`` 1), or the replica of shard 0 of ``count``, which forwards to the others
    and gathers their answers: the same behaviour tests run on both."""
    if count == 1:
        with running_hub(bootstrap, prefix, data_dir) as hub:
            yield hub
    else:
        with running_shards(bootstrap, prefix, data_dir, count) as shards:
            yield shards[0]
