"""A case number is recorded once: the same case resubmitted (a retry after a lost answer) gets the
recorded result and no second event, on this replica and on a replica started after it; different
content under that number is ALREADY_EXISTS naming the number, unsharded and at two shards. The ledger keeps
where a number's first event is, and the result is read back from Kafka there."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import grpc
import orjson
import pytest
from confluent_kafka.admin import AdminClient

from hub.childproc import free_port
from hub.datagen.city import resident_ids
from hub.errors import Unavailable
from hub.flows.case_events import CaseEvents
from hub.flows.stores import CaseLedger, Recorded
from hub.kafka.clients import admin_config, producer_config
from hub.kafka.directory import DIRECTORY, AnnouncedPartition, WriterDirectory, announcement
from hub.kafka.producer import AckingProducer, Delivery
from hub.kafka.topics import TopicSpec, ensure_topics
from hub.records.change import Change
from hub.v1 import cases_pb2, cases_pb2_grpc, common_pb2
from tests.faults import count_by_key, topic_records
from tests.hubtest import resident, running_layout

APPLICANT, OTHER = resident_ids(43, 2)


def _case(number: str, district: str = "510603", applicant: str = APPLICANT) -> cases_pb2.SubmitRequest:
    return cases_pb2.SubmitRequest(
        case_number=number,
        case_type="household_transfer",
        applicant=applicant,
        date="2017-11-30",
        params={"district": district},
        purpose=common_pb2.PURPOSE_LEGAL_BASIS,
    )


@pytest.mark.parametrize("count", [1, 2], ids=["whole", "2-shards"])
def test_a_resubmitted_case_is_answered_from_its_record(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, count: int
) -> None:
    with running_layout(kafka_bootstrap, topic_prefix, tmp_path, count) as hub:
        hub.publish("population.resident", [resident(APPLICANT), resident(OTHER)])
        cases = cases_pb2_grpc.CasesStub(hub.client("approval_bureau").channel)
        first = cases.Submit(_case("DY-RESUBMIT-1"), timeout=30).result
        assert cases.Submit(_case("DY-RESUBMIT-1"), timeout=30).result == first
        with pytest.raises(grpc.RpcError) as caught:
            cases.Submit(_case("DY-RESUBMIT-1", district="510681"), timeout=30)
        assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert "DY-RESUBMIT-1" in caught.value.details()

        batch = cases.SubmitBatch(
            cases_pb2.SubmitBatchRequest(
                cases=[
                    _case("DY-RESUBMIT-1"),  # recorded: its result again
                    _case("DY-RESUBMIT-2", applicant=OTHER),
                    _case("DY-RESUBMIT-2", applicant=OTHER),  # twice in one batch: one event
                    _case("DY-RESUBMIT-1", applicant=OTHER),  # a recorded number, other content
                ]
            ),
            timeout=30,
        ).results
        assert batch[0] == first
        assert batch[1] == batch[2] and not batch[1].error
        assert "cases[3]" in batch[3].error and "DY-RESUBMIT-1" in batch[3].error
        topic = hub.server.topics.cases
    # a replica started afterwards knows the recorded cases from the topic
    with running_layout(kafka_bootstrap, topic_prefix, tmp_path, count) as hub:
        cases = cases_pb2_grpc.CasesStub(hub.client("approval_bureau").channel)
        assert cases.Submit(_case("DY-RESUBMIT-1"), timeout=30).result == first
    assert count_by_key(kafka_bootstrap, topic, events=True) == {"DY-RESUBMIT-1": 1, "DY-RESUBMIT-2": 1}


def test_a_case_recorded_through_one_running_replica_is_found_by_another(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    """Both replicas are ready before the case is submitted, so the second one's cache no longer
    follows the cases topic: it reads the topic to its end when it meets a number it has not seen."""
    with (
        running_layout(kafka_bootstrap, topic_prefix, tmp_path / "a", 1) as a,
        running_layout(kafka_bootstrap, topic_prefix, tmp_path / "b", 1) as b,
    ):
        a.publish("population.resident", [resident(APPLICANT), resident(OTHER)])
        first = cases_pb2_grpc.CasesStub(a.client("approval_bureau").channel).Submit(_case("DY-ACROSS-1"), timeout=30)
        other = cases_pb2_grpc.CasesStub(b.client("approval_bureau").channel)
        assert other.Submit(_case("DY-ACROSS-1"), timeout=30).result == first.result
        again = cases_pb2_grpc.CasesStub(a.client("approval_bureau").channel).SubmitBatch(
            cases_pb2.SubmitBatchRequest(cases=[_case("DY-ACROSS-2", applicant=OTHER)]), timeout=30
        )
        batch = other.SubmitBatch(
            cases_pb2.SubmitBatchRequest(cases=[_case("DY-ACROSS-2", applicant=OTHER), _case("DY-ACROSS-1")]),
            timeout=30,
        ).results
        assert list(batch) == [again.results[0], first.result]
        topic = a.server.topics.cases
    assert count_by_key(kafka_bootstrap, topic, events=True) == {"DY-ACROSS-1": 1, "DY-ACROSS-2": 1}


# -- the ledger keeps where a number's first event is; the event is read back from Kafka ----------------


def _event(digest: str) -> bytes:
    return orjson.dumps({"request_digest": digest, "result": "", "at_ms": 0})


def test_the_ledger_keeps_a_numbers_first_event() -> None:
    ledger = CaseLedger(3)
    ledger.record([("DY-OWN", Recorded("0f" * 16, 2, 7))])  # acknowledged here before the feeder brings it
    ledger.apply(
        [
            Change("DY-1", _event("ab" * 16), 1, 4),
            Change("DY-1", _event("cd" * 16), 0, 9),  # a later duplicate is not the record
            Change("DY-OLD", b'{"result": ""}', 0, 10),  # written before events carried their digest
            Change("DY-OWN", _event("0f" * 16), 2, 7),
        ]
    )
    assert ledger.get("DY-1") == Recorded("ab" * 16, 1, 4)
    assert ledger.get("DY-OWN") == Recorded("0f" * 16, 2, 7)
    assert "DY-OLD" not in ledger and ledger.get("DY-OLD") is None
    assert ledger.positions() == (11, 5, 8)


def test_the_ledger_moves_past_its_own_writes_once_it_reaches_them() -> None:
    ledger = CaseLedger(2)
    digest = "0f" * 16
    ledger.record([("DY-A", Recorded(digest, 0, 1)), ("DY-B", Recorded(digest, 0, 0))])
    assert ledger.positions() == (2, 0)  # nothing of another writer can lie inside offsets 0..1
    ledger.record([("DY-C", Recorded(digest, 1, 3)), ("DY-D", Recorded(digest, 1, 4))])
    assert ledger.positions() == (2, 0)  # offsets 0..2 are another writer's, not read yet
    ledger.apply([Change(f"DY-X{i}", _event("ab" * 16), 1, i) for i in range(3)])
    assert ledger.positions() == (2, 5)
    ledger.record([("DY-E", Recorded(digest, 0, -1))])  # acknowledged without an offset: read back
    assert ledger.positions() == (2, 5)
    assert ledger.get("DY-X2") == Recorded("ab" * 16, 1, 2) and ledger.get("DY-D") == Recorded(digest, 1, 4)


class _Gate:
    """A producer that holds the send of ``DY-HELD`` until released."""

    def __init__(self, producer: AckingProducer) -> None:
        self._producer = producer
        self.holding = asyncio.Event()
        self.release = asyncio.Event()

    async def send(self, topic: str, records: list, headers: list, partition_hint: int | None = None) -> list:
        if records[0][0] == b"DY-HELD":
            self.holding.set()
            await self.release.wait()
        return await self._producer.send(topic, records, headers, partition_hint)


def test_a_writer_announces_each_partition_before_it_writes_there(kafka_bootstrap: str, topic_prefix: str) -> None:
    """Runs of batches in one partition, never the directory's; each announced, and acknowledged, first;
    a partition with a write still in flight stays in the writer's next announcement."""
    topic = f"{topic_prefix}_cases"
    ensure_topics(AdminClient(admin_config(kafka_bootstrap)), [TopicSpec(topic, 6, compacted=False)])
    producer = AckingProducer(producer_config(kafka_bootstrap))
    try:

        async def write() -> tuple[AnnouncedPartition, list[int], int]:
            gate = _Gate(producer)
            writer = AnnouncedPartition(gate, topic, 6, run=3, rng=random.Random(7))  # type: ignore[arg-type]
            chosen = []
            for i in range(12):
                [delivery] = await writer.send([(b"DY-%d" % i, _event("ab" * 16))])
                chosen.append(delivery.partition)
            # a send still in flight while the writer moves on: the next announcement lists its partition
            held = asyncio.ensure_future(writer.send([(b"DY-HELD", _event("ab" * 16))]))
            await gate.holding.wait()
            for i in range(3):  # the rest of the run, then the first of the next
                await writer.send([(b"DY-NEXT-%d" % i, _event("ab" * 16))])
            gate.release.set()
            [delivery] = await held
            await writer.retire()
            with pytest.raises(Unavailable):
                await writer.send([(b"DY-LATE", _event("ab" * 16))])
            return writer, chosen, delivery.partition

        writer, chosen, held = asyncio.run(write())
    finally:
        producer.close()
    runs = [chosen[i : i + 3] for i in range(0, 12, 3)]
    assert all(len(set(run)) == 1 for run in runs) and len({run[0] for run in runs}) > 1
    assert DIRECTORY not in chosen
    lists = [announcement(m.value()) for m in topic_records(kafka_bootstrap, topic, [DIRECTORY])]
    assert {w for w, _ in lists} == {writer.writer}
    assert [sorted(p) for _, p in lists[:4]] == [[run[0]] for run in runs]
    assert held in lists[-2][1] and len(lists[-2][1]) == 2  # the move after it listed it beside the next
    assert lists[-1][1] == frozenset()  # retired


