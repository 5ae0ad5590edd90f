"""Flows benchmark: notice latency from registration to delivery, and subscription throughput per
stream, each beside raw Kafka measured in the same run.

    python -m bench.flows [--notices 400] [--per-second 40] [--residents 200000] [--streams 4]

The hub runs in its own process with the notice engine on. Notice latency is measured from just
before the market-regulation bureau's Publish call to the moment the food and drug bureau's Watch
stream delivers the notice: Publish, the entity topic, the notice engine (a consumer group), the
notices topic, the replica's change ring and the stream. The baseline is one raw Kafka hop at the
same pace: produce with acks=all and flush, read by an assigned consumer.

Subscription throughput streams the whole resident topic from the earliest offset, first on one
stream and then on ``--streams`` streams at once (one client process each); the baseline is a raw
confluent-kafka consumer reading the same topic to its end.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import grpc
import orjson
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from bench.common import Report
from hub.catalogue.model import load_builtin
from hub.childproc import free_port
from hub.client import open_channel, wait_serving
from hub.datagen.city import CitySize, credit_codes
from hub.datagen.produce import produce_city
from hub.kafka.clients import admin_config, consumer_config, producer_config
from hub.kafka.embedded import EmbeddedBroker
from hub.kafka.topics import TopicSpec, ensure_topics
from hub.records.reference import ENTITY_TYPES
from hub.v1 import (
    common_pb2,
    exchange_pb2,
    exchange_pb2_grpc,
    notices_pb2,
    notices_pb2_grpc,
    subscription_pb2,
    subscription_pb2_grpc,
)

RESIDENTS_TOPIC = "hub.population.resident"
CONTEXT = common_pb2.CallContext(purpose=common_pb2.PURPOSE_BUSINESS_COLLABORATION, case_number="BENCH-FLOWS")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def food_entity(code: str) -> exchange_pb2.Record:
    value = {
        "credit_code": code,
        "name": f"德阳{code[-4:]}餐饮有限公司",
        "entity_type": ENTITY_TYPES[code[:2]][0],  # the code's category character says which
        "district_code": code[2:8],
        "established_on": "2026-11-20",
        "status": "active",
        "business_scope": ["catering"],
    }
    return exchange_pb2.Record(key=code, json=orjson.dumps(value))


def notice_latencies(address: str, count: int, per_second: float) -> list[float]:
    """Milliseconds from each Publish to the notice's delivery on the food and drug bureau's stream."""
    sent: dict[str, float] = {}
    latencies: list[float] = []
    done = threading.Event()
    watch = notices_pb2_grpc.NoticesStub(open_channel(address, department="food_drug")).Watch(
        notices_pb2.NoticesWatchRequest()
    )

    def follow() -> None:
        try:
            for message in watch:
                arrived = time.time()
                started = sent.get(message.notice.credit_code)
                if started is not None and message.notice.state == notices_pb2.NOTICE_STATE_OPEN:
                    latencies.append((arrived - started) * 1000)
                    if len(latencies) >= count:
                        done.set()
        except grpc.RpcError:
            pass

    threading.Thread(target=follow, daemon=True).start()
    publish = exchange_pb2_grpc.ExchangeStub(open_channel(address, department="market_regulation")).Publish
    codes = credit_codes(int(time.time()), count + 1)
    # The engine joins its consumer group first (seconds on tansu); wait for the first notice.
    sent[codes[0]] = time.time()
    publish(exchange_pb2.PublishRequest(resource="market.entity", records=[food_entity(codes[0])]), timeout=30)
    deadline = time.monotonic() + 120
    while not latencies:
        if time.monotonic() > deadline:
            raise TimeoutError("no notice arrived; is the notice engine on?")
        time.sleep(0.05)
    latencies.clear()
    for code in codes[1:]:
        sent[code] = time.time()
        publish(exchange_pb2.PublishRequest(resource="market.entity", records=[food_entity(code)]), timeout=30)
        time.sleep(1 / per_second)
    if not done.wait(60):
        raise TimeoutError(f"only {len(latencies)} of {count} notices arrived")
    watch.cancel()
    return latencies


def kafka_hop_latencies(bootstrap: str, count: int, per_second: float) -> list[float]:
    """Milliseconds from produce (acks=all, flushed) to an assigned consumer's poll, at the same pace."""
    topic = f"bench.hop.{uuid.uuid4().hex[:8]}"
    ensure_topics(AdminClient(admin_config(bootstrap)), [TopicSpec(topic, 1)])
    producer = Producer(producer_config(bootstrap, {"linger.ms": 0}))
    consumer = Consumer(consumer_config(bootstrap, f"bench-{uuid.uuid4().hex[:8]}"))
    consumer.assign([TopicPartition(topic, 0, 0)])
    latencies: list[float] = []
    try:
        for i in range(count):
            started = time.time()
            producer.produce(topic, str(i).encode())
            producer.flush(30)
            while True:
                message = consumer.poll(5)
                if message is None and time.time() - started > 30:
                    raise TimeoutError("the raw consumer received nothing")
                if message is not None and message.error() is None:
                    latencies.append((time.time() - started) * 1000)
                    break
            time.sleep(1 / per_second)
    finally:
        consumer.close()
        producer.close()
    return latencies


