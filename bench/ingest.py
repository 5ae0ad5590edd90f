"""End-to-end publish throughput (connectors → gRPC Publish → Kafka → the cache), beside raw
librdkafka produce of the same records' bytes to the same broker in the same run.

    python -m bench.ingest [--residents 100000] [--entities 20000] [--rounds 1]

The seeded city's departmental exports (residents, market entities and their credit records, as
``hub demo`` writes them) are published by the population, market and credit connectors, one after
the other, through a ``hub serve`` process (one worker, audit on) on an embedded broker, until a
read-your-writes Verify of each resource sees its last record. That runs on fresh topics and a fresh
hub once per round in each of two ways, in alternating order: with the upserts of a call as one JSON
Lines blob (what connectors send) and with a message per record (what they sent before, and what any
client may still send). The baseline is a
plain ``confluent_kafka.Producer`` with the hub's own producer settings (``acks=all``, idempotent,
lz4) producing the records the connectors map, as the JSON values and headers the hub writes, to
topics of their own on the same broker, until ``flush()`` returns; it runs before and after the hub
runs, and the ratios use the mean. CPU per record is summed over the processes of each path (hub,
connector, broker; producer, broker). Each hub run also prints when each connector finished and how
long after the last acknowledged publish the cache held every record (the feeder's lag, which a run
that ends on the connectors' pace keeps near zero). Each hub's process id is printed so that a
profiler can attach (``py-spy record --pid PID``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import orjson
import psutil
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


@dataclass(frozen=True)
class Run:
    """One path's wall time and the CPU seconds of each of its processes."""

    seconds: float
    cpu: dict[str, float]

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu.values())


def cpu_seconds(pids: dict[str, int | None]) -> dict[str, float]:
    """User and system CPU seconds each process has used so far, by its role."""
    return {role: sum(psutil.Process(pid).cpu_times()[:2]) for role, pid in pids.items()}


def measured(pids: dict[str, int | None], started: float, before: dict[str, float]) -> Run:
    return Run(time.perf_counter() - started, {r: s - before[r] for r, s in cpu_seconds(pids).items()})


def mapped(exports: ExportSet, name: str) -> list[tuple[bytes, bytes]]:
    """(key, JSON value) of every record the connector ``name`` maps from its export: what the hub writes."""
    connector = resolve_connector(name)()
    source = connector.default_source(str(exports.files[name]))
    out = []
    while rows := source.poll(10_000):
        out += [(connector.key(r.row).encode(), orjson.dumps(connector.map(r.row))) for r in rows if not r.control]
    return out


def produce_raw(broker: EmbeddedBroker, records: dict[str, list[tuple[bytes, bytes]]], prefix: str) -> Run:
    """Every record produced with the hub's producer settings until Kafka acknowledged all."""
    catalogue = load_builtin()
    ensure_topics(
        AdminClient(admin_config(broker.bootstrap)),
        [TopicSpec(prefix + r, catalogue.resource(r).partitions) for r in records],
    )
    producer = Producer(producer_config(broker.bootstrap, idempotent=broker.idempotent_producers))
    pids = {"producer": os.getpid(), "broker": broker.pid}
    cpu, started = cpu_seconds(pids), time.perf_counter()
    for resource, pairs in records.items():
        spec = catalogue.resource(resource)
        topic, headers = prefix + resource, codec.headers(spec.provider, spec.schema_version, "bench")
        for key, value in pairs:
            while True:
                try:
                    producer.produce(topic, value, key, headers=headers)
                    break
                except BufferError:
                    producer.poll(0.01)
    remaining = producer.flush(300)
    run = measured(pids, started, cpu)
    if remaining:
        raise RuntimeError(f"{remaining:,} raw records were not acknowledged")
    return run


