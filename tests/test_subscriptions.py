"""Subscribe: masked, filtered change streams that resume without a gap; slow readers; many streams;
and the SDK's sink side."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import orjson
import pytest

from hub.client import open_aio_channel
from hub.connect.sink import JsonlSink, SinkRuntime
from hub.datagen.city import resident_ids
from hub.v1 import common_pb2, governance_pb2, subscription_pb2, subscription_pb2_grpc
from tests.hubtest import RunningHub, resident, running_hub

CTX = common_pb2.CallContext(purpose=common_pb2.PURPOSE_BUSINESS_COLLABORATION, case_number="DY-SUB-1")
PEOPLE = resident_ids(21, 400)


def _grant(hub: RunningHub, consumer: str, **scope) -> None:
    filed = (
        hub.client(consumer)
        .governance.RequestAccess(
            governance_pb2.RequestAccessRequest(
                resource="population.resident", purposes=[CTX.purpose], legal_basis="《社会保险法》"
            )
        )
        .request
    )
    hub.client("public_security").governance.DecideAccess(
        governance_pb2.DecideAccessRequest(request_id=filed.id, decision=governance_pb2.DECISION_APPROVE, **scope)
    )


def _take(stream, n: int) -> list:
    """The next ``n`` events, however long a busy machine takes (pytest's timeout ends a stuck test)."""
    events = []
    for event in stream:
        events.append(event)
        if len(events) == n:
            break
    return events


@pytest.fixture
def hub(layout_hub: RunningHub) -> RunningHub:
    """The subscription tests that take ``hub`` run unsharded and on two shards (streams gathered)."""
    return layout_hub


def test_subscribe_delivers_masked_filtered_upserts_and_deletes(hub: RunningHub) -> None:
    _grant(hub, "human_resources", fields=["resident_id", "name", "district_code", "status"])
    stub = hub.client("human_resources").channel
    stream = subscription_pb2_grpc.SubscriptionStub(stub).Subscribe(
        subscription_pb2.SubscribeRequest(
            resource="population.resident",
            context=CTX,
            start=subscription_pb2.START_FROM_EARLIEST,
            filters=[subscription_pb2.SubscriptionFilter(field="district_code", prefix="510681")],
        )
    )
    hub.publish(
        "population.resident",
        [resident(PEOPLE[0], district_code="510681", name="李明"), resident(PEOPLE[1], district_code="510603")],
    )
    hub.publish("population.resident", [(PEOPLE[0], None)])
    events = _take(stream, 2)
    stream.cancel()
    assert [(e.key, e.op) for e in events] == [
        (PEOPLE[0], subscription_pb2.CHANGE_OP_UPSERT),
        (PEOPLE[0], subscription_pb2.CHANGE_OP_DELETE),
    ]
    record = orjson.loads(events[0].record)
    assert record == {
        "resident_id": PEOPLE[0][:6] + "********" + PEOPLE[0][-4:],
        "name": "李*",
        "district_code": "510681",
        "status": "registered",
    }


def test_subscribe_needs_a_grant_that_covers_subscription(hub: RunningHub) -> None:
    stream = subscription_pb2_grpc.SubscriptionStub(hub.client("education").channel).Subscribe(
        subscription_pb2.SubscribeRequest(resource="population.resident", context=CTX)
    )
    with pytest.raises(grpc.RpcError) as err:
        next(stream)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_resume_from_cursor_without_gap(hub: RunningHub) -> None:
    stub = subscription_pb2_grpc.SubscriptionStub(hub.client("public_security").channel)
    hub.publish("population.resident", [resident(r) for r in PEOPLE[:100]])
    first = stub.Subscribe(
        subscription_pb2.SubscribeRequest(
            resource="population.resident", context=CTX, start=subscription_pb2.START_FROM_EARLIEST
        )
    )
    seen = _take(first, 40)
    first.cancel()  # a disconnect
    hub.publish("population.resident", [resident(r) for r in PEOPLE[100:150]])
    rest = stub.Subscribe(
        subscription_pb2.SubscribeRequest(resource="population.resident", context=CTX, cursor=seen[-1].cursor)
    )
    more = _take(rest, 110)
    rest.cancel()
    assert {e.key for e in seen} | {e.key for e in more} == set(PEOPLE[:150])
    assert not {(e.partition, e.offset) for e in seen} & {(e.partition, e.offset) for e in more}


def _mirror(hub: RunningHub, inbox: Path) -> SinkRuntime:
    """The public security bureau's named subscription mirroring residents into a JSON Lines file."""
    return SinkRuntime(
        JsonlSink(inbox),
        hub.client("public_security").channel,
        "population.resident",
        "registry-mirror",
        CTX,
        batch_size=25,
    )


def test_named_subscription_survives_hub_and_client_restart(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox.jsonl"
    with running_hub(kafka_bootstrap, topic_prefix, tmp_path / "a") as hub:
        hub.publish("population.resident", [resident(r) for r in PEOPLE[:120]])
        sink = _mirror(hub, inbox)
        assert sink.run(until=50) >= 50  # the client stops part-way (and restarts below)
    with running_hub(kafka_bootstrap, topic_prefix, tmp_path / "b") as hub:  # a new replica: hub restarted
        hub.publish("population.resident", [resident(r, status="moved_out") for r in PEOPLE[:10]])
        sink = _mirror(hub, inbox)
        threading.Timer(8, sink.stop).start()
        sink.run(until=130 - sink_written(inbox))
    state: dict[str, dict | None] = {}
    for line in inbox.read_bytes().splitlines():
        event = orjson.loads(line)
        state[event["key"]] = event["record"]
    assert set(state) == set(PEOPLE[:120])
    assert all(state[r]["status"] == "moved_out" for r in PEOPLE[:10])


def sink_written(path: Path) -> int:
    return len(path.read_bytes().splitlines())


def test_slow_subscriber_is_bounded_and_catches_up(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    with running_hub(kafka_bootstrap, topic_prefix, tmp_path, change_ring_capacity=200) as hub:
        stub = subscription_pb2_grpc.SubscriptionStub(hub.client("public_security").channel)
        ring = hub.server.cache.rings[f"{topic_prefix}population.resident"]
        positioned = threading.Semaphore(0)  # a START_FROM_LATEST stream takes the ring's ends when it starts
        ends = ring.ends

        def counted_ends() -> list[int]:
            try:
                return ends()
            finally:
                positioned.release()

        ring.ends = counted_ends
        slow = stub.Subscribe(
            subscription_pb2.SubscribeRequest(
                resource="population.resident", context=CTX, start=subscription_pb2.START_FROM_LATEST
            )
        )
        fast = stub.Subscribe(
            subscription_pb2.SubscribeRequest(
                resource="population.resident", context=CTX, start=subscription_pb2.START_FROM_LATEST
            )
        )
        assert positioned.acquire(timeout=60) and positioned.acquire(timeout=60), "the streams never started"
        for start in range(0, 400, 100):
            hub.publish("population.resident", [resident(r) for r in PEOPLE[start : start + 100]])
        assert {e.key for e in _take(fast, 400)} == set(PEOPLE)  # the slow one holds nobody back
        assert all(len(part.changes) <= 300 for part in ring._parts)  # bounded, whatever the slow reader does
        assert {e.key for e in _take(slow, 400)} == set(PEOPLE)  # and it catches up from Kafka
        slow.cancel()
        fast.cancel()


def test_two_hundred_concurrent_streams(hub: RunningHub) -> None:
    streams, events_each = 200, 50

    async def run() -> list[int]:
        channel = open_aio_channel(hub.address, department="public_security")
        stub = subscription_pb2_grpc.SubscriptionStub(channel)
        counts = [0] * streams
        ready = asyncio.Event()
        opened = 0

        async def follow(i: int) -> None:
            nonlocal opened
            call = stub.Subscribe(
                subscription_pb2.SubscribeRequest(
                    resource="population.resident", context=CTX, start=subscription_pb2.START_FROM_EARLIEST
                )
            )
            opened += 1
            if opened == streams:
                ready.set()
            async for _ in call:
                counts[i] += 1
                if counts[i] == events_each:
                    call.cancel()
                    return

        tasks = [asyncio.create_task(follow(i)) for i in range(streams)]
        await ready.wait()
        await asyncio.to_thread(hub.publish, "population.resident", [resident(r) for r in PEOPLE[:events_each]])
        results = await asyncio.gather(*tasks, return_exceptions=True)  # pytest's timeout ends a stuck run
        errors = [r for r in results if isinstance(r, BaseException)]
        assert not errors, errors[:2]
        await channel.close()
        return counts

    assert asyncio.run(run()) == [events_each] * streams


def test_hub_subscribe_command_writes_filtered_changes(hub: RunningHub, tmp_path: Path) -> None:
    hub.publish(
        "population.resident",
        [resident(p, district_code="510681" if i % 2 else "510603") for i, p in enumerate(PEOPLE[200:220])],
    )
    out = tmp_path / "guanghan.jsonl"
    command = [
        *("population.resident", "--name", "guanghan-mirror", "--out", str(out)),
        *("--filter", "district_code=510681", "--count", "10", "--case-number", "DY-SUB-CLI"),
        *("--hub", hub.address, "--department", "public_security"),
    ]
    done = subprocess.run(
        [sys.executable, "-m", "hub.cli", "subscribe", *command],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    written = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert sorted(e["key"] for e in written) == sorted(PEOPLE[201:220:2])
    assert all(e["record"]["district_code"] == "510681" for e in written)
