"""One hub process: topics, producer, cache, gRPC server, health and reflection.

Lifecycle: :meth:`HubServer.start` creates missing topics, starts the cache
feeder and the server, and reports NOT_SERVING on gRPC health until the cache
has caught up with every resource topic. :meth:`HubServer.stop` turns health
to NOT_SERVING, lets in-flight RPCs finish within the grace period, flushes
the producer and stops the feeder.
"""

from __future__ import annotations

import asyncio
import logging

import grpc
from confluent_kafka.admin import AdminClient
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from hub.cache.replica import ReplicaCache, SnapshotPolicy
from hub.catalogue.model import Catalogue
from hub.kafka.clients import admin_config, producer_config
from hub.kafka.producer import AckingProducer
from hub.kafka.topics import TopicSpec, ensure_topics, topic_identities
from hub.records.codec import topic_for
from hub.server.catalog import CatalogService
from hub.server.exchange import ExchangeService
from hub.server.interceptors import ErrorInterceptor
from hub.server.lookup import LookupService
from hub.server.verification import VerificationService
from hub.settings import HubSettings
from hub.v1 import (
    catalog_pb2,
    catalog_pb2_grpc,
    exchange_pb2,
    exchange_pb2_grpc,
    lookup_pb2,
    lookup_pb2_grpc,
    verification_pb2,
    verification_pb2_grpc,
)

log = logging.getLogger(__name__)

SERVICES = {
    "hub.v1.Exchange": exchange_pb2,
    "hub.v1.Verification": verification_pb2,
    "hub.v1.Lookup": lookup_pb2,
    "hub.v1.Catalog": catalog_pb2,
}
# Served before the cache is ready: publishing and the catalogue do not read it.
_READY_FIRST = {"hub.v1.Verification", "hub.v1.Lookup"}
MAX_MESSAGE = 64 << 20


class HubServer:
    def __init__(
        self,
        settings: HubSettings,
        bootstrap: str,
        catalogue: Catalogue,
        extra_handlers: list[grpc.GenericRpcHandler] | None = None,
    ) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        self.catalogue = catalogue
        self.port = 0
        self._extra_handlers = extra_handlers or []
        self.cache: ReplicaCache | None = None
        self.producer: AckingProducer | None = None
        self._server: aio.Server | None = None
        self._health = HealthServicer()
        self._ready_task: asyncio.Task | None = None

    def topic_specs(self) -> list[TopicSpec]:
        return [
            TopicSpec(topic_for(self.settings.topic_prefix, r.name), r.partitions) for r in self.catalogue.resources
        ]

    async def start(self) -> int:
        s = self.settings
        kafka_extra = s.kafka_extra() if s.bootstrap_servers else {}
        admin = AdminClient({**admin_config(self.bootstrap), **kafka_extra})
        partitions = await asyncio.to_thread(ensure_topics, admin, self.topic_specs())

        identities = await asyncio.to_thread(topic_identities, admin, partitions)
        snapshots = None
        if s.snapshot_interval_s > 0:
            snapshots = SnapshotPolicy(s.data_dir / "snapshots" / s.topic_prefix.rstrip("."), s.snapshot_interval_s)
        self.cache = ReplicaCache(
            self.catalogue,
            self.bootstrap,
            s.topic_prefix,
            partitions,
            consumer_extra=kafka_extra,
            identities=identities,
            snapshots=snapshots,
        )
        self.cache.start(asyncio.get_running_loop())
        self.producer = AckingProducer(producer_config(self.bootstrap, kafka_extra))

        server = aio.server(
            interceptors=[ErrorInterceptor()],
            options=[
                ("grpc.so_reuseport", 1),
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", MAX_MESSAGE),
                ("grpc.keepalive_time_ms", 60000),
                ("grpc.http2.max_pings_without_data", 0),
            ],
        )
        exchange_pb2_grpc.add_ExchangeServicer_to_server(
            ExchangeService(self.catalogue, self.producer, s.topic_prefix), server
        )
        verification_pb2_grpc.add_VerificationServicer_to_server(VerificationService(self.cache), server)
        lookup_pb2_grpc.add_LookupServicer_to_server(LookupService(self.cache), server)
        catalog_pb2_grpc.add_CatalogServicer_to_server(
            CatalogService(self.catalogue, s.topic_prefix, partitions), server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        server.add_generic_rpc_handlers(self._extra_handlers)
        names = [pb.DESCRIPTOR.services_by_name[n.rsplit(".", 1)[1]].full_name for n, pb in SERVICES.items()]
        reflection.enable_server_reflection(
            [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME], server
        )

        self.port = server.add_insecure_port(f"{s.host}:{s.port}")
        await server.start()
        self._server = server
        NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
        await self._health.set("", NOT_SERVING)
        for name in SERVICES:
            await self._health.set(
                name, NOT_SERVING if name in _READY_FIRST else health_pb2.HealthCheckResponse.SERVING
            )
        self._ready_task = asyncio.create_task(self._serve_when_ready())
        log.info("hub listening on %s:%d (cache catching up)", s.host, self.port)
        return self.port

    async def _serve_when_ready(self) -> None:
        assert self.cache is not None
        while not await asyncio.to_thread(self.cache.wait_ready, 0.5):
            if self.cache.feeder.error is not None:
                log.error("cache feeder failed; staying NOT_SERVING: %s", self.cache.feeder.error)
                return
        SERVING = health_pb2.HealthCheckResponse.SERVING
        for name in _READY_FIRST:
            await self._health.set(name, SERVING)
        await self._health.set("", SERVING)
        log.info("cache caught up: SERVING")

    async def wait(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()

    async def stop(self, grace: float = 5.0) -> None:
        await self._health.enter_graceful_shutdown()
        if self._ready_task is not None:
            self._ready_task.cancel()
        if self._server is not None:
            await self._server.stop(grace)
        if self.producer is not None:
            await asyncio.to_thread(self.producer.close)
        if self.cache is not None:
            await asyncio.to_thread(self.cache.stop)
        log.info("hub stopped")
