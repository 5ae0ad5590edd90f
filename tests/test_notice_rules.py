"""Licence first, permit after, notify both, decided without a broker: the notice engine reads scripted
market registrations from a fake consumer and writes to a fake producer, on the test's thread. Which
change raises which notice for which department, what a replay or the go-live cut-over changes, when a
position is committed, and which notices are overdue. These are the tests the mutation run
(``make mutation``) judges hub/flows/notices.py by."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, TIMESTAMP_CREATE_TIME, KafkaError, TopicPartition
from pydantic import ValidationError

from hub.flows import notices
from hub.flows.model import Alert, Notice
from hub.flows.notices import NoticeEngine, load_rules, notice_id, overdue_alerts
from hub.flows.stores import NoticeStore
from hub.records.change import Change

RULES = load_rules()
NOW_MS = 1_700_000_000_000  # the engine's clock
WRITTEN_MS = NOW_MS - 5_000  # when the registry wrote a registration
CLAIM_LIMIT_MS = 60_000
CODE, OTHER = "91510600MA6X0001XX", "91510600MA6X0002XX"


def entity(code: str, scope: list[str] | None, status: str = "active", name: str | None = "德阳餐饮") -> dict:
    return {"credit_code": code, "name": name, "status": status, "business_scope": scope}


class Msg:
    """A consumed message as confluent-kafka gives it: a registration, a tombstone (no value) or an error."""

    def __init__(
        self,
        partition: int | None,
        offset: int | None,
        value: dict | None,
        written_ms: int = WRITTEN_MS,
        error: KafkaError | None = None,
    ) -> None:
        self._partition, self._offset, self._written_ms, self._error = partition, offset, written_ms, error
        self._value = None if value is None else orjson.dumps(value)

    def partition(self) -> int | None:
        return self._partition

    def offset(self) -> int | None:
        return self._offset

    def value(self) -> bytes | None:
        return self._value

    def error(self) -> KafkaError | None:
        return self._error

    def timestamp(self) -> tuple[int, int]:
        return TIMESTAMP_CREATE_TIME, self._written_ms


class FakeConsumer:
    """Gives one scripted batch per poll (an empty one: nothing arrived); once they are all given,
    ``drained`` is called (the test stops the engine there). Keeps what the engine asked of it."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.batches: list[list[Msg]] = []
        self.drained: Callable[[], None] = lambda: None
        self._rest: list[Msg] = []
        self.subscribed: list[str] = []
        self.on_assign: Callable[..., None] | None = None
        self.assigned: list[tuple[str, int, int]] = []
        self.seeks: list[tuple[int, int]] = []
        self.commits: list[dict[int, int]] = []
        self.polls = 0
        self.closed = False

    def subscribe(self, topics: list[str], on_assign: Callable[..., None] | None = None) -> None:
        self.subscribed, self.on_assign = topics, on_assign

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = [(tp.topic, tp.partition, tp.offset) for tp in partitions]

    def poll(self, timeout: float | None) -> Msg | None:
        assert timeout is not None and 0 < timeout <= 0.5  # short: the engine notices stop() soon
        self.polls += 1
        if not self.batches:
            self.drained()
            return None
        batch = self.batches.pop(0)
        self._rest = batch[1:]
        return batch[0] if batch else None

    def consume(self, num_messages: int, timeout: float) -> list[Msg]:
        taken, self._rest = self._rest[:num_messages], self._rest[num_messages:]
        return taken

    def seek(self, tp: TopicPartition) -> None:
        assert tp.topic == "market"
        self.seeks.append((tp.partition, tp.offset))

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        assert asynchronous is False and {tp.topic for tp in offsets} == {"market"}
        self.commits.append({tp.partition: tp.offset for tp in offsets})

    def close(self) -> None:
        self.closed = True


class FakeProducer:
    """Delivers at flush; ``outcome`` scripts the next flush: "ok", "refused" (each delivery reports an
    error) or "timed out" (nothing delivered within the flush's timeout)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.produced: list[tuple[str, bytes, bytes]] = []
        self._waiting: list[Callable[[KafkaError | None, Any], None]] = []
        self.outcome = "ok"
        self.closed = False

    def produce(self, topic: str, value: bytes, key: bytes, on_delivery: Callable[..., None]) -> None:
        self.produced.append((topic, key, value))
        self._waiting.append(on_delivery)

    def flush(self, timeout: float | None) -> int:
        assert timeout is not None  # Kafka away must not stop the engine for good
        outcome, self.outcome = self.outcome, "ok"
        if outcome == "timed out":
            return len(self._waiting)
        for report in self._waiting:
            report(KafkaError(KafkaError._MSG_TIMED_OUT) if outcome == "refused" else None, None)
        self._waiting = []
        return 0

    def purge(self) -> None:
        self._waiting = []

    def close(self) -> None:
        self.closed = True

    def notices(self) -> list[Notice]:
        return [Notice(**orjson.loads(value)) for _, _, value in self.produced]


class Stop(threading.Event):
    """The engine's stop flag. Its back-off after a batch Kafka refused returns at once (and is recorded)."""

    def __init__(self) -> None:
        super().__init__()
        self.backoffs: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.backoffs.append(timeout)
        return self.is_set()