def stream_all(address: str, expected: int) -> float:
    """Events per second of one Subscribe stream reading the resident topic from the earliest offset."""
    stream = subscription_pb2_grpc.SubscriptionStub(open_channel(address, department="public_security")).Subscribe(
        subscription_pb2.SubscribeRequest(
            resource="population.resident", start=subscription_pb2.START_FROM_EARLIEST, context=CONTEXT
        )
    )
    seen = 0
    started = time.perf_counter()
    for _ in stream:
        seen += 1
        if seen >= expected:
            break
    elapsed = time.perf_counter() - started
    stream.cancel()
    return seen / elapsed


def raw_consume_all(bootstrap: str, partitions: int, expected: int) -> float:
    """Messages per second of a raw consumer reading the same topic to its end (values decoded, as
    a subscriber must)."""
    consumer = Consumer(consumer_config(bootstrap, f"bench-{uuid.uuid4().hex[:8]}", {"enable.partition.eof": False}))
    consumer.assign([TopicPartition(RESIDENTS_TOPIC, p, 0) for p in range(partitions)])
    seen = 0
    started = time.perf_counter()
    try:
        while seen < expected:
            for message in consumer.consume(1000, 1.0):
                if message.error() is None:
                    orjson.loads(message.value())
                    seen += 1
    finally:
        consumer.close()
    return seen / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notices", type=int, default=400)
    parser.add_argument("--per-second", type=float, default=40.0)
    parser.add_argument("--residents", type=int, default=200_000)
    parser.add_argument("--streams", type=int, default=4)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(Path(tmp) / "broker") as broker:
        produce_city(broker.bootstrap, "hub.", CitySize(args.residents, 1000))
        port = free_port()
        address = f"127.0.0.1:{port}"
        hub = subprocess.Popen(
            [
                *(sys.executable, "-m", "hub.cli", "serve", "--bootstrap-servers", broker.bootstrap),
                *("--port", str(port), "--data-dir", str(Path(tmp) / "hub"), "--insecure-dev"),
            ],
            env={**os.environ, "HUB_LOG_LEVEL": "WARNING", "HUB_NOTICE_ENGINE": "true"},
        )
        try:
            wait_serving(open_channel(address, department="public_security"), 600)
            hub_ms = notice_latencies(address, args.notices, args.per_second)
            raw_ms = kafka_hop_latencies(broker.bootstrap, args.notices, args.per_second)
            print(
                f"notices: p50 {statistics.median(hub_ms):.1f} ms, p99 {percentile(hub_ms, 0.99):.1f} ms; "
                f"raw Kafka hop p50 {statistics.median(raw_ms):.1f} ms, p99 {percentile(raw_ms, 0.99):.1f} ms",
                flush=True,
            )
            one = stream_all(address, args.residents)
            print(f"one stream: {one:,.0f} events/s", flush=True)
            with multiprocessing.get_context("spawn").Pool(args.streams) as pool:
                many = pool.starmap(stream_all, [(address, args.residents)] * args.streams)
            print(f"{args.streams} streams: {', '.join(f'{r:,.0f}' for r in many)} events/s", flush=True)
            partitions = load_builtin().resource("population.resident").partitions
            raw = raw_consume_all(broker.bootstrap, partitions, args.residents)
            print(f"raw consumer: {raw:,.0f} messages/s", flush=True)
        finally:
            hub.terminate()
            hub.wait(60)

    report = Report(f"Flows: notices at {args.per_second:.0f}/s, subscriptions over {args.residents:,} residents")
    report.add("notice latency p50", statistics.median(hub_ms), "raw Kafka hop p50", statistics.median(raw_ms), "ms")
    report.add("notice latency p99", percentile(hub_ms, 0.99), "raw Kafka hop p99", percentile(raw_ms, 0.99), "ms")
    report.add("subscription, one stream", one, "raw consumer", raw, "events/s")
    report.add(f"subscription, per stream of {args.streams}", statistics.mean(many), "raw consumer", raw, "events/s")
    report.print_summary()


if __name__ == "__main__":
    main()
