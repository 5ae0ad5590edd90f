"""The case ledger's memory, as it was and as it is, and what a resubmission costs now that its recorded
result is read back from Kafka (issue 17).

    python -m bench.case_ledger [--cases 100000] [--sample 2000] [--calls 300]

A hub (one worker, audit on) over a small generated city; ``--sample`` cases of the city year's mix are
submitted to it in batches of 25, and ``--cases`` more events (the sample's, under fresh case numbers,
25 to a batch) are written to its cases topic, as a busy year leaves it.

Memory, with tracemalloc in this process: the same ``--cases`` events applied to the ledger as it was
(per case number the request digest and the whole serialized CaseResult) and to the ledger now (the
digest and the event's position); beside them the hub's own estimate (``hub_memory_bytes{component=
"case ledger"}``). Latency, one call at a time, ``--calls`` each: a case submitted for the first time
(resolved, audited, its event acknowledged) against the same case resubmitted (its result read back
from Kafka), and GetCaseReceipts (one record read) against reading the whole cases topic, which is what
it did before.
"""

from __future__ import annotations

import argparse
import base64
import gc
import statistics
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from bench.common import Report
from bench.flows import percentile
from hub.client import ensure_grants, open_channel
from hub.datagen.city import CitySize
from hub.datagen.produce import produce_city
from hub.flows.case_events import CaseEvents
from hub.flows.stores import CaseLedger
from hub.kafka.clients import consumer_config, producer_config
from hub.kafka.directory import DIRECTORY
from hub.kafka.embedded import EmbeddedBroker
from hub.records.change import Change
from hub.status import scrape
from hub.testing.served import ServedHub
from hub.v1 import cases_pb2, cases_pb2_grpc, common_pb2, receipts_pb2, receipts_pb2_grpc
from loadtest.workload import CaseFeed, Workload

PREFIX = "hub."
TOPIC = f"{PREFIX}_cases"
FILLED = (1, 2, 3)  # the partitions the extra events go to (partition 0 is the directory, hub.kafka.directory)
PER_CALL = 25
CLERK = "approval_bureau"


def read_topic(bootstrap: str) -> tuple[list[tuple[int, int, bytes]], float]:
    """Every event on the cases topic with its position (not its directory's announcements), and the
    seconds it took to read them (with their JSON decoded)."""
    consumer = Consumer(consumer_config(bootstrap, f"bench-{uuid.uuid4().hex[:8]}", {"enable.partition.eof": True}))
    started = time.perf_counter()
    events: list[tuple[int, int, bytes]] = []
    try:
        partitions = consumer.list_topics(TOPIC, timeout=30).topics[TOPIC].partitions
        consumer.assign([TopicPartition(TOPIC, p, 0) for p in partitions])
        done: set[int] = set()
        while len(done) < len(partitions):
            for m in consumer.consume(5000, 1.0):
                if m.error() is None:
                    if m.partition() != DIRECTORY:
                        orjson.loads(m.value())
                        events.append((m.partition(), m.offset(), m.value()))
                elif m.error().code() == KafkaError._PARTITION_EOF:
                    done.add(m.partition())
    finally:
        consumer.close()
    return events, time.perf_counter() - started