@dataclass
class Rig:
    engine: NoticeEngine
    consumer: FakeConsumer
    producers: list[FakeProducer]  # every producer the engine made, the current one last
    stop: Stop

    @property
    def producer(self) -> FakeProducer:
        return self.producers[-1]

    def run(self, *batches: list[Msg]) -> list[Notice]:
        """Runs the engine over ``batches`` on this thread; returns the notices it produced meanwhile."""
        before = sum(len(p.produced) for p in self.producers)
        self.stop.clear()
        self.consumer.batches = list(batches)
        self.engine._run()
        return [n for p in self.producers for n in p.notices()][before:]


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Rig]:
    made: list[FakeProducer] = []
    monkeypatch.setattr(notices, "Consumer", FakeConsumer)
    monkeypatch.setattr(notices, "Producer", lambda config: made.append(FakeProducer(config)) or made[-1])
    monkeypatch.setattr(notices.time, "time", lambda: NOW_MS / 1000)

    def make(store: NoticeStore | None = None, since_ms: int | None = None) -> Rig:
        engine = NoticeEngine(
            "127.0.0.1:9",
            "market",
            "notices",
            "notice-engine",
            store or NoticeStore(),
            RULES,
            {"client.id": "producer"},
            CLAIM_LIMIT_MS / 1000,
            {"client.id": "consumer"},
            since_ms=since_ms,
        )
        stop = engine._stop = Stop()
        consumer, producer = engine._consumer, engine._producer
        assert isinstance(consumer, FakeConsumer) and isinstance(producer, FakeProducer)
        consumer.drained = stop.set
        return Rig(engine, consumer, made, stop)

    return make


def test_the_shipped_rules_name_a_permit_and_its_departments(tmp_path: Path) -> None:
    assert load_rules() == RULES and RULES["catering"].model_dump() == {
        "item": "catering",
        "text": "餐饮服务",
        "permit": "食品经营许可证",
        "departments": ("food_drug",),
    }
    assert RULES["internet_cafe"].departments == ("culture_tourism", "public_security")
    assert len(RULES) == 12 and all(r.permit and r.departments for r in RULES.values())
    with pytest.raises(ValidationError):
        RULES["catering"].permit = "none"  # shared by every replica's engine: read only
    typo = tmp_path / "rules.toml"
    typo.write_text('[[rules]]\nitem = "x"\ntext = "x"\npermit = "x"\ndepartments = ["a"]\ndepartment = "b"\n')
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):  # a misspelt key is an error
        load_rules(typo)


def test_a_registration_notices_each_department_of_each_regulated_item(rig: Callable[..., Rig]) -> None:
    r = rig()
    scope = ["road_freight", "general_trade", "internet_cafe", "catering"]
    produced = r.run([Msg(0, 7, entity(CODE, scope, name=None))])
    assert [(n.scope_item, n.department) for n in produced] == [
        ("catering", "food_drug"),
        ("internet_cafe", "culture_tourism"),
        ("internet_cafe", "public_security"),
        ("road_freight", "transport"),
    ]  # items in order, each item's departments in the rule's order; general trade needs no permit
    assert produced[0] == Notice(
        id=f"{CODE}:catering:food_drug",
        department="food_drug",
        credit_code=CODE,
        entity_name="",
        scope_item="catering",
        permit="食品经营许可证",
        reason="registered",
        state="open",
        created_at_ms=NOW_MS,
        registered_at_ms=WRITTEN_MS,
        claim_due_ms=NOW_MS + CLAIM_LIMIT_MS,
    )
    assert [(topic, key) for topic, key, _ in r.producer.produced] == [
        ("notices", f"notice:{n.id}".encode()) for n in produced
    ]
    assert all(n.id == notice_id(CODE, n.scope_item, n.department) for n in produced)
    assert r.engine.created == 4 and r.consumer.commits == [{0: 8}]


