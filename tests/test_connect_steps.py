"""The connector runtime's steps one by one, with no broker and no hub: the publisher is given a fake
Publish stub that answers as scripted, the retry queue and the committer a clock the test moves."""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from hub.connect.batches import Batch, Call, Entry, RunStats, ToRetry
from hub.connect.committer import CommitPolicy, OffsetCommitter
from hub.connect.mapper import Mapper
from hub.connect.publisher import MAX_INTERNAL, ConnectorFailed, Publisher
from hub.connect.retries import Retry, RetryQueue
from hub.connect.source import Connector, MappingError, Source, SourceRecord
from hub.connect.state import DeadLetterFile, OffsetStore
from hub.v1 import common_pb2, exchange_pb2

OK = grpc.StatusCode.OK.value[0]
INVALID = grpc.StatusCode.INVALID_ARGUMENT.value[0]
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE.value[0]


class Things(Connector):
    """Rows ``{"id": ..., "v": ...}``; a row without ``id`` cannot be mapped; ``gone`` marks a delete."""

    name = "things"
    resource = "test.thing"
    department = "test"

    def map(self, row: Mapping[str, Any]) -> dict[str, Any]:
        if not row.get("id"):
            raise MappingError("must not be empty", field="id")
        return {"id": row["id"], "v": row.get("v")}

    def key(self, row: Mapping[str, Any]) -> str:
        return str(row["id"])

    def deleted(self, row: Mapping[str, Any]) -> bool:
        return bool(row.get("gone"))

    def default_source(self, location: str) -> Source:
        raise NotImplementedError


def rec(offset: int, row: Mapping[str, Any] | None = None, **kw: Any) -> SourceRecord:
    return SourceRecord("p", offset, {"id": f"k{offset}", "v": offset} if row is None else row, line=offset, **kw)


def mapper(tmp_path: Path) -> Mapper:
    return Mapper(Things(), DeadLetterFile(tmp_path / "dead-letter.jsonl"), RunStats())


# -- mapper ----------------------------------------------------------------------------------------


def test_mapper_dead_letters_unreadable_and_unmappable_rows_and_keeps_their_place(tmp_path: Path) -> None:
    m = mapper(tmp_path)
    records = [
        rec(1),
        rec(2, {"text": "{broken"}, error="line 2: not valid JSON"),
        rec(3, {"id": "", "v": 3}),
        rec(4, {"id": "k4", "gone": True}),
        rec(5, {}, control=True),
    ]
    [batch] = m.batches(records, 10)
    assert [e.source.offset for e in batch.entries] == [1, 2, 3, 4, 5]  # each keeps its place
    assert [e.done for e in batch.entries] == [False, True, True, False, True]
    assert batch.remaining == 2 and batch.entries[0].payload == b'{"id":"k1","v":1}'
    assert batch.entries[3].delete and batch.entries[3].key == "k4"
    assert [m.key_of(e) for e in (batch.entries[0], batch.entries[3])] == ["k1", "k4"]
    letters = m.dead_letter.entries()
    assert {e["partition"] for e in letters} == {"p"}
    assert [(e["line"], e["stage"], e["reason"]) for e in letters] == [
        (2, "mapping", "line 2: not valid JSON"),
        (3, "mapping", "id: must not be empty"),
    ]
    assert letters[0]["row"] == {"text": "{broken"}
    assert (m.stats.read, m.stats.dead_lettered) == (4, 2)  # the control record is not a row


def test_mapper_cuts_batches_numbered_in_source_order(tmp_path: Path) -> None:
    m = mapper(tmp_path)
    first = m.batches([rec(i) for i in range(1, 6)], 2)
    second = m.batches([rec(6)], 2)
    assert [len(b.entries) for b in first] == [2, 2, 1]
    assert [b.seq for b in (*first, *second)] == [0, 1, 2, 3]
    assert m.stats.read == 6  # counted over every call


