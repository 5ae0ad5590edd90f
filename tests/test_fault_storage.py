"""SeaweedFS, the durable broker's storage, killed (SIGKILL) under a publish stream and started again.
Whatever the hub acknowledged is in Kafka afterwards, read through a broker restarted from storage,
and in the cache; a Publish while storage is gone is refused as retriable or acknowledged, never lost."""

from __future__ import annotations

from pathlib import Path

import grpc

from hub.datagen.city import resident_ids
from hub.governance.audit_verify import read_topic as read_audit
from hub.governance.audit_verify import verify_entries
from hub.governance.keys import audit_public_key
from hub.kafka.embedded import EmbeddedBroker
from tests.faults import RESOURCE, PublishStream, read_topic, wait_for
from tests.hubtest import running_hub

OK = grpc.StatusCode.OK.value[0]


def test_object_store_killed_under_the_durable_broker(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path / "broker", "durable")
    bootstrap = broker.start()
    ids = resident_ids(91, 2000)
    try:
        with running_hub(bootstrap, "store.", tmp_path / "hub") as hub:
            stream = PublishStream(hub.channel, ids[:1000])
            wait_for(lambda: len(stream.acknowledged) >= 300, "acknowledged records before the kill")
            broker.kill_object_store()
            # records sent while storage is gone: acknowledged (then they must survive) or refused as retriable
            queued = hub.server.deps.producer.produced
            probe = PublishStream(hub.channel, ids[1000:1010], batch=10)
            wait_for(lambda: hub.server.deps.producer.produced > queued, "records queued while storage is gone")
            broker.start_object_store()
            stream.join()
            probe.join()
            during, refused = probe.acknowledged, probe.refusals
            tail = PublishStream(hub.channel, ids[1010:])
            tail.join()
            acknowledged = stream.acknowledged | during | tail.acknowledged
            keys = sorted(acknowledged)
            wait_for(lambda: (hub.server.cache.version(RESOURCE).rows(keys) >= 0).all(), "acknowledged in the cache")
        broker.kill()  # what Kafka holds now comes from storage alone
        broker.start()
        in_kafka = read_topic(bootstrap, f"store.{RESOURCE}")
        # The audit writer's producer was fenced by the outage too; it is replaced and what failed is
        # sent again, so the trail has no gap (the hub stopped cleanly: a closing checkpoint ends it).
        entries = read_audit(bootstrap, "store._audit")
        report = verify_entries(entries, audit_public_key(tmp_path / "hub" / "dev-keys" / "audit.pub"))
        assert report.ok, report.problems[:5]
        published = [e for e in entries if e.get("action") == "publish" and e.get("outcome") == "OK"]
        assert len(published) >= 2, "publishes before and after the outage are audited"
        lost = acknowledged - in_kafka.keys()
        print(
            f"object store kill: {len(acknowledged)} acknowledged ({len(during)} while it was down, "
            f"{len(refused)} calls refused then: {refused[:1]}), {len(in_kafka)} in Kafka after a broker restart, "
            f"{len(lost)} lost"
        )
        assert not lost
    finally:
        broker.stop()