def publish(exports: ExportSet, broker: EmbeddedBroker, data_dir: Path, prefix: str, jsonl: bool) -> Run:
    """From the first connector's start until the cache of a fresh hub on fresh topics shows every
    connector's last record."""
    hub = ServedHub(broker.bootstrap, data_dir, 1, prefix)
    try:
        wait_serving(open_channel(hub.address, department="hub_admin"), 120)
        print(f"hub serving, pid {hub.pid}; load average {os.getloadavg()[0]:.1f}", flush=True)
        options = RuntimeOptions(batch_size=OPTIONS.batch_size, max_in_flight=OPTIONS.max_in_flight, jsonl=jsonl)
        last: list[tuple[grpc.Channel, str, str, list[common_pb2.PartitionOffset]]] = []
        rates = []
        pids = {"hub": hub.pid, "connector": os.getpid(), "broker": broker.pid}
        cpu, started = cpu_seconds(pids), time.perf_counter()
        for name in CONNECTORS:
            connector = resolve_connector(name)()
            channel = open_channel(hub.address, department=connector.department)
            source = connector.default_source(str(exports.files[name]))
            runtime = ConnectorRuntime(connector, source, channel, data_dir / "connectors" / name, options)
            stats = runtime.run()
            if stats.published != exports.counts[name]:
                raise RuntimeError(f"{name}: {stats.published:,} of {exports.counts[name]:,} records published")
            rates.append(f"{name} {stats.rate:,.0f}/s (done at {time.perf_counter() - started:.2f}s)")
            first = connector.default_source(str(exports.files[name])).poll(1)[0]
            last.append((channel, connector.resource, connector.key(first.row), runtime.last_offsets))
        published = time.perf_counter() - started
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
        run = measured(pids, started, cpu)
        print(f"  connectors: {', '.join(rates)}; load average {os.getloadavg()[0]:.1f}", flush=True)
        print(f"  the cache held every record {run.seconds - published:.2f}s after the last was published", flush=True)
        return run
    finally:
        hub.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=100_000)
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=2017)
    parser.add_argument("--rounds", type=int, default=1, help="Hub runs of each kind, in alternating order.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(Path(tmp) / "broker") as broker:
        started = time.perf_counter()
        exports = write_exports(args.seed, CitySize(args.residents, args.entities), Path(tmp) / "exports")
        n = sum(exports.counts.values())
        print(f"generated {n:,} records {exports.counts} in {time.perf_counter() - started:.1f}s", flush=True)
        records = {resolve_connector(c).resource: mapped(exports, c) for c in CONNECTORS}

        def show(what: str, run: Run) -> Run:
            split = ", ".join(f"{role} {seconds / n * 1e6:.1f}" for role, seconds in run.cpu.items())
            print(f"{what}: {n:,} records in {run.seconds:.2f}s; CPU µs per record: {split}", flush=True)
            return run

        raw = [show("raw librdkafka produce", produce_raw(broker, records, RAW_PREFIX + "0."))]
        runs: dict[bool, list[Run]] = {True: [], False: []}
        for i in range(args.rounds):  # on a noisy machine the order matters: it alternates
            for jsonl in (True, False) if i % 2 == 0 else (False, True):
                what = "JSON Lines" if jsonl else "a message per record"
                run = publish(exports, broker, Path(tmp) / f"{i}-{jsonl}", f"hub{i}{'j' if jsonl else 'm'}.", jsonl)
                runs[jsonl].append(show(f"hub, {what}", run))
        raw.append(show("raw librdkafka produce", produce_raw(broker, records, RAW_PREFIX + "1.")))

    def mean(runs: list[Run]) -> Run:
        return Run(sum(r.seconds for r in runs) / len(runs), {"all": sum(r.cpu_seconds for r in runs) / len(runs)})

    base, jsonl_run, each_run = mean(raw), mean(runs[True]), mean(runs[False])
    report = Report(f"publish → Kafka → cache, {n:,} records, one hub worker, mean of {args.rounds} run(s) each")
    for what, run in (("JSON Lines", jsonl_run), ("a message per record", each_run)):
        report.add(f"records/s, {what}", n / run.seconds, "raw librdkafka", n / base.seconds, "rec/s", ">= 50,000/s")
    for what, run in (("JSON Lines", jsonl_run), ("a message per record", each_run)):
        cpu = run.cpu_seconds / n * 1e6
        report.add(f"CPU µs/record, {what}", cpu, "raw librdkafka", base.cpu_seconds / n * 1e6, "µs")
    report.add("records/s, JSON Lines", n / jsonl_run.seconds, "a message per record", n / each_run.seconds, "rec/s")
    report.add(
        "CPU µs/record, JSON Lines",
        jsonl_run.cpu_seconds / n * 1e6,
        "a message per record",
        each_run.cpu_seconds / n * 1e6,
        "µs",
    )
    report.print_summary()


if __name__ == "__main__":
    main()