def test_a_partition_no_list_names_is_read_until_a_read_begun_after_that_finishes() -> None:
    directory = WriterDirectory()
    directory.apply("a", frozenset({3}))
    directory.apply("b", frozenset({3, 5}))
    assert directory.wanted() == {DIRECTORY, 3, 5}
    began = directory.applied  # a read begins
    directory.apply("b", frozenset({7}))
    directory.apply("a", frozenset({7}))  # 3 and 5 are left: their writes were acknowledged before
    assert directory.wanted() == {DIRECTORY, 3, 5, 7}
    directory.read_done(began)  # began before they were left: its fetches may predate those writes
    assert directory.wanted() == {DIRECTORY, 3, 5, 7}
    began = directory.applied
    directory.apply("a", frozenset({7, 2}))
    directory.apply("c", frozenset({3}))  # named again before it was dropped
    directory.read_done(began)
    assert directory.wanted() == {DIRECTORY, 2, 3, 7}
    directory.apply("a", frozenset())
    directory.apply("b", frozenset())
    directory.apply("c", frozenset())
    directory.read_done(directory.applied)
    assert directory.wanted() == {DIRECTORY}


def test_the_ledger_reads_announcements_in_its_directory_partition() -> None:
    ledger = CaseLedger(8)
    ledger.apply(
        [
            Change("directory/w1", orjson.dumps({"writer": "w1", "partitions": [4]}), DIRECTORY, 0),
            Change("DY-OLD", _event("ab" * 16), DIRECTORY, 1),  # an event written there before the directory
            Change("DY-1", _event("cd" * 16), 4, 0),
        ]
    )
    assert ledger.get("DY-OLD") == Recorded("ab" * 16, DIRECTORY, 1) and "directory/w1" not in ledger
    plan, began = ledger.read_plan()
    assert plan == {DIRECTORY: 2, 4: 1} and began == 1
    ledger.apply([Change("directory/w2", orjson.dumps({"writer": "w2", "partitions": [6]}), DIRECTORY, 2)])
    assert ledger.announced(plan) == {6: 0}