def test_mapper_lets_a_connector_bug_through(tmp_path: Path) -> None:
    with pytest.raises(KeyError):  # not a bad row: the connector must be fixed, nothing is dead-lettered
        mapper(tmp_path).entry(rec(1, {"gone": True}))


# -- publisher -------------------------------------------------------------------------------------


class Metadatum(NamedTuple):
    key: str
    value: str | bytes


class HubError(grpc.RpcError):
    """What a failed call raises: the error is also the call (code, details, trailing metadata)."""

    def __init__(self, code: grpc.StatusCode, details: str, trailers: tuple[Metadatum, ...] = ()) -> None:
        self._code, self._details, self._trailers = code, details, trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[Metadatum, ...]:
        return self._trailers


class Answered:
    """A future already answered: the callback runs at once, as gRPC's thread would run it later."""

    def __init__(self, answer: exchange_pb2.PublishResponse | grpc.RpcError) -> None:
        self.answer = answer

    def result(self, timeout: float | None = None) -> exchange_pb2.PublishResponse:
        if isinstance(self.answer, grpc.RpcError):
            raise self.answer
        return self.answer

    def add_done_callback(self, fn: Callable[[Answered], None]) -> None:
        fn(self)


class FakeExchange:
    """A Publish stub whose answers come from ``answer(request)``; it keeps the requests."""

    def __init__(self, answer: Callable[[exchange_pb2.PublishRequest], exchange_pb2.PublishResponse]) -> None:
        self.answer = answer
        self.requests: list[exchange_pb2.PublishRequest] = []
        self.timeouts: list[float | None] = []
        self.Publish = self

    def future(self, request: exchange_pb2.PublishRequest, timeout: float | None = None) -> Answered:
        self.requests.append(request)
        self.timeouts.append(timeout)
        try:
            return Answered(self.answer(request))
        except grpc.RpcError as err:
            return Answered(err)


def sent(request: exchange_pb2.PublishRequest) -> list[exchange_pb2.Record]:
    """The records of a call, as ``records`` carries them or one per line of ``jsonl``."""
    return list(request.records) or [exchange_pb2.Record(json=line) for line in request.jsonl.split(b"\n")]


def codes(*results: int) -> Callable[[exchange_pb2.PublishRequest], exchange_pb2.PublishResponse]:
    def answer(request: exchange_pb2.PublishRequest) -> exchange_pb2.PublishResponse:
        assert len(sent(request)) == len(results)
        return exchange_pb2.PublishResponse(
            results=[exchange_pb2.RecordResult(code=c, message=f"reason {i}") for i, c in enumerate(results)]
        )

    return answer


def fails(err: grpc.RpcError) -> Callable[[exchange_pb2.PublishRequest], exchange_pb2.PublishResponse]:
    def answer(request: exchange_pb2.PublishRequest) -> exchange_pb2.PublishResponse:
        raise err

    return answer


def entries_of(tmp_path: Path, n: int) -> tuple[Batch, list[Entry]]:
    [batch] = mapper(tmp_path).batches([rec(i) for i in range(1, n + 1)], n)
    return batch, list(batch.entries)


def publisher(tmp_path: Path, stub: FakeExchange) -> Publisher:
    return Publisher(stub, "things", "test.thing", DeadLetterFile(tmp_path / "hub-letters.jsonl"), RunStats(), 5.0)


def publish(p: Publisher, call: Call) -> list[ToRetry]:
    p.send(call)
    assert p.in_flight == 1
    retries = p.settle()
    assert p.in_flight == 0
    return retries