def fill(bootstrap: str, values: list[bytes], count: int) -> None:
    """``count`` more case events, the sample's values under fresh numbers, one record batch per 25;
    announced in the topic's directory first, as every writer's are, so the hub's catch-ups read them."""
    producer = Producer(producer_config(bootstrap, {"linger.ms": 0}))
    announce = orjson.dumps({"writer": "bench-fill", "partitions": FILLED})
    producer.produce(TOPIC, announce, b"directory/bench-fill", partition=DIRECTORY)
    producer.flush(30)
    for start in range(0, count, PER_CALL):
        for i in range(start, min(count, start + PER_CALL)):
            partition = FILLED[start // PER_CALL % len(FILLED)]
            producer.produce(TOPIC, values[i % len(values)], b"FILL-%07d" % i, partition=partition)
        producer.flush(30)


def _as_before(recorded: dict[str, tuple[str, bytes]], changes: list[Change]) -> None:
    """What the ledger kept before: the digest and the recorded result per case number."""
    for c in changes:
        event = orjson.loads(c.value or b"{}")
        recorded.setdefault(c.key, (event["request_digest"], base64.b64decode(event["result"])))


def traced_bytes(apply: Callable[[list[Change]], None], values: list[bytes], count: int) -> int:
    """Bytes still allocated after ``count`` events went through ``apply`` in feeder-sized batches; each
    batch's case numbers are made inside the measurement, as the feeder makes them."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for start in range(0, count, 5000):
            apply(
                [
                    Change(f"DY-2017-{i:07d}", values[i % len(values)], FILLED[i % len(FILLED)], i // len(FILLED))
                    for i in range(start, min(count, start + 5000))
                ]
            )
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--residents", type=int, default=20_000)
    parser.add_argument("--entities", type=int, default=5_000)
    args = parser.parse_args()

    size = CitySize(args.residents, args.entities)
    feed = CaseFeed(Workload(2017, size))
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(Path(tmp) / "broker") as broker:
        counts = produce_city(broker.bootstrap, PREFIX, size)
        hub = ServedHub(broker.bootstrap, Path(tmp) / "hub", 1, PREFIX)
        try:
            hub.wait_loaded({"population.resident": counts["population.resident"]})
            ensure_grants(hub.address, [(CLERK, "population.resident", [common_pb2.PURPOSE_LEGAL_BASIS])])
            channel = open_channel(hub.address, department=CLERK)
            cases, receipts = cases_pb2_grpc.CasesStub(channel), receipts_pb2_grpc.ReceiptsStub(channel)
            for start in range(0, args.sample, PER_CALL):
                batch = [feed.case(i) for i in range(start, min(args.sample, start + PER_CALL))]
                cases.SubmitBatch(cases_pb2.SubmitBatchRequest(cases=batch), timeout=60)
            sample = [value for *_, value in read_topic(broker.bootstrap)[0]]
            fill(broker.bootstrap, sample, args.cases)
            print(f"{len(sample):,} cases submitted, {args.cases:,} more events written", flush=True)

            timings: dict[str, list[float]] = {
                "first submission": [],
                "resubmission": [],
                "GetCaseReceipts": [],
                "read-back alone": [],
            }
            requests = [feed.case(args.sample + i) for i in range(args.calls)]
            for r in requests:
                r.receipt = True
                timings["first submission"].append(timed(lambda r=r: cases.Submit(r, timeout=60)))
            for r in requests:
                timings["resubmission"].append(timed(lambda r=r: cases.Submit(r, timeout=60)))
            for r in requests:
                ask = receipts_pb2.GetCaseReceiptsRequest(case_number=r.case_number)
                timings["GetCaseReceipts"].append(timed(lambda ask=ask: receipts.GetCaseReceipts(ask, timeout=60)))
            written, scan_s = read_topic(broker.bootstrap)
            reader = CaseEvents(broker.bootstrap, TOPIC)
            numbers = {r.case_number for r in requests}
            try:  # the read-back alone, in this process, of the same cases' events
                for partition, offset, value in written:
                    if orjson.loads(value)["case_number"] in numbers:
                        timings["read-back alone"].append(timed(lambda at=(partition, offset): reader.read([at])))
            finally:
                reader.close()
            hub_ledger = scrape(hub.metrics[0]).get("hub_memory_bytes", component="case ledger")
        finally:
            hub.stop()

    before_holder: dict[str, tuple[str, bytes]] = {}
    before = traced_bytes(lambda changes: _as_before(before_holder, changes), sample, args.cases)
    ledger = CaseLedger(1 + len(FILLED))
    now = traced_bytes(ledger.apply, sample, args.cases)
    per = 100_000 / args.cases / 2**20
    result_bytes = statistics.mean(len(r) for _, r in before_holder.values())
    print(f"mean serialized CaseResult: {result_bytes:,.0f} bytes")
    print(
        f"ledger per 100,000 cases: before {before * per:,.1f} MiB, now {now * per:,.1f} MiB "
        f"(its own estimate {ledger.nbytes * per:,.1f} MiB; the hub's, with {args.cases + args.sample + args.calls:,} "
        f"cases: {hub_ledger / 2**20:,.1f} MiB)"
    )
    for name, ms in timings.items():
        print(f"{name}: p50 {statistics.median(ms):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms")
    print(f"reading the whole cases topic ({args.cases + args.sample + args.calls:,} events): {scan_s * 1000:,.0f} ms")

    report = Report(f"Case ledger: {args.cases:,} cases, {args.calls} calls each")
    report.add("ledger MiB per 100,000 cases", now * per, "before", before * per, "MiB")
    report.add(
        "resubmission p50 (read back)",
        statistics.median(timings["resubmission"]),
        "first p50",
        statistics.median(timings["first submission"]),
        "ms",
    )
    report.add(
        "resubmission p99 (read back)",
        percentile(timings["resubmission"], 0.99),
        "first p99",
        percentile(timings["first submission"], 0.99),
        "ms",
    )
    report.add(
        "GetCaseReceipts p50", statistics.median(timings["GetCaseReceipts"]), "whole-topic read", scan_s * 1000, "ms"
    )
    report.print_summary()


if __name__ == "__main__":
    main()
