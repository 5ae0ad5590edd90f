"""The embedded broker: readiness, clean stop, and durable mode surviving kill -9."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from hub.datagen.city import resident_ids
from hub.kafka.clients import admin_config, consumer_config, producer_config
from hub.kafka.embedded import EmbeddedBroker
from hub.kafka.topics import TopicSpec, ensure_topics
from tests.hubtest import RunningHub, resident
from tests.readme import blocks

pytestmark = pytest.mark.skipif(bool(os.environ.get("HUB_BOOTSTRAP_SERVERS")), reason="tests the embedded broker only")


def _produce(bootstrap: str, topic: str, n: int) -> dict[bytes, tuple[int, int]]:
    acked: dict[bytes, tuple[int, int]] = {}
    producer = Producer(producer_config(bootstrap))
    for i in range(n):
        producer.produce(
            topic,
            b"v%d" % i,
            b"k%d" % i,
            on_delivery=lambda err, m: err is None and acked.__setitem__(m.value(), (m.partition(), m.offset())),
        )
        producer.poll(0)
    assert producer.flush(60) == 0
    producer.close()
    return acked


def _consume_all(bootstrap: str, topic: str, partitions: int) -> dict[bytes, tuple[int, int]]:
    consumer = Consumer(consumer_config(bootstrap, "reader", {"enable.partition.eof": True}))
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got, at_end = {}, set()
    while len(at_end) < partitions:
        for m in consumer.consume(1000, 1.0):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(m.partition())
                continue
            got[m.value()] = (m.partition(), m.offset())
    consumer.close()
    return got


def test_memory_broker_starts_and_stops(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path, "memory")
    bootstrap = broker.start()
    pid = broker.pid
    counts = ensure_topics(AdminClient(admin_config(bootstrap)), [TopicSpec("a", 4), TopicSpec("b", 2)])
    assert counts == {"a": 4, "b": 2}
    assert ensure_topics(AdminClient(admin_config(bootstrap)), [TopicSpec("a", 8)]) == {"a": 4}  # never grown
    assert len(_produce(bootstrap, "a", 500)) == 500
    broker.stop()
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


@pytest.mark.slow
def test_durable_broker_keeps_acknowledged_records_across_kill9(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path, "durable")
    try:
        bootstrap = broker.start(timeout=90)
        ensure_topics(AdminClient(admin_config(bootstrap)), [TopicSpec("durable", 3)])
        acked = _produce(bootstrap, "durable", 5000)
        assert len(acked) == 5000
        broker.kill()  # tansu only; SeaweedFS keeps the data
        bootstrap = broker.start(timeout=90)
        assert _consume_all(bootstrap, "durable", 3) == acked
    finally:
        broker.stop()


def test_the_readmes_kcat_command_reads_a_topic(hub: RunningHub, kafka_bootstrap: str, topic_prefix: str) -> None:
    """Debian's kcat, as the README tells it, reads what Publish wrote to the embedded broker."""
    assert shutil.which("kcat"), "kcat is not installed: run scripts/install-system-deps.sh"
    people = resident_ids(12, 5)
    hub.publish("population.resident", [resident(p) for p in people])
    [(_, command)] = blocks("kcat")
    argv = [
        a.replace("HOST:PORT", kafka_bootstrap).replace("hub.population", f"{topic_prefix}population")
        for a in shlex.split(command)
    ]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    read = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert sorted(read) == sorted(people)
    assert all(orjson.loads(read[p])["resident_id"] == p for p in people)
