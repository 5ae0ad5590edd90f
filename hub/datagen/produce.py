"""Loads the seeded city straight into the resource topics (bypassing Publish), for benchmarks and
load tests that measure what happens after the data is in Kafka."""

from __future__ import annotations

import time

import orjson
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from hub.catalogue.model import load_builtin
from hub.datagen.city import City, CitySize
from hub.kafka.clients import admin_config, producer_config
from hub.kafka.topics import TopicSpec, ensure_topics
from hub.records import codec


def produce_city(bootstrap: str, prefix: str, size: CitySize, seed: int = 2017) -> dict[str, int]:
    catalogue = load_builtin()
    ensure_topics(
        AdminClient(admin_config(bootstrap)),
        [TopicSpec(codec.topic_for(prefix, r.name), r.partitions) for r in catalogue.resources],
    )
    producer = Producer(producer_config(bootstrap, {"linger.ms": 20}))
    city = City(seed, size)
    counts = {}
    for resource, records, key in (
        ("population.resident", city.residents(), "resident_id"),
        ("market.entity", city.entities(), "credit_code"),
        ("credit.list_entry", city.credit_entries(), "entry_id"),
    ):
        spec = catalogue.resource(resource)
        topic = codec.topic_for(prefix, resource)
        headers = codec.headers(spec.provider, spec.schema_version, "bench")
        n = 0
        started = time.perf_counter()
        for record in records:
            while True:
                try:
                    producer.produce(topic, orjson.dumps(record), record[key].encode(), headers=headers)
                    break
                except BufferError:
                    producer.poll(0.05)
            n += 1
            if n % 10000 == 0:
                producer.poll(0)
        assert producer.flush(120) == 0, "records left unacknowledged"
        counts[resource] = n
        print(f"produced {n:,} {resource} in {time.perf_counter() - started:.1f}s", flush=True)
    producer.close()
    return counts