def test_publisher_settles_each_record_by_its_own_status(tmp_path: Path) -> None:
    batch, (a, b, c) = entries_of(tmp_path, 3)
    stub = FakeExchange(codes(OK, INVALID, UNAVAILABLE))
    p = publisher(tmp_path, stub)
    [retry] = publish(p, Call(batch, (a, b, c)))
    assert not stub.requests[0].records  # upserts only: one JSON Lines blob
    assert [r.json for r in sent(stub.requests[0])] == [a.payload, b.payload, c.payload]
    assert stub.requests[0].resource == "test.thing" and stub.timeouts == [5.0]  # a call never waits forever
    assert a.published and a.done
    assert b.done and not b.published
    assert not c.done and retry == ToRetry(batch, (c,))
    assert batch.remaining == 1 and not batch.settled
    [letter] = p.dead_letter.entries()
    assert (letter["stage"], letter["reason"], letter["record"]) == ("hub", "reason 1", b.record)
    assert (p.stats.published, p.stats.dead_lettered, p.stats.calls) == (1, 1, 1)


def test_publisher_sends_deletes_by_key_and_resends_only_what_failed_retriably(tmp_path: Path) -> None:
    [batch] = mapper(tmp_path).batches([rec(1), rec(2, {"id": "k2", "gone": True}), rec(3), rec(4)], 4)
    a, b, c, d = batch.entries
    stub = FakeExchange(codes(OK, OK, UNAVAILABLE, INVALID))
    [retry] = publish(publisher(tmp_path, stub), Call(batch, (a, b), resend=(c, d)))
    assert stub.requests[0].records[1] == exchange_pb2.Record(key="k2", delete=True)  # a delete: records
    assert not stub.requests[0].jsonl
    older = Publisher(stub, "things", "test.thing", DeadLetterFile(tmp_path / "older.jsonl"), RunStats(), 5.0, False)
    stub.answer = codes(OK)
    older.send(Call(batch, (a,)))
    assert stub.requests[1].records[0].json == a.payload and not stub.requests[1].jsonl  # for a hub before jsonl
    assert retry == ToRetry(batch, (), resend=(c,))  # a re-sent record the hub refused was accepted before


def test_publisher_dead_letters_each_record_of_an_invalid_call_with_its_own_reason(tmp_path: Path) -> None:
    batch, (a, b, c) = entries_of(tmp_path, 3)
    violation = error_details_pb2.BadRequest.FieldViolation
    bad = error_details_pb2.BadRequest(
        field_violations=[
            violation(field="records[1].v", description="v: too big"),
            violation(field="records[2].tags[0]", description="tags: not text"),
        ]
    )
    detail = any_pb2.Any()
    detail.Pack(bad)
    status = status_pb2.Status(code=INVALID, message="every record was rejected", details=[detail])
    err = HubError(
        grpc.StatusCode.INVALID_ARGUMENT,
        "every record was rejected",
        (Metadatum("grpc-status-details-bin", status.SerializeToString()),),
    )
    p = publisher(tmp_path, FakeExchange(fails(err)))
    assert publish(p, Call(batch, (a, b, c))) == []
    assert [e["reason"] for e in p.dead_letter.entries()] == [
        "every record was rejected",
        "v: too big",
        "tags: not text",
    ]
    assert batch.settled and not (a.published or b.published or c.published) and p.stats.dead_lettered == 3


def test_publisher_retries_a_retriable_call_with_the_hubs_advice(tmp_path: Path) -> None:
    batch, (a, b) = entries_of(tmp_path, 2)
    err = HubError(grpc.StatusCode.RESOURCE_EXHAUSTED, "saturated", (Metadatum("retry-after-ms", "300"),))
    [retry] = publish(publisher(tmp_path, FakeExchange(fails(err))), Call(batch, (a,), resend=(b,)))
    assert retry == ToRetry(batch, (a,), resend=(b,), retry_after=0.3)


