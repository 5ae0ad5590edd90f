"""End-to-end publish throughput (connectors → gRPC Publish → Kafka → the cache), beside raw
librdkafka produce of the same records' bytes to the same broker in the same run.

    python -m bench.ingest [--residents 200000] [--entities 40000]

The seeded city's departmental exports (residents, market entities and their credit records, as
``hub demo`` writes them) are published by the population, market and credit connectors, one after
the other, through a ``hub serve`` process (one worker, audit on) on an embedded broker, until a
read-your-writes Verify of each resource sees its last record. The baseline is a plain
``confluent_kafka.Producer`` with the hub's own producer settings (``acks=all``, idempotent, lz4)
producing the records the connectors map, as the JSON values and headers the hub writes, to
topics of their own on the same broker, until ``flush()`` returns. The hub's process id is printed
so that a profiler can attach (``py-spy record --pid PID``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import grpc
import orjson
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from bench.common import Report
from hub.catalogue.model import load_builtin
from hub.client import open_channel, wait_serving
from hub.connect.registry import resolve_connector
from hub.connect.runtime import ConnectorRuntime, RuntimeOptions
from hub.datagen.city import CitySize
from hub.datagen.exports import ExportSet, write_exports
from hub.kafka.clients import admin_config, producer_config
from hub.kafka.embedded import EmbeddedBroker
from hub.kafka.topics import TopicSpec, ensure_topics
from hub.records import codec
from hub.testing.served import ServedHub
from hub.v1 import common_pb2, verification_pb2, verification_pb2_grpc

CONNECTORS = ("population", "market", "credit")
RAW_PREFIX = "raw."
# As hub demo publishes: calls of 2,000 records, four in flight.
OPTIONS = RuntimeOptions(batch_size=2000, max_in_flight=4)


def mapped(exports: ExportSet, name: str) -> list[tuple[bytes, bytes]]:
    """(key, JSON value) of every record the connector ``name`` maps from its export: what the hub writes."""
    connector = resolve_connector(name)()
    source = connector.default_source(str(exports.files[name]))
    out = []
    while rows := source.poll(10_000):
        out += [(connector.key(r.row).encode(), orjson.dumps(connector.map(r.row))) for r in rows if not r.control]
    return out


def produce_raw(bootstrap: str, idempotent: bool, records: dict[str, list[tuple[bytes, bytes]]]) -> float:
    """Seconds to produce every record with the hub's producer settings until Kafka acknowledged all."""
    catalogue = load_builtin()
    ensure_topics(
        AdminClient(admin_config(bootstrap)),
        [TopicSpec(RAW_PREFIX + r, catalogue.resource(r).partitions) for r in records],
    )
    producer = Producer(producer_config(bootstrap, idempotent=idempotent))
    started = time.perf_counter()
    for resource, pairs in records.items():
        spec = catalogue.resource(resource)
        topic, headers = RAW_PREFIX + resource, codec.headers(spec.provider, spec.schema_version, "bench")
        for key, value in pairs:
            while True:
                try:
                    producer.produce(topic, value, key, headers=headers)
                    break
                except BufferError:
                    producer.poll(0.01)
    remaining = producer.flush(300)
    elapsed = time.perf_counter() - started
    if remaining:
        raise RuntimeError(f"{remaining:,} raw records were not acknowledged")
    return elapsed


def publish(exports: ExportSet, address: str) -> tuple[float, dict[str, float]]:
    """Seconds from the first connector's start until the cache shows every connector's last record,
    and each connector's own records/s (acknowledged by the hub)."""
    rates = {}
    last: list[tuple[grpc.Channel, str, str, list[common_pb2.PartitionOffset]]] = []
    with tempfile.TemporaryDirectory() as state:
        started = time.perf_counter()
        for name in CONNECTORS:
            connector = resolve_connector(name)()
            channel = open_channel(address, department=connector.department)
            runtime = ConnectorRuntime(
                connector, connector.default_source(str(exports.files[name])), channel, Path(state) / name, OPTIONS
            )
            stats = runtime.run()
            if stats.published != exports.counts[name]:
                raise RuntimeError(f"{name}: {stats.published:,} of {exports.counts[name]:,} records published")
            rates[name] = stats.rate
            first = connector.default_source(str(exports.files[name])).poll(1)[0]
            last.append((channel, connector.resource, connector.key(first.row), runtime.last_offsets))
        for channel, resource, key, offsets in last:  # read your writes: returns once the cache has them
            verification_pb2_grpc.VerificationStub(channel).Verify(
                verification_pb2.VerifyRequest(
                    resource=resource,
                    key=key,
                    context=common_pb2.CallContext(purpose=common_pb2.PURPOSE_DATA_CHECK, case_number="BENCH"),
                    consistency=common_pb2.Consistency(min_offsets=offsets),
                ),
                timeout=300,
            )
        return time.perf_counter() - started, rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=200_000)
    parser.add_argument("--entities", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=2017)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(Path(tmp) / "broker") as broker:
        started = time.perf_counter()
        exports = write_exports(args.seed, CitySize(args.residents, args.entities), Path(tmp) / "exports")
        total = sum(exports.counts.values())
        print(f"generated {total:,} records {exports.counts} in {time.perf_counter() - started:.1f}s", flush=True)
        records = {resolve_connector(n).resource: mapped(exports, n) for n in CONNECTORS}
        raw_s = produce_raw(broker.bootstrap, broker.idempotent_producers, records)
        del records
        print(f"raw librdkafka produce: {total:,} records acknowledged in {raw_s:.2f}s", flush=True)

        hub = ServedHub(broker.bootstrap, Path(tmp) / "hub", 1)
        try:
            wait_serving(open_channel(hub.address, department="hub_admin"), 120)
            print(f"hub serving, pid {hub.pid}; load average {os.getloadavg()[0]:.1f}", flush=True)
            hub_s, rates = publish(exports, hub.address)
            print(
                f"hub path: {total:,} records visible in the cache after {hub_s:.2f}s; "
                + ", ".join(f"{n} {r:,.0f}/s" for n, r in rates.items())
                + f"; load average {os.getloadavg()[0]:.1f}",
                flush=True,
            )
        finally:
            hub.stop()
    report = Report(f"publish → Kafka → cache, {total:,} records, one hub worker")
    report.add(
        "publish → visible, records/s", total / hub_s, "raw librdkafka produce", total / raw_s, "rec/s", ">= 50,000/s"
    )
    report.print_summary()


if __name__ == "__main__":
    main()
