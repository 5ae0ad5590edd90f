"""The acknowledging producer under a full local queue (what could not be queued is refused, the rest
is acknowledged, and the call always returns) and after a delivery timeout."""

from __future__ import annotations

import asyncio
from pathlib import Path

from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient

from hub.childproc import free_port
from hub.kafka.clients import admin_config, producer_config
from hub.kafka.embedded import EmbeddedBroker
from hub.kafka.producer import AckingProducer
from hub.kafka.topics import TopicSpec, ensure_topics
from tests.faults import TcpProxy


def test_a_full_queue_refuses_the_rest_and_the_call_returns(kafka_bootstrap: str, topic_prefix: str) -> None:
    topic = f"{topic_prefix}producer"
    ensure_topics(AdminClient(admin_config(kafka_bootstrap)), [TopicSpec(topic, 1, compacted=False)])
    # room for 10 records, and no waiting for room: the other 190 of each call are refused at once
    config = producer_config(kafka_bootstrap, {"queue.buffering.max.messages": 10, "linger.ms": 20})
    producer = AckingProducer(config, queue_wait_s=0.0)
    records = [(b"k%d" % i, b"v%d" % i) for i in range(200)]
    try:
        for _ in range(20):  # refusals on the loop race deliveries on the poller thread
            deliveries = asyncio.run(asyncio.wait_for(producer.send(topic, records, []), 30))
            assert len(deliveries) == 200
            acknowledged = [d for d in deliveries if d.error is None]
            assert acknowledged and all(d.offset >= 0 for d in acknowledged)
            refused = deliveries[len(acknowledged) :]
            assert refused and all(d.error.code() == KafkaError._QUEUE_FULL for d in refused)
    finally:
        producer.close()


def test_a_call_after_a_delivery_timeout_is_acknowledged(tmp_path: Path) -> None:
    """The broker unreachable past the delivery timeout, then back: the calls that timed out are refused
    (retriable), and the next call is acknowledged, not fenced (tansu does not know the epoch an
    idempotent producer bumps after a timeout)."""
    listen = free_port()
    broker = EmbeddedBroker(tmp_path / "broker", "memory", advertised_port=listen)
    proxy = TcpProxy("127.0.0.1", broker.port, listen)
    broker.start()
    through = f"127.0.0.1:{listen}"
    topic = "timeouts"
    ensure_topics(AdminClient(admin_config(through)), [TopicSpec(topic, 1, compacted=False)])
    producer = AckingProducer(producer_config(through, {"delivery.timeout.ms": 2000}))

    def send(key: bytes) -> list[KafkaError | None]:
        return [d.error for d in asyncio.run(producer.send(topic, [(key, b"v")], []))]

    def acknowledged(key: bytes) -> None:  # a busy machine may time out a 2 s delivery: then again
        for _ in range(20):
            [error] = send(key)
            if error is None:
                return
            assert error.code() == KafkaError._MSG_TIMED_OUT
        raise AssertionError(f"{key!r} timed out 20 times")

    try:
        acknowledged(b"before")
        proxy.stall()
        [timed_out] = send(b"stalled")
        assert timed_out is not None and timed_out.code() == KafkaError._MSG_TIMED_OUT
        proxy.heal()
        # The first call after the outage is not fenced (with a bumped epoch it would be, and every one after).
        acknowledged(b"after")
    finally:
        producer.close()
        broker.stop()
        proxy.close()
