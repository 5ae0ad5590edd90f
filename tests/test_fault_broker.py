"""The broker killed (SIGKILL) and restarted under a publish stream.

Durable mode (SeaweedFS keeps the log): every record the hub acknowledged is in Kafka and in the
cache afterwards, every answered call is audited, and the hub came back to SERVING by itself.
Memory mode: the log dies with the broker, so "nothing acknowledged is lost" cannot hold; what must
hold is that the hub never claims records Kafka no longer has (it rebuilds on the new, empty log)
and that it serves again by itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from hub.childproc import free_port
from hub.client import open_channel
from hub.datagen.city import resident_ids
from hub.governance.audit_verify import read_topic as read_audit
from hub.governance.audit_verify import verify_entries
from hub.governance.keys import audit_public_key
from hub.kafka.embedded import EmbeddedBroker
from tests.faults import RESOURCE, PublishStream, health, read_topic, refused_with_retry_advice, verify, wait_for
from tests.hubtest import running_hub


def test_durable_broker_killed_mid_stream_loses_nothing_acknowledged(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path / "broker", "durable")
    bootstrap = broker.start()
    prefix = "fault."
    ids = resident_ids(21, 3000)
    try:
        # configured for this broker as `hub serve` configures it for the broker it starts
        with running_hub(bootstrap, prefix, tmp_path / "hub", kafka_idempotence=broker.idempotent_producers) as hub:
            stream = PublishStream(hub.channel, ids)
            wait_for(lambda: len(stream.acknowledged) >= 500, "acknowledged records before the kill")
            before = len(stream.acknowledged)
            broker.kill()
            wait_for(lambda: health(hub.channel) == "NOT_SERVING", "NOT_SERVING while the broker is gone")
            refused_with_retry_advice(hub.channel, ids[0])
            broker.start()
            wait_for(lambda: health(hub.channel) == "SERVING", "SERVING once the broker is back")
            stream.join()
            acknowledged = stream.acknowledged
            assert before < len(acknowledged) == len(ids)

            keys = sorted(acknowledged)
            cache = hub.server.cache
            wait_for(lambda: (cache.version(RESOURCE).rows(keys) >= 0).all(), "every acknowledged record in the cache")
            answers, audit_topic = stream.answers, hub.server.topics.audit
        # after a clean stop the audit trail is flushed: every answered Publish has its entry
        in_kafka = read_topic(bootstrap, f"{prefix}{RESOURCE}")
        assert acknowledged <= in_kafka.keys(), f"{len(acknowledged - in_kafka.keys())} acknowledged records lost"
        # the audit trail is at least once: a batch whose answer the broker's kill lost is written again, the
        # same entries (chain, seq and hash), which the trail's verification recognises as a repeat
        entries = read_audit(bootstrap, audit_topic)
        report = verify_entries(entries, audit_public_key(tmp_path / "hub" / "dev-keys" / "audit.pub"))
        assert report.ok, report.problems[:5]
        audited = {(e["chain"], e["seq"]): e for e in entries if e.get("action") == "publish"}
        assert sum(e["outcome"] == "OK" for e in audited.values()) == answers
        print(
            f"durable broker kill: {len(acknowledged)} acknowledged ({before} before the kill), "
            f"{len(in_kafka)} in Kafka, {answers} answers, {len(audited)} publish audit entries "
            f"({sum(c.duplicates for c in report.chains.values())} repeated entries), "
            f"{len(stream.refusals)} refusals {sorted(set(stream.refusals))}"
        )
    finally:
        broker.stop()


def test_memory_broker_restarted_empty_is_not_served_from_the_old_cache(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path / "broker", "memory")
    bootstrap = broker.start()
    port = free_port()
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "hub.cli", "serve", "--insecure-dev", "--bootstrap-servers", bootstrap),
            *("--topic-prefix", "fault.", "--port", str(port), "--data-dir", str(tmp_path / "hub")),
            *("--metrics-port", str(free_port())),
        ],
        env={**os.environ, "HUB_NOTICE_ENGINE": "false", "HUB_LOG_LEVEL": "INFO"},
        stderr=(tmp_path / "hub.log").open("wb"),
    )
    channel = open_channel(f"127.0.0.1:{port}", department="public_security")
    ids = resident_ids(22, 600)
    try:
        wait_for(lambda: health(channel) == "SERVING", "the hub serving")
        first = PublishStream(channel, ids[:300])
        first.join()
        wait_for(lambda: verify(channel, ids[299]).found, "the first records in the cache")
        broker.kill()
        wait_for(lambda: health(channel) == "NOT_SERVING", "NOT_SERVING while the broker is gone")
        refused_with_retry_advice(channel, ids[0])
        broker.start()  # same address, empty log, new cluster id
        wait_for(lambda: health(channel) == "SERVING", "SERVING on the new log")
        # the 300 records died with the broker: the hub must not answer from them
        assert not verify(channel, ids[0]).found
        second = PublishStream(channel, ids[300:])
        second.join()
        wait_for(lambda: all(verify(channel, k).found for k in ids[300::50]), "the new records in the cache")
        # the old hub's consumer, still connected, may have auto-created the topic with the broker's default
        # count: every partition the broker lists is read
        topic = f"fault.{RESOURCE}"
        in_kafka = read_topic(bootstrap, topic)
        assert in_kafka.keys() == second.acknowledged == set(ids[300:])
        print(
            f"memory broker restart: {len(first.acknowledged)} acknowledged before (lost with the broker, "
            f"and no longer answered), {len(second.acknowledged)} after, {len(in_kafka)} in Kafka"
        )
    finally:
        channel.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        broker.stop()
