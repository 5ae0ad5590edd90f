"""librdkafka settings shared by every client the hub creates.

The values are chosen to be correct on real Apache Kafka and to work around
the embedded broker's (tansu 0.6.0) known gaps:

- A JoinGroup waits half of ``session.timeout.ms`` (23 s with the defaults), so
  group consumers use a 6 s session, and the cache assigns partitions itself.
- ``fetch.wait.max.ms`` is 50 ms. Kafka answers a fetch as soon as data arrives,
  so there it only bounds idle polls; tansu holds every fetch that long and then
  reads each assigned partition's watermark, so it sets both how stale a
  follower can be and the broker's idle CPU (20 ms cost an idle two-worker hub
  0.20 of a core on the broker, 50 ms 0.13). The cache's feeder, which follows
  the resource topics and the hub's state topics, waits longer (hub.cache.feeder). Calls that must see the latest
  records read them themselves (hub.kafka.tail) with 1 ms, widened while the
  broker cannot answer in that time (hub.kafka.read_consumer).
- Producers of the durable embedded broker are not idempotent (its producer
  state can outlive a batch it never stored: hub.kafka.embedded).
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer

# Java clients' partitioner, so a key lands on the same partition whichever
# client produced it. Compacted topics and per-key ordering depend on it.
PARTITIONER = "murmur2_random"


def base_config(bootstrap: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {"bootstrap.servers": bootstrap, "client.id": "city-exchange-hub"}
    config.update(extra or {})
    return config


def producer_config(bootstrap: str, extra: dict[str, Any] | None = None, *, idempotent: bool = True) -> dict[str, Any]:
    """``idempotent=False`` for a broker whose producer state can outlive the batch it counts (the
    durable embedded broker, :mod:`hub.kafka.embedded`): there a batch resent after a broker crash can be
    answered DUPLICATE_SEQUENCE_NUMBER, which librdkafka reports as delivered though nothing was stored."""
    config = base_config(
        bootstrap,
        {
            "enable.idempotence": True,
            "acks": "all",
            "partitioner": PARTITIONER,
            # Every call waits for its acknowledgement: a millisecond gathers what one call produces in a
            # loop into one batch (5 added 5 ms to every answer); big Publish calls fill batches anyway.
            "linger.ms": 1,
            "batch.num.messages": 10000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 500000,
            # A Publish RPC waits for acknowledgement; past this the record is
            # reported UNAVAILABLE and the caller retries (upserts are idempotent).
            "delivery.timeout.ms": 30000,
        },
    )
    if not idempotent:
        # A resent batch is then written again (upserts are idempotent by key, and the audit index knows a
        # repeated batch); one request in flight per connection keeps each partition in order through retries.
        config.update({"enable.idempotence": False, "max.in.flight.requests.per.connection": 1})
    config.update(extra or {})
    return config


def renewal_errors(config: dict[str, Any]) -> frozenset[int]:
    """Delivery errors after which a producer made from ``config`` is replaced by a fresh one: fenced,
    and for an idempotent producer a timeout too. After a timeout librdkafka bumps the producer's
    epoch, which tansu 0.6.0 does not know, so every later batch would be PRODUCER_FENCED
    (hub.kafka.embedded). On Kafka the bump is accepted; a replacement there only fails what else was in
    flight, as retriable."""
    fenced = frozenset({KafkaError.PRODUCER_FENCED})
    return fenced | {KafkaError._MSG_TIMED_OUT} if config.get("enable.idempotence") else fenced


def discard(producer: Producer) -> None:
    """Drops what a replaced producer still holds (its callers see it fail, retriable) and closes it."""
    producer.purge()
    producer.flush(0)
    producer.close()


def consumer_config(bootstrap: str, group_id: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    config = base_config(
        bootstrap,
        {
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1500,
            "fetch.wait.max.ms": 50,
            "queued.max.messages.kbytes": 262144,
        },
    )
    config.update(extra or {})
    return config


def admin_config(bootstrap: str) -> dict[str, Any]:
    return base_config(bootstrap)


def consume_ready(consumer: Consumer, max_messages: int, timeout: float) -> list[Message]:
    """Up to ``max_messages``: waits at most ``timeout`` for the first, then takes only what is
    already fetched. ``consume(n, timeout)`` itself waits out the whole timeout unless ``n``
    messages arrive, which adds that timeout to the latency of every trickle of changes."""
    first = consumer.poll(timeout)
    if first is None:
        return []
    return [first, *consumer.consume(max_messages - 1, 0)] if max_messages > 1 else [first]
