"""The hub↔broker connection stalled, then cut, by a loopback TCP proxy the broker advertises (so every
connection of the hub goes through it), under a publish stream. While it is out the hub reports
NOT_SERVING and refuses with UNAVAILABLE and a retry-after; it serves again by itself; every record it
acknowledged is in Kafka and in the cache, and every answered Publish is audited."""

from __future__ import annotations

from pathlib import Path

from hub.childproc import free_port
from hub.datagen.city import resident_ids
from hub.governance.audit_verify import read_topic as read_audit
from hub.kafka.embedded import EmbeddedBroker
from tests.faults import RESOURCE, PublishStream, TcpProxy, health, read_topic, refused_with_retry_advice, wait_for
from tests.hubtest import running_hub


def test_a_stalled_then_cut_broker_connection_loses_nothing_acknowledged(tmp_path: Path) -> None:
    listen = free_port()
    broker = EmbeddedBroker(tmp_path / "broker", "memory", advertised_port=listen)
    proxy = TcpProxy("127.0.0.1", broker.port, listen)
    broker.start()
    through = f"127.0.0.1:{listen}"
    ids = resident_ids(101, 3000)
    try:
        with running_hub(through, "net.", tmp_path / "hub") as hub:
            stream = PublishStream(hub.channel, ids)
            outages = []
            for fault, count in ((proxy.stall, 500), (proxy.cut, 1500)):
                wait_for(lambda n=count: len(stream.acknowledged) >= n, f"{count} acknowledged records")
                fault()
                wait_for(lambda: health(hub.channel) == "NOT_SERVING", f"NOT_SERVING after {fault.__name__}")
                refused_with_retry_advice(hub.channel, ids[0])
                outages.append(len(stream.acknowledged))
                proxy.heal()
                wait_for(lambda: health(hub.channel) == "SERVING", f"SERVING after {fault.__name__} healed")
            stream.join()
            keys = sorted(stream.acknowledged)
            wait_for(lambda: (hub.server.cache.version(RESOURCE).rows(keys) >= 0).all(), "acknowledged in the cache")
            audit_topic = hub.server.topics.audit
        in_kafka = read_topic(broker.bootstrap, f"net.{RESOURCE}")
        assert stream.acknowledged == set(ids) <= in_kafka.keys()
        audited = [e for e in read_audit(broker.bootstrap, audit_topic) if e.get("action") == "publish"]
        assert sum(e["outcome"] == "OK" for e in audited) == stream.answers
        print(
            f"proxy stall and cut: {len(stream.acknowledged)} acknowledged (at the faults: {outages}), "
            f"{len(in_kafka)} in Kafka, {stream.answers} answers, {len(audited)} publish audit entries, "
            f"{len(stream.refusals)} refused calls retried"
        )
    finally:
        broker.stop()
        proxy.close()
