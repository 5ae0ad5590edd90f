"""One hub process: topics, catalogue, governance, cache, audit, gRPC server, health and reflection.

Start-up: create the hub's own topics; read the managed catalogue to its end and seed what the
built-in catalogue adds; create the resource topics; start the feeder (resources, catalogue,
grants, audit index) and the server. gRPC health says NOT_SERVING for Verification and Lookup
until every topic has caught up. Stop: health NOT_SERVING, in-flight calls finish within the grace
period, the audit trail is flushed with a closing checkpoint, the producer is flushed, the
feeder stops (and snapshots).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

import grpc
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from hub.cache.replica import ReplicaCache, SnapshotPolicy
from hub.catalogue.model import Catalogue
from hub.catalogue.store import CatalogueStore
from hub.flows.cases import CaseResolver, load_case_types
from hub.flows.notices import NoticeEngine, load_rules, overdue_alerts
from hub.flows.stores import CaseLedger, CorrectionStore, NoticeStore, SubscriptionStore
from hub.governance import keys
from hub.governance.audit import AuditLog
from hub.governance.audit_index import AuditIndex
from hub.governance.identity import IdentityResolver
from hub.governance.policy import AccessPolicy
from hub.governance.state import GovernanceState
from hub.kafka.clients import admin_config, producer_config
from hub.kafka.keyed_state import read_to_end
from hub.kafka.producer import AckingProducer
from hub.kafka.topics import TopicSpec, ensure_topics, topic_identities
from hub.server.audit import AuditService
from hub.server.broker_watch import BrokerWatch
from hub.server.cases import CasesService
from hub.server.catalog import CatalogService
from hub.server.corrections import CorrectionsService
from hub.server.deps import Deps, Topics
from hub.server.exchange import ExchangeService
from hub.server.governance import GovernanceService
from hub.server.interceptors import CallInterceptor
from hub.server.lookup import LookupService
from hub.server.metrics import HubMetrics
from hub.server.notices import NoticesService
from hub.server.subscription import SubscriptionService
from hub.server.verification import VerificationService
from hub.settings import HubSettings
from hub.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    cases_pb2,
    cases_pb2_grpc,
    catalog_pb2,
    catalog_pb2_grpc,
    corrections_pb2,
    corrections_pb2_grpc,
    exchange_pb2,
    exchange_pb2_grpc,
    governance_pb2,
    governance_pb2_grpc,
    lookup_pb2,
    lookup_pb2_grpc,
    notices_pb2,
    notices_pb2_grpc,
    subscription_pb2,
    subscription_pb2_grpc,
    verification_pb2,
    verification_pb2_grpc,
)

log = logging.getLogger(__name__)

SERVICES = {
    "hub.v1.Exchange": exchange_pb2,
    "hub.v1.Verification": verification_pb2,
    "hub.v1.Lookup": lookup_pb2,
    "hub.v1.Catalog": catalog_pb2,
    "hub.v1.Governance": governance_pb2,
    "hub.v1.Audit": audit_pb2,
    "hub.v1.Subscription": subscription_pb2,
    "hub.v1.Notices": notices_pb2,
    "hub.v1.Cases": cases_pb2,
    "hub.v1.Corrections": corrections_pb2,
}
# Not served before the cache is ready: they read resource data.
_READY_FIRST = {"hub.v1.Verification", "hub.v1.Lookup", "hub.v1.Subscription", "hub.v1.Cases"}
MAX_MESSAGE = 64 << 20
INSECURE_BANNER = """
************************************************************************************
*  INSECURE DEVELOPMENT MODE: no TLS, and any caller can claim any department by    *
*  setting the x-hub-department header. Never run a hub like this with real data.   *
*  For production: hub certs init, then hub serve --tls-dir PKI_DIR.                *
************************************************************************************"""


class HubServer:
    def __init__(
        self,
        settings: HubSettings,
        bootstrap: str,
        seed: Catalogue,
        extra_handlers: list[grpc.GenericRpcHandler] | None = None,
        interceptors: list[aio.ServerInterceptor] | None = None,
    ) -> None:
        if settings.tls_dir is None and not settings.insecure_dev:
            raise ValueError("set tls_dir (HUB_TLS_DIR, --tls-dir) for mutual TLS, or insecure_dev for a demo")
        self.settings = settings
        self.bootstrap = bootstrap
        self.seed = seed
        self.topics = Topics(settings.topic_prefix)
        self.port = 0
        self._extra_handlers = extra_handlers or []
        self._interceptors = interceptors or []  # run before the hub's own (tests inject faults here)
        self.catalogue = CatalogueStore()
        self.identity: IdentityResolver | None = None
        self.governance: GovernanceState | None = None
        self.cache: ReplicaCache | None = None
        self.producer: AckingProducer | None = None
        self.audit: AuditLog | None = None
        self.deps: Deps | None = None
        self.notice_engine: NoticeEngine | None = None
        self.metrics = HubMetrics(lambda: (self.cache, self.producer, self.audit))
        self._server: aio.Server | None = None
        self._health = HealthServicer()
        self._cache_ready = False
        self.broker: BrokerWatch | None = None
        self.case_ledger: CaseLedger | None = None
        self._tasks: list[asyncio.Task] = []

    # -- start-up --------------------------------------------------------------------------------

    async def start(self) -> int:
        s = self.settings
        kafka_extra = s.kafka_extra() if s.bootstrap_servers else {}
        admin = AdminClient({**admin_config(self.bootstrap), **kafka_extra})
        t = self.topics
        internal = await asyncio.to_thread(
            ensure_topics,
            admin,
            [
                TopicSpec(t.catalogue, 1),
                TopicSpec(t.governance, 1),
                TopicSpec(t.audit, 3, compacted=False),
                TopicSpec(t.subscriptions, 1),
                TopicSpec(t.notices, 1),
                TopicSpec(t.corrections, 1),
                TopicSpec(t.cases, 3, compacted=False),
            ],
        )
        await asyncio.to_thread(self._load_catalogue, kafka_extra)
        partitions = await asyncio.to_thread(
            ensure_topics, admin, [TopicSpec(t.resource(r.name), r.partitions) for r in self.catalogue.resources]
        )
        identities = await asyncio.to_thread(topic_identities, admin, partitions)

        key_dir = s.tls_dir or (s.data_dir / "dev-keys")
        ca_pem = (s.tls_dir / "ca.crt").read_bytes() if s.tls_dir else None
        self.identity = IdentityResolver("mtls" if s.tls_dir else "insecure", self.catalogue.is_registered, ca_pem)
        if s.tls_dir and (s.tls_dir / "crl.pem").exists():
            self.identity.load_crl((s.tls_dir / "crl.pem").read_bytes())
        self.governance = GovernanceState(on_crl=self.identity.load_crl)
        audit_index = AuditIndex(internal[t.audit])
        subscriptions, notices, corrections = SubscriptionStore(), NoticeStore(), CorrectionStore()
        self.case_ledger = case_ledger = CaseLedger(internal[t.cases])
        snapshots = None
        if s.snapshot_interval_s > 0:
            snapshots = SnapshotPolicy(
                s.data_dir / "snapshots" / s.topic_prefix.rstrip("."), s.snapshot_interval_s, write=s.snapshot_writer
            )
        self.cache = ReplicaCache(
            self.catalogue.resources,
            self.bootstrap,
            s.topic_prefix,
            partitions,
            consumer_extra=kafka_extra,
            identities=identities,
            snapshots=snapshots,
            feeds=[t.notices, t.corrections],
            ring_capacity=s.change_ring_capacity,
            internal={
                t.catalogue: self.catalogue,
                t.governance: self.governance,
                t.audit: audit_index,
                t.subscriptions: subscriptions,
                t.notices: notices,
                t.corrections: corrections,
                t.cases: case_ledger,
            },
        )
        self.catalogue.subscribe(lambda changed: self._on_catalogue_change(admin, changed))
        self.cache.start(asyncio.get_running_loop())
        self.producer = AckingProducer(producer_config(self.bootstrap, kafka_extra))
        subject_key = (
            s.audit_subject_key.get_secret_value().encode() if s.audit_subject_key else keys.subject_key(key_dir)
        )
        if s.audit:
            self.audit = AuditLog(
                producer_config(self.bootstrap, kafka_extra),
                t.audit,
                keys.audit_signing_key(key_dir),
                subject_key,
                checkpoint_every=s.audit_checkpoint_every,
                checkpoint_interval_s=s.audit_checkpoint_interval_s,
            )
            self.audit.start()
        policy = AccessPolicy(self.catalogue, self.governance)
        self.deps = Deps(
            s,
            t,
            self.catalogue,
            self.governance,
            policy,
            self.cache,
            self.producer,
            admin,
            audit_index,
            subscriptions,
            notices,
            corrections,
            self.audit,
        )
        if s.notice_engine:
            self.notice_engine = NoticeEngine(
                self.bootstrap,
                t.resource("market.entity"),
                t.notices,
                f"{s.topic_prefix}notice-engine",
                notices,
                load_rules(),
                producer_config(self.bootstrap, kafka_extra),
                s.notice_claim_limit_s,
                kafka_extra,
                since_ms=None if s.notices_since is None else int(s.notices_since.timestamp() * 1000),
            )
            self.notice_engine.start()
        self.resolver = CaseResolver(load_case_types(), self.catalogue, self.cache, policy, corrections)
        self.broker = BrokerWatch(admin, self.bootstrap)
        await self._start_server(subject_key)
        self._tasks = [
            asyncio.create_task(self._serve_when_ready()),
            asyncio.create_task(self.broker.run(self._set_serving)),
            asyncio.create_task(self._report_overdue()),
            asyncio.create_task(self._raise_alerts()),
        ]
        if s.tls_dir:
            self._tasks.append(asyncio.create_task(self._watch_crl(s.tls_dir / "crl.pem")))
        return self.port

    def _load_catalogue(self, kafka_extra: dict) -> None:
        """The managed catalogue to its end, seeded with the built-in entries it lacks."""
        read_to_end(self.bootstrap, self.topics.catalogue, self.catalogue, kafka_extra)
        missing = self.catalogue.missing_from(self.seed)
        if missing:
            import orjson

            producer = Producer(producer_config(self.bootstrap, kafka_extra))
            for key, value in missing:
                producer.produce(self.topics.catalogue, orjson.dumps(value), key.encode())
            unacknowledged = producer.flush(30)
            producer.close()
            if unacknowledged:
                raise RuntimeError("could not seed the catalogue topic")
            log.info("seeded the catalogue with %d built-in entries", len(missing))
            read_to_end(self.bootstrap, self.topics.catalogue, self.catalogue, kafka_extra)

    def _on_catalogue_change(self, admin: AdminClient, keys_changed: Iterable[str]) -> None:  # feeder thread
        if self.cache is None:
            return
        for key in keys_changed:
            kind, _, name = key.partition(":")
            if kind != "resource" or name not in self.catalogue:
                continue
            spec = self.catalogue.resource(name)
            topic = self.topics.resource(name)
            counts = ensure_topics(admin, [TopicSpec(topic, spec.partitions)])
            identity = topic_identities(admin, [topic])[topic]
            self.cache.add_resource(spec, counts[topic], identity)

    async def _start_server(self, subject_key: bytes) -> None:
        s = self.settings
        assert self.deps is not None and self.case_ledger is not None
        if s.metrics_port is not None:
            self.metrics.serve(s.metrics_port)
        interceptor = CallInterceptor(
            self.identity, self.audit, s.audit_backlog_limit, self.metrics.observe, self.broker.refusal
        )
        server = aio.server(
            interceptors=[*self._interceptors, interceptor],
            options=[
                ("grpc.so_reuseport", 1),
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", MAX_MESSAGE),
                ("grpc.keepalive_time_ms", 60000),
                ("grpc.http2.max_pings_without_data", 0),
            ],
        )
        deps = self.deps
        exchange_pb2_grpc.add_ExchangeServicer_to_server(ExchangeService(deps), server)
        verification_pb2_grpc.add_VerificationServicer_to_server(VerificationService(deps), server)
        lookup_pb2_grpc.add_LookupServicer_to_server(LookupService(deps), server)
        catalog_pb2_grpc.add_CatalogServicer_to_server(CatalogService(deps), server)
        governance_pb2_grpc.add_GovernanceServicer_to_server(GovernanceService(deps), server)
        audit_pb2_grpc.add_AuditServicer_to_server(AuditService(deps, subject_key), server)
        subscription_pb2_grpc.add_SubscriptionServicer_to_server(SubscriptionService(deps), server)
        notices_pb2_grpc.add_NoticesServicer_to_server(NoticesService(deps, s.notice_feedback_limit_s), server)
        cases_pb2_grpc.add_CasesServicer_to_server(CasesService(deps, self.resolver, self.case_ledger), server)
        corrections_pb2_grpc.add_CorrectionsServicer_to_server(
            CorrectionsService(deps, s.correction_working_days), server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        server.add_generic_rpc_handlers(self._extra_handlers)
        names = [pb.DESCRIPTOR.services_by_name[n.rsplit(".", 1)[1]].full_name for n, pb in SERVICES.items()]
        reflection.enable_server_reflection(
            [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME], server
        )
        address = f"{s.host}:{s.port}"
        if s.tls_dir:
            credentials = grpc.ssl_server_credentials(
                [((s.tls_dir / "server.key").read_bytes(), (s.tls_dir / "server.crt").read_bytes())],
                root_certificates=(s.tls_dir / "ca.crt").read_bytes(),
                require_client_auth=True,
            )
            self.port = server.add_secure_port(address, credentials)
        else:
            print(INSECURE_BANNER, file=sys.stderr, flush=True)
            log.warning("INSECURE DEVELOPMENT MODE: no TLS; departments are taken from a header")
            self.port = server.add_insecure_port(address)
        await server.start()
        self._server = server
        not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
        await self._health.set("", not_serving)
        for name in SERVICES:
            await self._health.set(
                name, not_serving if name in _READY_FIRST else health_pb2.HealthCheckResponse.SERVING
            )
        log.info(
            "hub listening on %s:%d (%s; cache catching up)",
            s.host,
            self.port,
            "mutual TLS" if s.tls_dir else "INSECURE",
        )

    # -- background tasks ------------------------------------------------------------------------

    async def _serve_when_ready(self) -> None:
        assert self.cache is not None
        while not await asyncio.to_thread(self.cache.wait_ready, 0.5):
            if self.cache.feeder.error is not None:
                log.error("cache feeder failed; staying NOT_SERVING: %s", self.cache.feeder.error)
                return
        # Millions of index keys are long-lived: left to the collector, every full collection walks
        # them all (100s of ms at city scale, straight into the latency tail). Frozen, it skips them.
        await asyncio.to_thread(gc.collect)
        gc.freeze()
        self._cache_ready = True
        log.info("cache caught up")
        await self._set_serving(self.broker is None or self.broker.outage is None)

    async def _set_serving(self, reachable: bool) -> None:
        """Health follows the cache (caught up once) and Kafka (answering now)."""
        serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
        for name in SERVICES:
            ok = reachable and (self._cache_ready or name not in _READY_FIRST)
            await self._health.set(name, serving if ok else not_serving)
        await self._health.set("", serving if reachable and self._cache_ready else not_serving)
        log.info("health: %s", "SERVING" if reachable and self._cache_ready else "NOT_SERVING")

    async def _report_overdue(self, every_s: float = 60.0) -> None:
        """Overdue access requests are reported (logged once each) as well as listed by Governance.ListOverdue."""
        reported: set[str] = set()
        while True:
            assert self.governance is not None
            for r in self.governance.overdue():
                if r.id not in reported:
                    reported.add(r.id)
                    log.warning(
                        "access request %s from %s for %s is past its deadline; %s must decide",
                        r.id,
                        r.consumer,
                        r.resource,
                        self.catalogue.resource(r.resource).provider
                        if r.resource in self.catalogue
                        else "its provider",
                    )
            await asyncio.sleep(every_s)

    async def _raise_alerts(self) -> None:
        """Overdue notices become alerts, the risk points of supervision; any replica may write them."""
        s = self.settings
        every = max(0.2, min(s.notice_claim_limit_s, s.notice_feedback_limit_s, 120.0) / 4)
        while True:
            await asyncio.sleep(every)
            assert self.deps is not None
            for alert in overdue_alerts(self.deps.notices, int(time.time() * 1000)):
                log.warning("notice %s for %s: %s", alert.notice_id, alert.department, alert.kind)
                await self.deps.write_state(self.topics.notices, f"alert:{alert.id}", asdict(alert))

    async def _watch_crl(self, path: Path, every_s: float = 1.0) -> None:
        """Revocation takes effect without a restart: the CRL file is re-read when it changes."""
        seen = path.stat().st_mtime_ns if path.exists() else 0
        while True:
            await asyncio.sleep(every_s)
            if path.exists() and path.stat().st_mtime_ns != seen:
                seen = path.stat().st_mtime_ns
                assert self.identity is not None
                self.identity.load_crl(path.read_bytes())

    # -- stopping --------------------------------------------------------------------------------

    async def wait(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()

    async def stop(self, grace: float = 5.0) -> None:
        await self._health.enter_graceful_shutdown()
        for task in self._tasks:
            task.cancel()
        if self._server is not None:
            await self._server.stop(grace)
        if self.notice_engine is not None:
            await asyncio.to_thread(self.notice_engine.stop)
        if self.audit is not None:
            await asyncio.to_thread(self.audit.stop)
        if self.producer is not None:
            await asyncio.to_thread(self.producer.close)
        if self.cache is not None:
            await asyncio.to_thread(self.cache.stop)
        self.metrics.close()
        self.deps = None  # drops the admin client, which has no close() of its own
        # What _serve_when_ready froze (this hub's parts among it) becomes collectable again; else a
        # process that runs hub after hub, as tests do, keeps every stopped one with its Kafka clients.
        gc.unfreeze()
        log.info("hub stopped")
