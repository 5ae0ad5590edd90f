"""What the servicers share: the replica's stores, the policy, the producer, and how to write state."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import orjson
from confluent_kafka.admin import AdminClient

from hub.cache.replica import ReplicaCache
from hub.errors import Unavailable
from hub.flows.stores import CorrectionStore, NoticeStore, SubscriptionStore
from hub.governance.audit import AuditLog
from hub.governance.audit_reader import AuditReader
from hub.governance.catalogue import CatalogueStore
from hub.governance.policy import AccessPolicy
from hub.governance.receipts import ReceiptSigner
from hub.governance.state import GovernanceState
from hub.kafka.producer import AckingProducer
from hub.kafka.tail import ONE_FETCH, TailReader
from hub.records import codec
from hub.server.catch_up import CatchUp, ReadPlan
from hub.server.shards import ShardRouter
from hub.settings import HubSettings

CATCH_UP_READERS = 2  # rounds of a topic's catch-up that may read at once (hub.server.catch_up)


@dataclass(frozen=True)
class Topics:
    prefix: str

    @property
    def catalogue(self) -> str:
        return f"{self.prefix}_catalogue"

    @property
    def governance(self) -> str:
        return f"{self.prefix}_governance"

    @property
    def audit(self) -> str:
        return f"{self.prefix}_audit"

    @property
    def subscriptions(self) -> str:
        return f"{self.prefix}_subscriptions"

    @property
    def notices(self) -> str:
        return f"{self.prefix}_notices"

    @property
    def corrections(self) -> str:
        return f"{self.prefix}_corrections"

    @property
    def cases(self) -> str:
        return f"{self.prefix}_cases"

    @property
    def steps(self) -> str:
        return f"{self.prefix}_steps"

    @property
    def supervision(self) -> str:
        return f"{self.prefix}_supervision"

    @property
    def shards(self) -> str:
        return f"{self.prefix}_shards"

    def resource(self, name: str) -> str:
        return codec.topic_for(self.prefix, name)


@dataclass(kw_only=True)  # fourteen parts: named at the one place that builds them (HubServer.start)
class Deps:
    settings: HubSettings
    topics: Topics
    catalogue: CatalogueStore
    governance: GovernanceState
    policy: AccessPolicy
    cache: ReplicaCache
    producer: AckingProducer
    admin: AdminClient
    audit_index: AuditReader
    subscriptions: SubscriptionStore
    notices: NoticeStore
    corrections: CorrectionStore
    shards: ShardRouter
    audit: AuditLog | None = None
    receipts: ReceiptSigner | None = None
    read_plans: dict[str, ReadPlan] = field(default_factory=dict)  # topics whose catch-ups name some partitions
    _locks: weakref.WeakValueDictionary[str, asyncio.Lock] = field(default_factory=weakref.WeakValueDictionary)
    _catch_ups: dict[str, CatchUp] = field(default_factory=dict)

    async def caught_up(self, topic: str) -> None:
        """Waits until this replica has applied what ``topic`` held when the call began (see CatchUp);
        ``topic`` is one the cache shares."""
        await self.catching_up(topic)

    def catching_up(self, topic: str) -> asyncio.Future[None]:
        """:meth:`caught_up` started now, awaited later: the caller works while Kafka is read."""
        catch_up = self._catch_ups.get(topic)
        if catch_up is None:
            config = {**ONE_FETCH, **(self.cache.consumer_extra or {})}
            readers = [TailReader(self.cache.bootstrap, topic, config) for _ in range(CATCH_UP_READERS)]
            catch_up = self._catch_ups[topic] = CatchUp(readers, self.cache, self.read_plans.get(topic))
        return catch_up.begin()

    def catch_up_rounds(self) -> dict[str, tuple[int, int]]:
        """Per topic read by catch-ups so far: rounds finished, and the partitions they named in all."""
        return {topic: (c.rounds, c.partitions_named) for topic, c in list(self._catch_ups.items())}

    async def close_readers(self) -> None:
        for catch_up in self._catch_ups.values():
            await catch_up.close()

    @asynccontextmanager
    async def exclusive(self, key: str) -> AsyncIterator[None]:
        """Serialises read-check-write of one state key on this replica (two clicks on Claim get one
        OK and one FAILED_PRECONDITION). Replicas do not coordinate: across them the later write wins."""
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            yield

    async def write_state(self, topic: str, key: str, value: dict | None, timeout: float = 30.0) -> None:
        """Writes one state change and waits until this replica has applied it (read your writes)."""
        await self.write_states(topic, [(key, value)], timeout)

    async def write_states(self, topic: str, changes: Sequence[tuple[str, dict | None]], timeout: float = 30.0) -> None:
        """:meth:`write_state` of several changes, in order: one produce and one wait for the feeder, which
        on tansu may take up to its fetch wait (hub.cache.feeder), however many changes there are."""
        if not changes:
            return
        deliveries = await self.producer.send(
            topic,
            [(key.encode(), None if value is None else orjson.dumps(value)) for key, value in changes],
            [("trace_id", str(time.time_ns()).encode())],
        )
        for (key, _), delivery in zip(changes, deliveries, strict=True):
            if delivery.error is not None:
                raise Unavailable(f"could not write {key} to {topic}: {delivery.error.str()}")
        await self.cache.reached(topic, [(d.partition, d.offset) for d in deliveries], timeout)