@pytest.mark.parametrize("resending", [False, True])
def test_publisher_isolates_records_the_hub_fails_on(tmp_path: Path, resending: bool) -> None:
    batch, (a, b, c) = entries_of(tmp_path, 3)
    resend = (c,) if resending else ()  # a newer value of a retried key: it still goes after them
    err = HubError(grpc.StatusCode.INTERNAL, "boom")
    p = publisher(tmp_path, FakeExchange(fails(err)))
    [retry] = publish(p, Call(batch, (a, b), resend))
    assert retry == ToRetry(batch, (a, b), resend, one_per_call=True)  # one call each, to find the one
    for attempt in range(1, MAX_INTERNAL):
        assert publish(p, Call(batch, (a,), resend)) == [ToRetry(batch, (a,), resend)]
        assert a.internal_failures == attempt and not a.done
    assert publish(p, Call(batch, (a,), resend)) == ([ToRetry(batch, (), resend)] if resending else [])
    [letter] = p.dead_letter.entries()
    assert a.done and "INTERNAL" in letter["reason"] and str(MAX_INTERNAL) in letter["reason"]


@pytest.mark.parametrize("code", [grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND])
def test_publisher_stops_on_what_retrying_cannot_fix(tmp_path: Path, code: grpc.StatusCode) -> None:
    batch, entries = entries_of(tmp_path, 1)
    p = publisher(tmp_path, FakeExchange(fails(HubError(code, "no grant"))))
    p.send(Call(batch, tuple(entries)))
    with pytest.raises(
        ConnectorFailed, match=re.escape(f"things: the hub refused Publish to test.thing: {code.name}: no grant")
    ):
        p.settle()


@pytest.mark.parametrize(
    ("code", "reason"),
    [(grpc.StatusCode.FAILED_PRECONDITION.value[0], "FAILED_PRECONDITION: reason 0"), (99, "UNKNOWN: reason 0")],
    ids=["not retriable", "unknown code"],
)
def test_publisher_dead_letters_a_record_refused_for_another_reason(tmp_path: Path, code: int, reason: str) -> None:
    batch, (a,) = entries_of(tmp_path, 1)
    p = publisher(tmp_path, FakeExchange(codes(code)))
    assert publish(p, Call(batch, (a,))) == []  # no retry fixes it, and the hub has not taken it
    [letter] = p.dead_letter.entries()
    assert {k: letter[k] for k in ("stage", "partition", "line", "reason", "row", "record")} == {
        "stage": "hub",
        "partition": "p",
        "line": 1,
        "reason": reason,
        "row": {"id": "k1", "v": 1},
        "record": {"id": "k1", "v": 1},
    }
    assert a.done and not a.published and batch.settled and p.stats.dead_lettered == 1


def test_publisher_counts_calls_in_flight_and_keeps_the_last_offsets(tmp_path: Path) -> None:
    batch, entries = entries_of(tmp_path, 3)
    offsets = iter(
        [[common_pb2.PartitionOffset(partition=0, offset=41)], [common_pb2.PartitionOffset(partition=1, offset=7)], []]
    )
    stub = FakeExchange(
        lambda _: exchange_pb2.PublishResponse(results=[exchange_pb2.RecordResult(code=OK)], offsets=next(offsets))
    )
    p = publisher(tmp_path, stub)
    assert p.last_offsets == []
    for e in entries:
        p.send(Call(batch, (e,)))
    assert (p.in_flight, p.stats.calls) == (3, 3)
    assert p.settle() == []  # every answer by now, each acknowledged: nothing to retry
    assert (p.in_flight, p.stats.published) == (0, 3) and batch.settled
    assert p.last_offsets == [common_pb2.PartitionOffset(partition=1, offset=7)]  # the last answer that had any


@pytest.mark.parametrize("resending", [False, True])
def test_publisher_fails_loudly_on_an_answer_without_a_result_per_record(tmp_path: Path, resending: bool) -> None:
    batch, (a, b) = entries_of(tmp_path, 2)
    results = [exchange_pb2.RecordResult(code=OK)] if resending else []  # one short either way
    p = publisher(tmp_path, FakeExchange(lambda _: exchange_pb2.PublishResponse(results=results)))
    p.send(Call(batch, (a,), resend=(b,) if resending else ()))
    with pytest.raises(ValueError):  # a record without a result would never be done, nor its offset stored
        p.settle()