def test_events_are_read_back_at_their_positions(kafka_bootstrap: str, topic_prefix: str) -> None:
    topic = f"{topic_prefix}_cases"
    ensure_topics(AdminClient(admin_config(kafka_bootstrap)), [TopicSpec(topic, 3, compacted=False)])
    producer = AckingProducer(producer_config(kafka_bootstrap))
    try:
        values = [_event(f"{i:032x}") for i in range(6)]
        sent = [
            asyncio.run(producer.send(topic, [(b"DY-%d" % i, v)], [], partition_hint=i % 3))[0]
            for i, v in enumerate(values)
        ]
        batch = [_event(f"{i:032x}") for i in range(10, 13)]  # one call: one record batch, read from inside
        in_batch = asyncio.run(producer.send(topic, [(b"DY-B%d" % i, v) for i, v in enumerate(batch)], [], 0))
    finally:
        producer.close()
    events = CaseEvents(kafka_bootstrap, topic)
    try:
        positions = [(d.partition, d.offset) for d in reversed(sent)]
        assert events.read([*positions, positions[0]]) == [orjson.loads(v) for v in [*reversed(values), values[-1]]]
        assert events.read([positions[2]]) == [orjson.loads(values[3])]  # the consumer serves read after read
        assert events.read([(d.partition, d.offset) for d in in_batch[1:]]) == [orjson.loads(v) for v in batch[1:]]
    finally:
        events.close()