@pytest.mark.parametrize(
    "registration",
    [
        entity(CODE, ["catering"], status="revoked"),
        entity(CODE, None),
        {"credit_code": CODE, "name": "x", "status": "active"},
        entity(CODE, ["general_trade", "consulting"]),
    ],
    ids=["not active", "scope null", "no scope", "no regulated item"],
)
def test_a_registration_without_an_active_regulated_item_notices_nobody(
    rig: Callable[..., Rig], registration: dict
) -> None:
    r = rig()
    assert r.run([Msg(0, 0, registration)]) == []
    assert r.engine.created == 0 and r.consumer.commits == [{0: 1}]


def _store_with(notice: Notice) -> NoticeStore:
    store = NoticeStore()
    store.apply([Change(f"notice:{notice.id}", orjson.dumps(asdict(notice)), 0, 0)])
    return store


def test_an_item_added_later_is_a_scope_change_and_nothing_is_noticed_twice(rig: Callable[..., Rig]) -> None:
    r = rig()
    first = r.run([Msg(0, 0, entity(CODE, ["catering"])), Msg(0, 1, entity(CODE, ["catering"]))])
    assert [(n.scope_item, n.reason) for n in first] == [("catering", "registered")]  # the same record twice
    assert first[0].entity_name == "德阳餐饮"
    # the engine's own notice is not in the store yet: it still knows the entity
    later = r.run([Msg(0, 2, entity(CODE, ["catering", "road_freight"])), Msg(0, 3, entity(OTHER, ["catering"]))])
    assert [(n.credit_code, n.scope_item, n.reason) for n in later] == [
        (CODE, "road_freight", "scope_changed"),
        (OTHER, "catering", "registered"),
    ]
    assert r.consumer.commits == [{0: 2}, {0: 4}]


def test_a_notice_already_in_the_store_is_not_written_again_and_makes_the_entity_known(
    rig: Callable[..., Rig],
) -> None:
    stored, _ = rig().run([Msg(0, 0, entity(CODE, ["internet_cafe"]))])
    r = rig(_store_with(stored))  # another replica wrote one of the two; this one owns the partition now
    produced = r.run([Msg(0, 0, entity(CODE, ["internet_cafe", "drug_retail"]))])
    assert [(n.scope_item, n.department, n.reason) for n in produced] == [
        ("drug_retail", "food_drug", "scope_changed"),
        ("internet_cafe", "public_security", "scope_changed"),
    ]


def test_going_live_notices_only_what_changes_after_the_cut_over(rig: Callable[..., Rig]) -> None:
    go_live = WRITTEN_MS
    r = rig(since_ms=go_live)
    history = [
        Msg(0, 0, entity(CODE, ["catering", "travel_agency"]), written_ms=go_live - 1),
        Msg(0, 1, entity(OTHER, ["catering"], status="revoked"), written_ms=go_live - 1),
    ]
    assert r.run(history) == [] and r.consumer.commits == [{0: 2}]
    produced = r.run(
        [
            Msg(0, 2, entity(CODE, ["catering", "road_freight"]), written_ms=go_live),  # at the cut-over: after it
            Msg(0, 3, entity(OTHER, ["catering"]), written_ms=go_live),  # reactivated
        ]
    )
    assert [(n.credit_code, n.scope_item, n.reason) for n in produced] == [
        (CODE, "road_freight", "scope_changed"),
        (OTHER, "catering", "scope_changed"),
    ]
    # travel_agency was dropped after go-live: added again, it is news
    produced = r.run([Msg(0, 4, entity(CODE, ["catering", "road_freight", "travel_agency"]), written_ms=go_live)])
    assert [(n.scope_item, n.reason) for n in produced] == [("travel_agency", "scope_changed")]


def test_positions_are_committed_per_partition_after_the_notices_and_past_what_is_not_a_record(
    rig: Callable[..., Rig],
) -> None:
    r = rig()
    failed = KafkaError(KafkaError._PARTITION_EOF)
    produced = r.run(
        [Msg(0, 4, entity(CODE, ["catering"])), Msg(0, 5, None, error=failed), Msg(1, 9, None)],
        [],  # a poll that found nothing: the engine polls again
        [Msg(None, None, None, error=failed), Msg(2, None, entity(OTHER, ["catering"]))],  # errors have no position
        [Msg(1, 10, entity(OTHER, ["catering"]))],
    )
    assert [n.credit_code for n in produced] == [CODE, OTHER]
    assert r.consumer.commits == [{0: 5, 1: 10}, {1: 11}]  # a tombstone is passed over; an error is not read


