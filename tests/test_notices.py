"""Licence first, permit after, notify both: notices from market registrations, claimed and fed back;
an unclaimed one and a claimed one without feedback go overdue and raise alerts."""

from __future__ import annotations

import datetime as dt
import queue
import threading
import time
from pathlib import Path

import grpc
import pytest

from hub.datagen.city import credit_codes
from hub.records.reference import ENTITY_TYPES
from hub.v1 import notices_pb2, notices_pb2_grpc
from tests.hubtest import running_hub

CODES = credit_codes(31, 4)


def _entity(code: str, scope: list[str], status: str = "active") -> dict:
    return {
        "credit_code": code,
        "name": f"德阳{code[-4:]}餐饮管理有限公司",
        "entity_type": ENTITY_TYPES[code[:2]][0],
        "district_code": code[2:8],
        "established_on": "2017-11-01",
        "status": status,
        "business_scope": scope,
    }


class _Watch:
    """The notices pushed to one department, in order. A broken stream fails the test with its error."""

    def __init__(self, stub: notices_pb2_grpc.NoticesStub) -> None:
        self._call = stub.Watch(notices_pb2.NoticesWatchRequest())
        self._pushed: queue.Queue = queue.Queue()
        threading.Thread(target=self._follow, daemon=True).start()

    def _follow(self) -> None:
        try:
            for message in self._call:
                self._pushed.put(message.notice)
        except grpc.RpcError as err:
            self._pushed.put(err)

    def next_about(self, credit_code: str) -> notices_pb2.Notice:
        while True:
            try:
                item = self._pushed.get(timeout=120)  # a guard only: the notice ends the wait
            except queue.Empty:
                raise AssertionError(f"no notice about {credit_code} was pushed") from None
            if isinstance(item, grpc.RpcError):
                raise item
            if item.credit_code == credit_code:
                return item

    def cancel(self) -> None:
        self._call.cancel()