def test_an_unreadable_topic_is_unavailable() -> None:
    events = CaseEvents(f"127.0.0.1:{free_port()}", "nowhere")  # nothing listens there
    try:
        with pytest.raises(Unavailable, match="could not read the case event"):
            events.read([(0, 0)], timeout=1)
    finally:
        events.close()


class _HeldProducer:
    """Acknowledges every send at once, but holds the send of ``HELD`` until released."""

    def __init__(self) -> None:
        self.sent: list[tuple[int | None, bytes, bytes | None]] = []
        self.release = asyncio.Event()

    async def send(self, topic: str, records: list, headers: list, partition_hint: int | None = None) -> list:
        key, value = records[0]
        self.sent.append((partition_hint, key, value))
        if key == b"HELD":
            await self.release.wait()
        return [Delivery(partition_hint or 0, len(self.sent), None) for _ in records]


def test_a_retiring_writer_refuses_sends_while_it_waits_for_those_in_flight() -> None:
    async def run() -> list[tuple[int | None, bytes, bytes | None]]:
        producer = _HeldProducer()
        writer = AnnouncedPartition(producer, "t", 4, run=5)  # type: ignore[arg-type]
        held = asyncio.ensure_future(writer.send([(b"HELD", b"")]))
        while not producer.sent or producer.sent[-1][1] != b"HELD":
            await asyncio.sleep(0)
        retiring = asyncio.ensure_future(writer.retire())
        await asyncio.sleep(0)
        with pytest.raises(Unavailable):  # the run has four sends left, but the writer is stopping
            await writer.send([(b"LATE", b"")])
        producer.release.set()
        await held
        await retiring
        return producer.sent

    sent = asyncio.run(run())
    keys = [key for _, key, _ in sent]  # announced, the held send, announced empty: no LATE
    assert len(keys) == 3 and keys[1] == b"HELD" and keys[0] == keys[2] and keys[0].startswith(b"directory/")
    assert announcement(sent[-1][2]) == (keys[0][len(b"directory/") :].decode(), frozenset())


def test_announcements_go_through_the_announcer_and_records_through_the_producer() -> None:
    async def run() -> tuple[list, list]:
        records, announcer = _HeldProducer(), _HeldProducer()
        writer = AnnouncedPartition(records, "t", 4, run=1, announcer=announcer)  # type: ignore[arg-type]
        for key in (b"A", b"B"):  # a run of one: each send moves, announcing first
            await writer.send([(key, b"")])
        await writer.retire()
        return records.sent, announcer.sent

    records, announcements = asyncio.run(run())
    assert [key for _, key, _ in records] == [b"A", b"B"]
    assert all(partition == 0 and key.startswith(b"directory/") for partition, key, _ in announcements)
    moved_to = [announcement(value)[1] for _, _, value in announcements]  # type: ignore[index]
    assert len(moved_to) == 3 and moved_to[-1] == frozenset()  # two moves, then the retirement
    assert records[0][0] in moved_to[0] and records[1][0] in moved_to[1]  # each written where announced