@pytest.mark.parametrize("outcome", ["refused", "timed out"])
def test_a_batch_whose_notices_kafka_did_not_take_is_read_again(rig: Callable[..., Rig], outcome: str) -> None:
    r = rig()
    batch = [Msg(0, 3, entity(CODE, ["catering"])), Msg(1, 8, entity(OTHER, ["road_freight"])), Msg(0, 4, None)]
    r.producer.outcome = outcome
    produced = r.run(batch, batch)
    assert r.consumer.seeks == [(0, 3), (1, 8)] and r.stop.backoffs == [1.0]
    # Written again by a fresh producer: on tansu the one whose batch timed out is fenced for good.
    assert len(r.producers) == 2 and r.producers[0].closed and r.producer.config == r.producers[0].config
    assert r.consumer.commits == [{0: 5, 1: 9}]  # only the second time
    assert [n.id for n in produced[:2]] == [n.id for n in produced[2:]]  # forgotten, so written again


@pytest.mark.parametrize("since_ms", [None, WRITTEN_MS], ids=["committed position", "go-live"])
def test_start_reads_from_the_committed_position_or_for_go_live_from_the_beginning(
    rig: Callable[..., Rig], since_ms: int | None
) -> None:
    r = rig(since_ms=since_ms)
    config = r.consumer.config
    assert (config["group.id"], config["client.id"], config["bootstrap.servers"]) == (
        "notice-engine",
        "consumer",
        "127.0.0.1:9",
    )
    assert config["enable.partition.eof"] is False and r.producer.config == {"client.id": "producer"}
    r.engine.start()
    r.engine._thread.join()  # it finds nothing and stops
    assert r.consumer.polls == 1 and r.engine._thread.daemon  # a hub that never called stop() still exits
    r.engine.stop()
    assert r.consumer.subscribed == ["market"] and r.consumer.closed and r.producer.closed
    if since_ms is None:
        assert r.consumer.on_assign is None  # the group's committed positions
    else:
        assert r.consumer.on_assign is not None
        r.consumer.on_assign(r.consumer, [TopicPartition("market", 0, 42), TopicPartition("market", 1, 7)])
        assert r.consumer.assigned == [("market", 0, OFFSET_BEGINNING), ("market", 1, OFFSET_BEGINNING)]


OPEN = Notice(
    id=f"{CODE}:catering:food_drug",
    department="food_drug",
    credit_code=CODE,
    entity_name="德阳餐饮",
    scope_item="catering",
    permit="食品经营许可证",
    reason="registered",
    state="open",
    created_at_ms=NOW_MS,
    claim_due_ms=NOW_MS + CLAIM_LIMIT_MS,
)
CLAIMED = OPEN.claimed("food_drug", NOW_MS + 1_000, feedback_limit_ms=120_000)  # feedback due at +121 s


@pytest.mark.parametrize(
    ("notice", "now_ms", "kind", "due_ms"),
    [
        (OPEN, OPEN.claim_due_ms, None, 0),  # due now: not yet late
        (OPEN, OPEN.claim_due_ms + 1, "claim_overdue", OPEN.claim_due_ms),
        (CLAIMED, OPEN.claim_due_ms + 1, None, 0),  # claimed in time
        (CLAIMED, CLAIMED.feedback_due_ms + 1, "feedback_overdue", NOW_MS + 121_000),
        (CLAIMED.done("permit_issued", "JY15106030001234", NOW_MS + 2_000), NOW_MS + 10**9, None, 0),
    ],
    ids=["open, due now", "open, late", "claimed in time", "claimed, no feedback", "fed back"],
)
def test_overdue_alerts_follow_the_notice(notice: Notice, now_ms: int, kind: str | None, due_ms: int) -> None:
    store = _store_with(notice)
    alerts = overdue_alerts(store, now_ms)
    if kind is None:
        assert alerts == []
        return
    expected = Alert(
        id=f"{notice.id}:{kind}",
        notice_id=notice.id,
        department="food_drug",
        kind=kind,  # type: ignore[arg-type]
        raised_at_ms=due_ms,
        due_ms=due_ms,
    )
    assert alerts == [expected]
    store.apply([Change(f"alert:{expected.id}", orjson.dumps(asdict(expected)), 0, 1)])
    assert overdue_alerts(store, now_ms) == []  # raised once; every replica sees it was


def test_overdue_alerts_cover_every_late_notice() -> None:
    done = CLAIMED.done("inspected", "", NOW_MS + 2_000)
    other = replace(OPEN, id=f"{OTHER}:catering:food_drug", credit_code=OTHER, created_at_ms=NOW_MS + 1)
    store = NoticeStore()
    store.apply(
        [
            Change(f"notice:{n.id}", orjson.dumps(asdict(n)), 0, i)
            for i, n in enumerate([replace(done, id="done", created_at_ms=NOW_MS - 1), OPEN, other])
        ]
    )
    assert [a.notice_id for a in overdue_alerts(store, NOW_MS + 10**9)] == [OPEN.id, other.id]  # past one on time