def _wait(condition, what: str) -> None:
    deadline = time.monotonic() + 120  # a guard only: the condition ends the wait
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_notices_are_pushed_claimed_fed_back_and_go_overdue(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    with running_hub(
        kafka_bootstrap,
        topic_prefix,
        tmp_path,
        notice_engine=True,
        notice_claim_limit_s=3.0,
        notice_feedback_limit_s=3.0,
    ) as hub:
        food = notices_pb2_grpc.NoticesStub(hub.client("food_drug").channel)
        watch = _Watch(food)
        # a food business and a general trader: only the first needs a permit
        hub.publish(
            "market.entity", [_entity(CODES[0], ["catering", "general_trade"]), _entity(CODES[1], ["general_trade"])]
        )
        notice = watch.next_about(CODES[0])
        assert (notice.department, notice.scope_item, notice.state, notice.reason) == (
            "food_drug",
            "catering",
            notices_pb2.NOTICE_STATE_OPEN,
            "registered",
        )
        assert notice.registered_at_ms <= notice.created_at_ms

        # another department cannot claim it; food and drug claims it and feeds back
        with pytest.raises(grpc.RpcError) as err:
            notices_pb2_grpc.NoticesStub(hub.client("transport").channel).Claim(notices_pb2.ClaimRequest(id=notice.id))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        claimed = food.Claim(notices_pb2.ClaimRequest(id=notice.id)).notice
        assert claimed.state == notices_pb2.NOTICE_STATE_CLAIMED and claimed.claimed_by == "food_drug"
        with pytest.raises(grpc.RpcError) as err:
            food.Claim(notices_pb2.ClaimRequest(id=notice.id))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        done = food.Feedback(
            notices_pb2.FeedbackRequest(
                id=notice.id, kind=notices_pb2.FEEDBACK_KIND_PERMIT_ISSUED, note="食品经营许可证 JY15106030001234"
            )
        ).notice
        assert done.state == notices_pb2.NOTICE_STATE_DONE and done.feedback == notices_pb2.FEEDBACK_KIND_PERMIT_ISSUED

        # a scope change adds road transport: the transport bureau gets a notice, nobody claims it
        hub.publish("market.entity", [_entity(CODES[0], ["catering", "general_trade", "road_freight"])])
        transport = notices_pb2_grpc.NoticesStub(hub.client("transport").channel)
        _wait(lambda: transport.List(notices_pb2.NoticesListRequest()).notices, "no notice for transport")
        pending = transport.List(notices_pb2.NoticesListRequest()).notices[0]
        assert pending.reason == "scope_changed" and pending.scope_item == "road_freight"
        _wait(
            lambda: transport.ListAlerts(notices_pb2.ListAlertsRequest()).alerts, "the overdue notice raised no alert"
        )
        [alert] = transport.ListAlerts(notices_pb2.ListAlertsRequest()).alerts
        assert (alert.notice_id, alert.kind) == (pending.id, "claim_overdue")

        # another restaurant: food and drug claims its notice and never reports back
        hub.publish("market.entity", [_entity(CODES[3], ["catering"])])
        silent = watch.next_about(CODES[3])
        # two clerks click Claim at once: one claims it, the other is told it already is claimed
        clicks = [food.Claim.future(notices_pb2.ClaimRequest(id=silent.id)) for _ in range(2)]
        codes = sorted(c.code().name for c in clicks)
        assert codes == ["FAILED_PRECONDITION", "OK"], codes
        silent = next(c.result().notice for c in clicks if c.code() == grpc.StatusCode.OK)

        def food_alerts() -> set[tuple[str, str]]:
            return {(a.notice_id, a.kind) for a in food.ListAlerts(notices_pb2.ListAlertsRequest()).alerts}

        _wait(
            lambda: (silent.id, "feedback_overdue") in food_alerts(),
            "the claimed notice without feedback raised no alert",
        )
        # Alerts only for what was late. What is late follows from the recorded times, not from how fast
        # this machine made the calls (on an idle one: only the silent notice's feedback).
        late = {
            (notice.id, "claim_overdue"): claimed.claimed_at_ms > claimed.claim_due_ms,
            (notice.id, "feedback_overdue"): done.feedback_at_ms > done.feedback_due_ms,
            (silent.id, "claim_overdue"): silent.claimed_at_ms > silent.claim_due_ms,
            (silent.id, "feedback_overdue"): True,
        }
        assert food_alerts() <= {alert for alert, was_late in late.items() if was_late}
        # the general trader needed no permit: no notice about it, to anyone
        assert not [
            n
            for stub in (food, transport)
            for n in stub.List(notices_pb2.NoticesListRequest()).notices
            if n.credit_code == CODES[1]
        ]
        watch.cancel()


def test_going_live_on_existing_entities_notices_only_what_changes_after_the_cut_over(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    existing, plain, untouched, new = credit_codes(32, 4)
    with running_hub(kafka_bootstrap, topic_prefix, tmp_path) as hub:  # the registry's history, before go-live
        hub.publish(
            "market.entity",
            [_entity(existing, ["catering"]), _entity(plain, ["general_trade"]), _entity(untouched, ["catering"])],
        )
    go_live = dt.datetime.now(dt.UTC)
    with running_hub(kafka_bootstrap, topic_prefix, tmp_path, notice_engine=True, notices_since=go_live) as hub:
        hub.publish(
            "market.entity",
            [
                _entity(existing, ["catering", "road_freight"]),
                _entity(plain, ["general_trade", "catering"]),
                _entity(new, ["catering"]),
            ],
        )
        food = notices_pb2_grpc.NoticesStub(hub.client("food_drug").channel)
        transport = notices_pb2_grpc.NoticesStub(hub.client("transport").channel)

        def notices() -> set[tuple[str, str, str, str]]:
            return {
                (n.credit_code, n.scope_item, n.department, n.reason)
                for stub in (food, transport)
                for n in stub.List(notices_pb2.NoticesListRequest()).notices
            }

        expected = {
            (existing, "road_freight", "transport", "scope_changed"),
            (plain, "catering", "food_drug", "scope_changed"),
            (new, "catering", "food_drug", "registered"),
        }
        _wait(lambda: notices() >= expected, f"missing: {expected - notices()}")
        # Nothing more comes: the go-live state (existing catering, untouched) is not news. The engine
        # reads each partition in order, so once a later registration on every partition has its
        # notice, everything before it has been considered.
        markers, partitions = [], set()
        for code in credit_codes(33, 60):
            if len(partitions) == hub.server.catalogue.resource("market.entity").partitions:
                break
            [result] = hub.publish("market.entity", [_entity(code, ["catering"])]).results
            markers.append(code)
            partitions.add(result.partition)
        _wait(lambda: {n[0] for n in notices()} >= set(markers), "a marker registration got no notice")
        assert {n for n in notices() if n[0] not in markers} == expected
