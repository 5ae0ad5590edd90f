"""Reading a topic to its end from known positions (hub.kafka.tail), on a partition of many batches."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from hub.kafka.clients import admin_config, producer_config
from hub.kafka.tail import ONE_FETCH, TailReader
from hub.kafka.topics import TopicSpec, ensure_topics
from hub.records.change import Change

# tansu 0.6.0 lists every batch of a partition to serve a fetch behind its end, and answers a fetch it
# cannot serve within its wait with nothing: with a fixed 1 ms wait this read never reached the end.
BATCHES = 20_000


def _fill(bootstrap: str, topic: str, batches: int) -> None:
    """``batches`` record batches of one record each in partition 0, at offsets 0 to batches - 1."""
    # One request in flight, no idempotence: each record is its own batch, stored in order. A busy broker
    # stores a few hundred such batches a second: no record may time out before it is stored.
    config = {"linger.ms": 0, "batch.num.messages": 1, "delivery.timeout.ms": 900_000}
    producer = Producer(producer_config(bootstrap, config, idempotent=False))
    stored: list[int] = []
    for i in range(batches):
        producer.produce(
            topic, b"v%d" % i, b"k%d" % i, partition=0, on_delivery=lambda err, m: stored.append(m.offset())
        )
        producer.poll(0)
    assert producer.flush(900) == 0
    assert sorted(stored) == list(range(batches)), "the broker did not store the records at offsets 0.."


def test_a_read_behind_the_end_of_a_partition_of_many_batches_reaches_its_end(kafka_bootstrap: str) -> None:
    topic = f"tail-{uuid.uuid4().hex[:8]}"
    ensure_topics(AdminClient(admin_config(kafka_bootstrap)), [TopicSpec(topic, 1, compacted=False)])
    _fill(kafka_bootstrap, topic, BATCHES)
    reader = TailReader(kafka_bootstrap, topic)
    read: list[Change] = []
    try:
        reader.read([BATCHES - 10], read.extend, timeout=120)
        assert [(c.key, c.offset) for c in read] == [(f"k{i}", i) for i in range(BATCHES - 10, BATCHES)]
        read.clear()
        reader.read([BATCHES], read.extend, timeout=120)  # at the end already: nothing, and it returns
        assert read == []
    finally:
        reader.close()


@pytest.mark.parametrize("watermark_ends", [True, False], ids=["one broker: watermark or EOF", "EOF only"])
def test_each_read_brings_every_record_acknowledged_before_it(kafka_bootstrap: str, watermark_ends: bool) -> None:
    topic = f"tail-{uuid.uuid4().hex[:8]}"
    ensure_topics(AdminClient(admin_config(kafka_bootstrap)), [TopicSpec(topic, 3, compacted=False)])
    producer = Producer(producer_config(kafka_bootstrap, {"linger.ms": 0}))
    reader = TailReader(kafka_bootstrap, topic, ONE_FETCH)
    reader._watermark_ends = lambda consumer: watermark_ends  # type: ignore[method-assign]  # as with several brokers
    positions = [0, 0, 0]

    def apply(changes: list[Change]) -> None:
        for c in changes:
            assert c.offset == positions[c.partition], "a record skipped or read twice"
            positions[c.partition] = c.offset + 1

    try:
        for round_, partitions in enumerate([(0, 1), (), (2, 0, 0), (1,) * 30]):
            for i, partition in enumerate(partitions):
                producer.produce(topic, b"v", f"r{round_}-{i}".encode(), partition=partition)
            assert producer.flush(60) == 0  # acknowledged before the read begins
            reader.read(list(positions), apply, timeout=60)
            assert positions == [[1, 1, 0], [1, 1, 0], [3, 1, 1], [3, 31, 1]][round_]
    finally:
        reader.close()


def test_a_started_read_leaves_closing_or_making_its_consumer_to_finish(kafka_bootstrap: str) -> None:
    """start runs on the event loop (hub.server.catch_up): it assigns a consumer already made, and leaves
    one to close or make (which may block) to finish, on a thread."""
    topic = f"tail-{uuid.uuid4().hex[:8]}"
    ensure_topics(AdminClient(admin_config(kafka_bootstrap)), [TopicSpec(topic, 1, compacted=False)])
    producer = Producer(producer_config(kafka_bootstrap, {"linger.ms": 0}))
    reader = TailReader(kafka_bootstrap, topic, ONE_FETCH)
    got: list[Change] = []
    try:
        for i, (position, made) in enumerate([(0, False), (1, True), (2, False)]):
            producer.produce(topic, b"v", f"k{i}".encode(), partition=0)
            assert producer.flush(60) == 0
            if i == 2:  # a widened wait whose narrowing is due: the consumer is replaced
                reader._reads.wait_ms, reader._reads._stalled_at = 4, -1e9
            read = reader.start([position])
            assert (read.consumer is not None) == made
            reader.finish(read, got.extend, timeout=60)
            assert [c.key for c in got] == [f"k{j}" for j in range(i + 1)]
        assert reader._reads.wait_ms == 2
    finally:
        reader.close()


@pytest.mark.parametrize("watermark_ends", [True, False], ids=["one broker: watermark or EOF", "EOF only"])
def test_a_read_adds_the_partitions_its_records_call_for(kafka_bootstrap: str, watermark_ends: bool) -> None:
    """As a catch-up adds a partition announced in its topic's directory (hub.kafka.directory): named
    after the read began, read from the given offset to its end, also when every partition named at
    the start had already ended."""
    topic = f"tail-{uuid.uuid4().hex[:8]}"
    ensure_topics(AdminClient(admin_config(kafka_bootstrap)), [TopicSpec(topic, 3, compacted=False)])
    producer = Producer(producer_config(kafka_bootstrap, {"linger.ms": 0}))
    for partition, key in ((0, b"announce"), (2, b"a"), (2, b"b"), (2, b"c"), (1, b"unnamed")):
        producer.produce(topic, b"v", key, partition=partition)
    assert producer.flush(30) == 0
    reader = TailReader(kafka_bootstrap, topic, ONE_FETCH)
    reader._watermark_ends = lambda consumer: watermark_ends  # type: ignore[method-assign]
    read: list[Change] = []

    def more(named) -> dict[int, int]:
        return {2: 1} if any(c.key == "announce" for c in read) and 2 not in named else {}

    try:
        reader.finish(reader.start({0: 0}), read.extend, 60, more)
    finally:
        reader.close()
    assert [(c.partition, c.key) for c in read] == [(0, "announce"), (2, "b"), (2, "c")]
