"""One hub process: topics, catalogue, governance, cache, audit, gRPC server, health and reflection.

Start-up: create the hub's own topics; read the managed catalogue to its end and seed what the
built-in catalogue adds; create the resource topics; start the feeder (resources, catalogue,
grants, the flows' state) and the server (the audit index is read when asked: hub.governance.audit_reader).
gRPC health says NOT_SERVING for Verification and Lookup until every topic has caught up. Stop: health
NOT_SERVING, in-flight calls finish within the grace period, the audit trail is flushed with a closing
checkpoint, the producer is flushed, the feeder stops (and snapshots).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import orjson
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from hub.cache.replica import ReplicaCache, SnapshotPolicy
from hub.cache.shards import ShardRegistry, announcement
from hub.catalogue.model import Catalogue
from hub.errors import HubError
from hub.flows.alert_loop import alert_interval, raise_alerts
from hub.flows.case_events import CaseEvents
from hub.flows.cases import CaseResolver, load_case_types
from hub.flows.notices import NoticeEngine, load_rules
from hub.flows.stores import CaseLedger, CorrectionStore, NoticeStore, SubscriptionStore
from hub.governance import keys
from hub.governance.audit import AuditLog
from hub.governance.audit_reader import AuditReader
from hub.governance.catalogue import CatalogueStore
from hub.governance.crl import watch_crl
from hub.governance.identity import IdentityResolver
from hub.governance.overdue import OverdueReporter
from hub.governance.policy import AccessPolicy
from hub.governance.receipt_keys import ReceiptKeyring
from hub.governance.receipts import ReceiptSigner
from hub.governance.state import GovernanceState
from hub.inspections.store import InspectionStore
from hub.kafka.clients import admin_config, producer_config
from hub.kafka.directory import AnnouncedPartition
from hub.kafka.keyed_state import read_to_end
from hub.kafka.producer import AckingProducer
from hub.kafka.topics import TopicSpec, ensure_topics, topic_identities
from hub.public.inspections import InspectionFeed
from hub.public.jwks import JWKS_PATH, jwks_handler
from hub.public.publicity import hub_pages
from hub.public.site import PublicSite
from hub.records.shards import WHOLE, ShardAssignment
from hub.server.audit import AuditService
from hub.server.broker_watch import BrokerWatch
from hub.server.case_records import CaseRecords
from hub.server.cases import CasesService
from hub.server.catalog import CatalogService
from hub.server.corrections import CorrectionsService
from hub.server.deps import Deps, Topics
from hub.server.exchange import ExchangeService
from hub.server.governance import GovernanceService
from hub.server.inspections import InspectionsService, inspections_topic
from hub.server.interceptors import CallInterceptor
from hub.server.lookup import LookupService
from hub.server.metrics import HubMetrics, HubParts
from hub.server.notices import NoticesService
from hub.server.receipts import ReceiptsService
from hub.server.shards import ShardRouter
from hub.server.subscription import SubscriptionService
from hub.server.supervision import SupervisionService
from hub.server.verification import VerificationService
from hub.settings import HubSettings, SettingsError, require_transport
from hub.supervision.platform import STEP_PARTITIONS, SupervisionPlatform
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
    inspections_pb2,
    inspections_pb2_grpc,
    lookup_pb2,
    lookup_pb2_grpc,
    notices_pb2,
    notices_pb2_grpc,
    receipts_pb2,
    receipts_pb2_grpc,
    subscription_pb2,
    subscription_pb2_grpc,
    supervision_pb2,
    supervision_pb2_grpc,
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
    "hub.v1.Receipts": receipts_pb2,
    "hub.v1.Inspections": inspections_pb2,
    "hub.v1.Supervision": supervision_pb2,
}
# Not served before the cache is ready: they read resource data.
_READY_FIRST = {
    "hub.v1.Verification",
    "hub.v1.Lookup",
    "hub.v1.Subscription",
    "hub.v1.Cases",
    "hub.v1.Inspections",
    "hub.v1.Supervision",
}
MAX_MESSAGE = 64 << 20
# The directory and 255 for case events. On tansu a read behind a partition's end lists every batch the
# partition holds, so more partitions keep that list short; a round names only those being written.
CASE_PARTITIONS = 256
INSECURE_BANNER = """
************************************************************************************
*  INSECURE DEVELOPMENT MODE: no TLS, and any caller can claim any department by    *
*  setting the x-hub-department header. Never run a hub like this with real data.   *
*  For production: hub certs init, then hub serve --tls-dir PKI_DIR.                *
************************************************************************************"""


@dataclass(frozen=True)
class _StateStores:
    """The replicated state besides resources and the catalogue: the feeder keeps all of it but the
    audit index, which is read from its topic when asked."""

    governance: GovernanceState
    audit_index: AuditReader
    cases: CaseLedger
    subscriptions: SubscriptionStore = field(default_factory=SubscriptionStore)
    notices: NoticeStore = field(default_factory=NoticeStore)
    corrections: CorrectionStore = field(default_factory=CorrectionStore)
    inspections: InspectionStore = field(default_factory=InspectionStore)
    shards: ShardRegistry = field(default_factory=ShardRegistry)


def _listen(server: aio.Server, address: str, credentials: grpc.ServerCredentials | None) -> int:
    try:  # grpc reports a port in use as a RuntimeError; it is an environment problem, not a bug
        if credentials is not None:
            return server.add_secure_port(address, credentials)
        return server.add_insecure_port(address)
    except RuntimeError as exc:
        raise OSError(f"cannot listen on {address}: {exc}") from exc


class HubServer:
    def __init__(
        self,
        settings: HubSettings,
        bootstrap: str,
        seed: Catalogue,
        extra_handlers: list[grpc.GenericRpcHandler] | None = None,
        interceptors: list[aio.ServerInterceptor] | None = None,
    ) -> None:
        require_transport(settings)
        try:
            self.shard = ShardAssignment.parse(settings.shard) if settings.shard else WHOLE
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        self.settings = settings
        self.bootstrap = bootstrap
        self.seed = seed
        self.topics = Topics(settings.topic_prefix)
        self.port = 0
        self._extra_handlers = extra_handlers or []
        self._interceptors = interceptors or []  # run before the hub's own (tests inject faults here)
        # An external cluster gets the security settings; the embedded broker needs none.
        self._kafka_extra = settings.kafka_extra() if settings.bootstrap_servers else {}
        self.catalogue = CatalogueStore()
        self.identity: IdentityResolver | None = None
        self.governance: GovernanceState | None = None
        self.cache: ReplicaCache | None = None
        self.producer: AckingProducer | None = None
        self.audit: AuditLog | None = None
        self.deps: Deps | None = None
        self.notice_engine: NoticeEngine | None = None
        self.resolver: CaseResolver | None = None
        self.case_ledger: CaseLedger | None = None
        self._case_events: CaseEvents | None = None
        self._case_producer: AckingProducer | None = None
        self._case_writer: AnnouncedPartition | None = None
        self.metrics = HubMetrics(
            lambda: HubParts(
                cache=self.cache,
                producers=(self.producer, self._case_producer),
                audit=self.audit,
                notices=self.deps.notices if self.deps else None,
                governance=self.governance,
                audit_index=self.deps.audit_index.index if self.deps else None,
                case_ledger=self.case_ledger,
                catch_ups=self.deps.catch_up_rounds() if self.deps else None,
            )
        )
        self.supervision = SupervisionPlatform.build(settings, on_alert=self.metrics.observe_alert)
        self._server: aio.Server | None = None
        self._health = HealthServicer()
        self._cache_ready = False
        self.broker: BrokerWatch | None = None
        self._tasks: list[asyncio.Task] = []
        self._renewal: asyncio.Task | None = None  # a sharded replica's lease in the shard map
        self.inspections: InspectionsService | None = None
        self.public_site: PublicSite | None = None

    # -- start-up --------------------------------------------------------------------------------

    async def start(self) -> int:
        """Each step needs only what the steps before it built; the port is returned once listening."""
        admin = AdminClient({**admin_config(self.bootstrap), **self._kafka_extra})
        internal = await asyncio.to_thread(self._create_topics, admin)
        await asyncio.to_thread(self._load_catalogue)
        partitions, identities = await asyncio.to_thread(self._create_resource_topics, admin)
        self.identity = self._build_identity()
        self.governance = GovernanceState(on_crl=self.identity.load_crl)
        audit_index = AuditReader(self.bootstrap, self.topics.audit, internal[self.topics.audit], self._kafka_extra)
        self.case_ledger = CaseLedger(internal[self.topics.cases])
        self._case_events = CaseEvents(self.bootstrap, self.topics.cases, self._kafka_extra)
        stores = _StateStores(governance=self.governance, audit_index=audit_index, cases=self.case_ledger)
        self.cache = self._build_cache(admin=admin, partitions=partitions, identities=identities, stores=stores)
        self.producer = AckingProducer(self._producer_config())
        subject_key = self._subject_key()
        self.audit = self._build_audit(subject_key=subject_key)
        policy = AccessPolicy(self.catalogue, self.governance)
        self.deps = Deps(
            settings=self.settings,
            topics=self.topics,
            catalogue=self.catalogue,
            governance=self.governance,
            policy=policy,
            cache=self.cache,
            producer=self.producer,
            admin=admin,
            audit_index=stores.audit_index,
            subscriptions=stores.subscriptions,
            notices=stores.notices,
            corrections=stores.corrections,
            audit=self.audit,
            receipts=self._build_receipt_signer(),
            shards=ShardRouter(self.shard, stores.shards, self.settings.tls_dir, self.settings.shard_lease_s),
            read_plans={self.topics.cases: self.case_ledger},  # its directory names the partitions to read
        )
        self.notice_engine = self._build_notice_engine(notices=stores.notices)
        self.resolver = CaseResolver(load_case_types(), self.catalogue, self.cache, policy, stores.corrections)
        self.broker = BrokerWatch(admin, self.bootstrap)
        await self._start_server(subject_key=subject_key, stores=stores)
        self._start_loops()
        await self._start_public_site(stores.inspections)
        return self.port

    def _producer_config(self) -> dict:
        return producer_config(self.bootstrap, self._kafka_extra, idempotent=self.settings.kafka_idempotence)

    def _create_topics(self, admin: AdminClient) -> dict[str, int]:
        """The hub's own topics; returns their partition counts."""
        t = self.topics
        return ensure_topics(
            admin,
            [
                TopicSpec(t.catalogue, 1),
                TopicSpec(t.governance, 1),
                TopicSpec(t.audit, 3, compacted=False),
                TopicSpec(t.subscriptions, 1),
                TopicSpec(t.notices, 1),
                TopicSpec(t.corrections, 1),
                # A call's events are one batch in one partition, and tansu lists a partition's batches
                # on every fetch that finds new ones: many partitions keep those lists short, and the
                # directory in partition 0 (hub.kafka.directory) keeps reads from naming them all.
                TopicSpec(t.cases, CASE_PARTITIONS, compacted=False),
                TopicSpec(inspections_topic(t.prefix), 1),
                TopicSpec(t.steps, STEP_PARTITIONS, compacted=False),
                TopicSpec(t.supervision, 1),
                TopicSpec(t.shards, 1),
            ],
        )

    def _load_catalogue(self) -> None:
        """The managed catalogue to its end, seeded with the built-in entries it lacks."""
        kafka_extra = self._kafka_extra
        read_to_end(self.bootstrap, self.topics.catalogue, self.catalogue, kafka_extra)
        missing = self.catalogue.missing_from(self.seed)
        if missing:
            producer = Producer(self._producer_config())
            for key, value in missing:
                producer.produce(self.topics.catalogue, orjson.dumps(value), key.encode())
            unacknowledged = producer.flush(30)
            producer.close()
            if unacknowledged:
                raise RuntimeError("could not seed the catalogue topic")
            log.info("seeded the catalogue with %d built-in entries", len(missing))
            read_to_end(self.bootstrap, self.topics.catalogue, self.catalogue, kafka_extra)

    def _create_resource_topics(self, admin: AdminClient) -> tuple[dict[str, int], dict[str, str]]:
        """A topic per catalogued resource: partition counts, and identities (so snapshots of another
        cluster's topics are recognised)."""
        partitions = ensure_topics(
            admin, [TopicSpec(self.topics.resource(r.name), r.partitions) for r in self.catalogue.resources]
        )
        return partitions, topic_identities(admin, partitions)

    def _build_identity(self) -> IdentityResolver:
        tls_dir = self.settings.tls_dir
        ca_pem = (tls_dir / "ca.crt").read_bytes() if tls_dir else None
        identity = IdentityResolver("mtls" if tls_dir else "insecure", self.catalogue.is_registered, ca_pem)
        if tls_dir and (tls_dir / "crl.pem").exists():
            identity.load_crl((tls_dir / "crl.pem").read_bytes())
        return identity

    def _build_cache(
        self, *, admin: AdminClient, partitions: dict[str, int], identities: dict[str, str], stores: _StateStores
    ) -> ReplicaCache:
        """The replica cache, fed from the resource topics and the hub's own state topics; started."""
        s, t = self.settings, self.topics
        snapshots = None
        if s.snapshot_interval_s > 0:
            directory = s.data_dir / "snapshots" / s.topic_prefix.rstrip(".")
            if self.shard != WHOLE:  # replicas of another layout (during a reshard) keep their own
                directory /= f"shard-{self.shard.index}-of-{self.shard.count}"
            snapshots = SnapshotPolicy(directory, s.snapshot_interval_s, write=s.snapshot_writer)
        cache = ReplicaCache(
            self.catalogue.resources,
            self.bootstrap,
            s.topic_prefix,
            partitions,
            consumer_extra=self._kafka_extra,
            identities=identities,
            snapshots=snapshots,
            feeds=[t.notices, t.corrections],
            ring_capacity=s.change_ring_capacity,
            shard=self.shard,
            # Read to their end by calls too (Deps.caught_up); the case ledger only by them once ready.
            shared=[t.steps],
            on_demand=[t.cases],
            internal={
                t.catalogue: self.catalogue,
                t.governance: stores.governance,
                t.subscriptions: stores.subscriptions,
                t.notices: stores.notices,
                t.corrections: stores.corrections,
                t.cases: stores.cases,
                inspections_topic(t.prefix): stores.inspections,
                t.steps: self.supervision.book,
                t.supervision: self.supervision.answers,
                t.shards: stores.shards,
            },
        )
        self.catalogue.subscribe(lambda changed: self._on_catalogue_change(admin, changed))
        cache.start(asyncio.get_running_loop())
        return cache

    def _build_receipt_signer(self) -> ReceiptSigner:
        """Signs verification receipts with the keyring in the hub's key directory (a first key if none)."""
        keyring = ReceiptKeyring(self._key_dir())
        keyring.ensure()
        return ReceiptSigner(keyring, self.settings.receipt_issuer)

    def _key_dir(self) -> Path:
        return self.settings.tls_dir or (self.settings.data_dir / "dev-keys")

    def _subject_key(self) -> bytes:
        """The HMAC key of subject digests: from the settings, else from the key directory."""
        configured = self.settings.audit_subject_key
        return configured.get_secret_value().encode() if configured else keys.subject_key(self._key_dir())

    def _build_audit(self, *, subject_key: bytes) -> AuditLog | None:
        s = self.settings
        if not s.audit:
            return None
        audit = AuditLog(
            self._producer_config(),
            self.topics.audit,
            keys.audit_signing_key(self._key_dir()),
            subject_key,
            checkpoint_every=s.audit_checkpoint_every,
            checkpoint_interval_s=s.audit_checkpoint_interval_s,
        )
        audit.start()
        return audit

    def _build_notice_engine(self, *, notices: NoticeStore) -> NoticeEngine | None:
        s = self.settings
        if not s.notice_engine:
            return None
        engine = NoticeEngine(
            self.bootstrap,
            self.topics.resource("market.entity"),
            self.topics.notices,
            f"{s.topic_prefix}notice-engine",
            notices,
            load_rules(),
            self._producer_config(),
            s.notice_claim_limit_s,
            self._kafka_extra,
            since_ms=None if s.notices_since is None else int(s.notices_since.timestamp() * 1000),
        )
        engine.start()
        return engine

    def _start_loops(self) -> None:
        """Background work, cancelled by stop(): health once the cache caught up, overdue requests,
        notice alerts, and with TLS the CRL file."""
        s, deps = self.settings, self.deps
        assert deps is not None and self.governance is not None and self.identity is not None

        async def write_alerts(alerts: list[tuple[str, dict]]) -> None:
            await deps.write_states(self.topics.notices, alerts)

        every = alert_interval(s.notice_claim_limit_s, s.notice_feedback_limit_s)
        assert self.broker is not None
        loops = [
            self._serve_when_ready(),
            self.broker.run(self._set_serving),
            OverdueReporter(self.governance, self.catalogue).run(),
            raise_alerts(deps.notices, write_alerts, every_s=every),
        ]
        if self.inspections is not None:
            loops.append(self.inspections.raise_alerts())
        loops.append(self.supervision.sweep_forever())
        if s.tls_dir:
            loops.append(watch_crl(s.tls_dir / "crl.pem", self.identity.load_crl))
        self._tasks = [asyncio.create_task(loop) for loop in loops]

    async def _start_public_site(self, inspections: InspectionStore) -> None:
        """The public site (no credentials), when a port is set: the inspection results feed, enforcement
        publicity and the receipt keys' JWKS."""
        port = self.settings.public_port
        if port is None:
            return
        assert self.deps is not None and self.deps.receipts is not None
        site = PublicSite(self.settings.host, port)
        InspectionFeed(inspections, {d.code: d.name for d in self.catalogue.departments}).mount(site)
        site.add_get(JWKS_PATH, jwks_handler(self.deps.receipts.jwks))
        for path, handler in hub_pages(self.deps.cache, self.catalogue, self.supervision).routes():
            site.add_get(path, handler)
        await site.start()
        self.public_site = site

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

    async def _start_server(self, *, subject_key: bytes, stores: _StateStores) -> None:
        s = self.settings
        assert self.deps is not None and self.resolver is not None and self.broker is not None
        if s.metrics_port is not None:
            self.metrics.serve(s.metrics_port, s.metrics_host)
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
        assert self._case_events is not None
        case_records = CaseRecords(deps, stores.cases, self._case_events)
        # Case events have a producer of their own, never idempotent: tansu keeps each idempotent producer's
        # sequence per partition written in one metadata object that it rewrites on every idempotent produce,
        # so a writer moving over the cases topic's partitions would make every produce of the hub dearer.
        # A resent batch may then be written twice; the ledger takes a number's first event, and each copy
        # holds the same result. One request in flight keeps a partition in order through retries. The
        # announcements, all in one partition, go through the main producer: idempotent (where the broker
        # allows it), so a resent one never lands after a newer one.
        self._case_producer = AckingProducer(producer_config(self.bootstrap, self._kafka_extra, idempotent=False))
        self._case_writer = AnnouncedPartition(
            self._case_producer, self.topics.cases, stores.cases.partitions, announcer=deps.producer
        )
        exchange_pb2_grpc.add_ExchangeServicer_to_server(ExchangeService(deps), server)
        verification_pb2_grpc.add_VerificationServicer_to_server(VerificationService(deps), server)
        lookup_pb2_grpc.add_LookupServicer_to_server(LookupService(deps), server)
        catalog_pb2_grpc.add_CatalogServicer_to_server(CatalogService(deps), server)
        governance_pb2_grpc.add_GovernanceServicer_to_server(GovernanceService(deps), server)
        audit_pb2_grpc.add_AuditServicer_to_server(AuditService(deps, subject_key), server)
        subscription_pb2_grpc.add_SubscriptionServicer_to_server(SubscriptionService(deps), server)
        notices_pb2_grpc.add_NoticesServicer_to_server(NoticesService(deps, s.notice_feedback_limit_s), server)
        cases_pb2_grpc.add_CasesServicer_to_server(
            CasesService(deps, self.resolver, case_records, self._case_writer), server
        )
        corrections_pb2_grpc.add_CorrectionsServicer_to_server(
            CorrectionsService(deps, s.correction_working_days), server
        )
        receipts_pb2_grpc.add_ReceiptsServicer_to_server(ReceiptsService(deps, case_records), server)
        supervision_pb2_grpc.add_SupervisionServicer_to_server(SupervisionService(deps, self.supervision), server)
        self.inspections = InspectionsService(deps, stores.inspections, self._key_dir())
        inspections_pb2_grpc.add_InspectionsServicer_to_server(self.inspections, server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        server.add_generic_rpc_handlers(self._extra_handlers)
        names = [pb.DESCRIPTOR.services_by_name[n.rsplit(".", 1)[1]].full_name for n, pb in SERVICES.items()]
        reflection.enable_server_reflection(
            [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME], server
        )
        address = f"{s.host}:{s.port}"
        credentials = None
        if s.tls_dir:
            credentials = grpc.ssl_server_credentials(
                [((s.tls_dir / "server.key").read_bytes(), (s.tls_dir / "server.crt").read_bytes())],
                root_certificates=(s.tls_dir / "ca.crt").read_bytes(),
                require_client_auth=True,
            )
        self.port = _listen(server, address, credentials)
        if s.worker_port:  # this worker's own, for clients that spread calls over the workers
            _listen(server, f"{s.host}:{s.worker_port}", credentials)
        if not s.tls_dir:
            print(INSECURE_BANNER, file=sys.stderr, flush=True)
            log.warning("INSECURE DEVELOPMENT MODE: no TLS; departments are taken from a header")
        await server.start()
        self._server = server
        deps.shards.address = self.advertised
        not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
        await self._health.set("", not_serving)
        for name in SERVICES:
            await self._health.set(
                name, not_serving if name in _READY_FIRST else health_pb2.HealthCheckResponse.SERVING
            )
        log.info(
            "hub listening on %s:%d%s (%s; cache catching up)",
            s.host,
            self.port,
            f" and on its own port {s.worker_port}" if s.worker_port else "",
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
        if self.shard != WHOLE:
            await self._announce()
            log.info("announced %s as shard %s", self.advertised, self.shard)
            self._renewal = asyncio.create_task(self._renew_announcement())

    async def _announce(self) -> None:
        assert self.deps is not None
        await self.deps.write_state(self.topics.shards, self.advertised, announcement(self.shard))

    async def _renew_announcement(self) -> None:
        """Keeps this replica in the shard map: an announcement older than the lease is a replica gone."""
        while True:
            await asyncio.sleep(self.settings.shard_lease_s / 3)
            try:
                await self._announce()
            except (HubError, TimeoutError) as exc:  # Kafka out: the next renewal tries again
                log.warning("could not renew %s in the shard map: %s", self.advertised, exc)

    async def _set_serving(self, reachable: bool) -> None:
        """Health follows the cache (caught up once) and Kafka (answering now)."""
        serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
        for name in SERVICES:
            ok = reachable and (self._cache_ready or name not in _READY_FIRST)
            await self._health.set(name, serving if ok else not_serving)
        await self._health.set("", serving if reachable and self._cache_ready else not_serving)
        log.info("health: %s", "SERVING" if reachable and self._cache_ready else "NOT_SERVING")

    @property
    def advertised(self) -> str:
        """Where other replicas and routing clients reach this one."""
        return self.settings.advertise_address or f"{self.settings.host}:{self.port}"

    # -- stopping --------------------------------------------------------------------------------

    async def wait(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()

    async def stop(self, grace: float = 5.0, *, log_lost: bool = False) -> None:
        """Stops serving and releases everything; with ``log_lost`` (the broker is a new cluster) what
        waits for Kafka fails at once rather than after the delivery timeout."""
        await self._health.enter_graceful_shutdown()
        if log_lost:
            for part in (self.audit, self.producer, self._case_producer, self.notice_engine):
                if part is not None:
                    part.abandon()
        if self._renewal is not None:  # stopped first: a renewal after the tombstone would relist this replica
            self._renewal.cancel()
        if self.shard != WHOLE and self.deps is not None and self.advertised in self.deps.shards.registry.values:
            try:  # a replica that stops cleanly leaves the shard map at once
                await self.deps.write_state(self.topics.shards, self.advertised, None, timeout=5)
            except (HubError, TimeoutError) as exc:
                log.warning("could not withdraw %s from the shard map: %s", self.advertised, exc)
        if self.public_site is not None:
            await self.public_site.stop()
        for task in self._tasks:
            task.cancel()
        if self._server is not None:
            await self._server.stop(grace)
        if self._case_writer is not None and not log_lost:
            try:  # other replicas' catch-ups stop reading where it wrote
                await asyncio.wait_for(self._case_writer.retire(), 10)
            except (HubError, TimeoutError) as exc:
                log.warning("could not announce that this process writes no more case events: %s", exc)
        if self.notice_engine is not None:
            await asyncio.to_thread(self.notice_engine.stop)
        if self.audit is not None:
            await asyncio.to_thread(self.audit.stop)
        for producer in (self.producer, self._case_producer):
            if producer is not None:
                await asyncio.to_thread(producer.close)
        if self.cache is not None:
            await asyncio.to_thread(self.cache.stop)
        if self._case_events is not None:
            await asyncio.to_thread(self._case_events.close)
        if self.deps is not None:
            await self.deps.close_readers()
            await asyncio.to_thread(self.deps.audit_index.close)
            await self.deps.shards.close()
        self.metrics.close()
        self.deps = None  # drops the admin client, which has no close() of its own
        # What _serve_when_ready froze (this hub's parts among it) becomes collectable again; else a
        # process that runs hub after hub, as tests do, keeps every stopped one with its Kafka clients.
        gc.unfreeze()
        log.info("hub stopped")