class Unanswered:
    """A call gRPC answers later, from another thread: acknowledged once ``answer()`` runs."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[Unanswered], None]] = []
        self.Publish = self

    def future(self, request: exchange_pb2.PublishRequest, timeout: float | None = None) -> Unanswered:
        return self

    def result(self, timeout: float | None = None) -> exchange_pb2.PublishResponse:
        return exchange_pb2.PublishResponse(results=[exchange_pb2.RecordResult(code=OK)])

    def add_done_callback(self, fn: Callable[[Unanswered], None]) -> None:
        self.callbacks.append(fn)

    def answer(self) -> None:
        time.sleep(0.05)  # only makes the answer come after settle() started waiting; nothing waits on it
        for fn in self.callbacks:
            fn(self)


def test_publisher_settle_waits_for_the_first_answer_only_when_asked(tmp_path: Path) -> None:
    batch, (a,) = entries_of(tmp_path, 1)
    call = Unanswered()
    p = publisher(tmp_path, call)  # type: ignore[arg-type]
    p.send(Call(batch, (a,)))
    assert p.settle() == [] and p.in_flight == 1  # not answered yet: returns at once
    threading.Thread(target=call.answer).start()
    assert p.settle(timeout=30.0) == [] and p.in_flight == 0 and a.published


# -- retry queue -----------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def queue(tmp_path: Path, clock: Clock) -> tuple[RetryQueue, Mapper]:
    m = mapper(tmp_path)
    return RetryQueue("things", m.key_of, m.stats, 1.0, 8.0, clock), m


def test_retry_entries_order_by_batch_then_due_then_queueing() -> None:
    batch = Batch(0, [])
    old_late = Retry(1, due=9.0, queued=5, batch=batch, entries=(), resend=())
    new_early = Retry(2, due=1.0, queued=0, batch=batch, entries=(), resend=())
    first_split = Retry(1, due=9.0, queued=4, batch=Batch(7, []), entries=(), resend=())
    assert sorted([new_early, old_late, first_split]) == [first_split, old_late, new_early]


def test_retry_queue_gives_the_oldest_batch_first_once_due(tmp_path: Path) -> None:
    clock = Clock()
    q, m = queue(tmp_path, clock)
    older, newer = m.batches([rec(1), rec(2)], 1)
    q.schedule(ToRetry(newer, tuple(newer.entries)))
    q.schedule(ToRetry(older, tuple(older.entries)))
    older.attempts = 5  # its next backoff is longer: it still goes first
    q.schedule(ToRetry(older, ()))
    assert len(q) == 3 and q.oldest_batch() == older.seq
    assert q.pop_due([]) is None  # not due yet
    clock.now += 1000
    calls = [q.pop_due([newer]) for _ in range(3)]
    assert [c.batch.seq if c else None for c in calls] == [older.seq, older.seq, newer.seq]
    assert q.pop_due([]) is None and q.oldest_batch() is None
    assert m.stats.retried == 2


@pytest.mark.parametrize(("jitter", "factor"), [("least", 0.5), ("most", 1.0)])
def test_retry_queue_backs_off_exponentially_up_to_the_maximum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jitter: str, factor: float
) -> None:
    monkeypatch.setattr(random, "uniform", lambda least, most: {"least": least, "most": most}[jitter])
    q, m = queue(tmp_path, Clock(now=0.0))
    assert not q.holding() and q.next_due() is None  # nothing holds until the hub asks
    [batch] = m.batches([rec(1)], 1)
    delays = [q.schedule(ToRetry(batch, ())) for _ in range(6)]
    assert delays == [factor * d for d in (1.0, 2.0, 4.0, 8.0, 8.0, 8.0)]
    assert q.next_due() == delays[0]


def test_retry_queue_keeps_a_split_batchs_order_and_holds_for_the_hub(tmp_path: Path) -> None:
    clock = Clock()
    q, m = queue(tmp_path, clock)
    [batch] = m.batches([rec(i) for i in range(1, 6)], 5)
    a, b, c, d, newer = batch.entries
    delay = q.schedule(ToRetry(batch, (a, b, c, d), resend=(newer,), retry_after=30.0, one_per_call=True))
    assert delay == 30.0 and q.holding() and q.held_until == clock.now + 30.0
    clock.now += 29.0
    assert q.pop_due([]) is None and q.holding()
    clock.now += 1.0
    assert not q.holding()
    # the re-sent records go once, after the first
    calls = [Call(batch, (a,), (newer,)), Call(batch, (b,)), Call(batch, (c,)), Call(batch, (d,))]
    assert [q.pop_due([]) for _ in range(4)] == calls


def test_a_retry_carries_the_newer_acknowledged_records_of_its_keys(tmp_path: Path) -> None:
    clock = Clock()
    q, m = queue(tmp_path, clock)
    k = {"id": "k"}
    first, later, last = m.batches(
        [
            rec(1, {**k, "v": 1}),
            rec(2, {**k, "v": 2}),
            rec(3, {"id": "x"}),
            rec(4, {**k, "v": 4}),
            rec(5, {**k, "v": 5}),
        ],
        2,
    )
    old, same_batch_newer = first.entries
    other, newer = later.entries
    newest = last.entries[0]
    for e in (same_batch_newer, other, newer, newest):
        e.published = True
    newest.published = False  # not acknowledged (still in flight or failed): nothing to restore
    q.schedule(ToRetry(first, (old,)))
    clock.now += 1000
    call = q.pop_due([first, later, last])
    assert call == Call(first, (old,), resend=(newer,))  # the newest acknowledged value of k comes last again


@pytest.mark.parametrize(
    ("rows", "carried"),
    [
        ([("k", False), ("k", True)], [1]),  # acknowledged after the retried one: written after it again
        ([("k", True), ("k", False)], []),  # acknowledged before it: the retried one is the newer
        ([("k", False), ("x", True), ("k", False)], []),  # another key's; one not acknowledged
    ],
    ids=["newer", "older", "other key, unacknowledged"],
)
def test_a_retry_carries_only_newer_acknowledged_records_of_its_keys_from_its_own_batch(
    tmp_path: Path, rows: list[tuple[str, bool]], carried: list[int]
) -> None:
    clock = Clock()
    q, m = queue(tmp_path, clock)
    [batch] = m.batches([rec(i, {"id": key, "v": i}) for i, (key, _) in enumerate(rows)], len(rows))
    for e, (_, published) in zip(batch.entries, rows, strict=True):
        e.published = published
    retried = next(e for e in batch.entries if not e.published)
    q.schedule(ToRetry(batch, (retried,)))
    clock.now += 1000
    resend = tuple(batch.entries[i] for i in carried)
    assert q.pop_due([batch]) == Call(batch, (retried,), resend)  # its own batch is not yet committed either


# -- committer -------------------------------------------------------------------------------------


class Committed:
    def __init__(self, tmp_path: Path, policy: CommitPolicy | None = None) -> None:
        self.clock = Clock()
        self.store = OffsetStore(tmp_path / "offsets.json")
        self.dead_letter = DeadLetterFile(tmp_path / "dead-letter.jsonl")
        self.told: list[dict[str, Any]] = []
        self.committer = OffsetCommitter(
            self.store, self.dead_letter, lambda o: self.told.append(dict(o)), policy, self.clock
        )

    def stored(self) -> dict[str, Any]:
        return OffsetStore(self.store.path).load()  # what a restarted connector would read


def batches(tmp_path: Path, sizes: list[int]) -> list[Batch]:
    m = mapper(tmp_path / "m")
    out: list[Batch] = []
    n = 0
    for size in sizes:
        out.extend(m.batches([rec(i) for i in range(n + 1, n + size + 1)], size))
        n += size
    return out


def ack(batch: Batch, *entries: Entry) -> None:
    for e in entries or batch.entries:
        e.published = True
        batch.resolve(e)


def test_committer_stores_nothing_when_a_batch_is_tracked(tmp_path: Path) -> None:
    c = Committed(tmp_path)
    for batch in batches(tmp_path, [2, 2]):
        c.committer.track(batch)
    c.committer.commit()
    assert c.stored() == {} and c.told == []


def test_committer_never_stores_past_an_unacknowledged_entry(tmp_path: Path) -> None:
    c = Committed(tmp_path)
    first, second, third = batches(tmp_path, [2, 2, 2])
    for batch in (first, second, third):
        c.committer.track(batch)
    ack(third)
    ack(second, second.entries[1])  # its first record is in flight, or failed
    c.committer.commit()
    assert c.stored() == {}
    ack(first)
    c.committer.commit()
    assert c.stored() == {"p": 2} and c.told == [{"p": 2}]
    ack(second, second.entries[0])
    c.committer.commit()
    assert c.stored() == {"p": 6}


def test_committer_never_stores_from_a_batch_with_a_retry_pending(tmp_path: Path) -> None:
    c = Committed(tmp_path)
    first, second = batches(tmp_path, [2, 2])
    for batch in (first, second):
        c.committer.track(batch)
        ack(batch)
    c.committer.commit(before=first.seq)  # its own records are in, but its retry re-sends newer ones
    assert c.stored() == {}
    c.committer.commit(before=second.seq)
    assert c.stored() == {"p": 2}
    c.committer.commit()
    assert c.stored() == {"p": 4}


def test_committer_syncs_the_dead_letter_before_storing(tmp_path: Path) -> None:
    c = Committed(tmp_path)
    synced: list[bool] = []
    c.dead_letter.sync = lambda: synced.append(c.stored() == {})  # type: ignore[method-assign]
    [batch] = batches(tmp_path, [1])
    c.committer.track(batch)
    ack(batch)
    c.committer.commit()
    assert synced == [True] and c.stored() == {"p": 1}


def test_commit_policy_stores_every_so_many_records_or_seconds(tmp_path: Path) -> None:
    c = Committed(tmp_path, CommitPolicy(every_s=5.0, every_records=4))
    bs = batches(tmp_path, [2, 2, 2, 2])
    for batch in bs:
        c.committer.track(batch)
        ack(batch)
    c.committer.commit(before=bs[1].seq)
    assert c.stored() == {}  # 2 records ready, 0 s passed
    c.committer.commit(before=bs[2].seq)
    assert c.stored() == {"p": 4}  # 4 records
    c.committer.commit(before=bs[3].seq)
    assert c.stored() == {"p": 4}
    c.clock.now += 5.0
    c.committer.commit(before=bs[3].seq)
    assert c.stored() == {"p": 6}  # 5 s
    c.committer.commit(force=True)
    assert c.stored() == {"p": 8}  # the end of a run stores what is ready


def test_commit_policy_counts_the_records_ready_from_the_last_store(tmp_path: Path) -> None:
    c = Committed(tmp_path, CommitPolicy(every_records=2))
    for stored, batch in zip([{}, {"p": 2}, {"p": 2}, {"p": 4}], batches(tmp_path, [1, 1, 1, 1]), strict=True):
        c.committer.track(batch)
        ack(batch)
        c.committer.commit()
        assert c.stored() == stored


def test_commit_policy() -> None:
    assert CommitPolicy().due(0.0, 1)
    assert CommitPolicy(every_s=0.0, every_records=1).due(0.0, 1)  # the smallest allowed
    assert not CommitPolicy(every_s=1.0).due(0.5, 10**6)
    assert CommitPolicy(every_s=1.0).due(1.0, 1)
    assert CommitPolicy(every_records=3).due(0.0, 3) and not CommitPolicy(every_records=3).due(99.0, 2)
    for wrong in ({"every_s": -1.0}, {"every_records": 0}):
        with pytest.raises(ValueError, match="every_s must be >= 0 and every_records >= 1"):
            CommitPolicy(**wrong)
    with pytest.raises(AttributeError):
        CommitPolicy().every_s = 1.0  # type: ignore[misc]
