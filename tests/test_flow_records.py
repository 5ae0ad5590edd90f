"""Notices, alerts and correction requests as typed records: values already on the topics still read,
and write back byte for byte; the proto enums map both ways through one table each."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import orjson
import pytest

from hub.flows.model import Alert, CorrectionRequest, Notice
from hub.flows.notices import overdue_alerts
from hub.flows.stores import CorrectionStore, NoticeStore
from hub.records.change import Change
from hub.server.convert import (
    CORRECTION_STATES,
    FEEDBACK_KINDS,
    NOTICE_STATES,
    alert_to_pb,
    correction_to_pb,
    notice_to_pb,
)
from hub.v1 import corrections_pb2, notices_pb2

# Values as the hub wrote them when they were plain dicts, in the order it wrote their fields.
OLD_NOTICE: dict[str, Any] = {
    "id": "91510600MA6X0001XX:food_sales:fda",
    "department": "fda",
    "credit_code": "91510600MA6X0001XX",
    "entity_name": "德阳0001餐饮管理有限公司",
    "scope_item": "food_sales",
    "permit": "食品经营许可证",
    "reason": "registered",
    "state": "claimed",
    "created_at_ms": 1_700_000_000_000,
    "registered_at_ms": 1_699_999_999_000,
    "claim_due_ms": 1_700_000_060_000,
    "claimed_at_ms": 1_700_000_010_000,
    "claimed_by": "fda.licensing",
    "feedback_due_ms": 1_700_000_070_000,
    "feedback_at_ms": 0,
    "feedback": "",
    "feedback_note": "",
}
OLD_ALERT: dict[str, Any] = {
    "id": "91510600MA6X0001XX:food_sales:fda:feedback_overdue",
    "notice_id": "91510600MA6X0001XX:food_sales:fda",
    "department": "fda",
    "kind": "feedback_overdue",
    "raised_at_ms": 1_700_000_070_000,
    "due_ms": 1_700_000_070_000,
}
OLD_CORRECTION: dict[str, Any] = {
    "id": "CR-20231114-0a1b2c3d",
    "resource": "population.resident",
    "key": "510603199001011234",
    "field": "address",
    "proposed_value": "旌阳区长江东路1号",
    "evidence_ref": "户口簿 2023-118",
    "filed_by": "civil.affairs",
    "filed_at_ms": 1_700_000_000_000,
    "due_ms": 1_700_600_000_000,
    "state": "open",
    "resolved_by": "",
    "resolved_at_ms": 0,
    "note": "",
}


@pytest.mark.parametrize(
    ("record", "value"), [(Notice, OLD_NOTICE), (Alert, OLD_ALERT), (CorrectionRequest, OLD_CORRECTION)]
)
def test_an_old_value_reads_and_writes_back_byte_for_byte(record: type, value: dict) -> None:
    raw = orjson.dumps(value)
    assert orjson.dumps(asdict(record(**orjson.loads(raw)))) == raw


def test_a_notice_from_before_registered_at_reads_with_zero() -> None:
    older = {k: v for k, v in OLD_NOTICE.items() if k != "registered_at_ms"}
    notice = Notice(**older)
    assert notice.registered_at_ms == 0
    assert notice_to_pb(notice).registered_at_ms == 0


def test_the_messages_carry_every_field() -> None:
    notice = notice_to_pb(Notice(**OLD_NOTICE))
    assert notice.state == notices_pb2.NOTICE_STATE_CLAIMED
    assert notice.feedback == notices_pb2.FEEDBACK_KIND_UNSPECIFIED
    assert (notice.claimed_by, notice.feedback_due_ms) == ("fda.licensing", 1_700_000_070_000)
    assert alert_to_pb(Alert(**OLD_ALERT)) == notices_pb2.Alert(**OLD_ALERT)
    correction = correction_to_pb(CorrectionRequest(**OLD_CORRECTION))
    assert correction.state == corrections_pb2.CORRECTION_STATE_OPEN
    assert correction.overdue  # its deadline is long past
    assert (correction.key, correction.evidence_ref) == (OLD_CORRECTION["key"], OLD_CORRECTION["evidence_ref"])


def test_each_enum_has_one_table_read_both_ways() -> None:
    for table, enum in (
        (NOTICE_STATES, notices_pb2.NoticeState),
        (FEEDBACK_KINDS, notices_pb2.FeedbackKind),
        (CORRECTION_STATES, corrections_pb2.CorrectionState),
    ):
        for number in enum.values():
            name = table.from_pb(number)
            if number == 0:
                assert name is None
            else:
                assert name is not None and enum.Name(number).endswith(name.upper())
                assert table.to_pb(name) == number
        assert table.from_pb(99) is None
    assert FEEDBACK_KINDS.to_pb("") == notices_pb2.FEEDBACK_KIND_UNSPECIFIED  # no feedback yet


def _feed(store: NoticeStore | CorrectionStore, *values: tuple[str, dict | None]) -> None:
    start = store.positions()[0]
    store.apply(
        [
            Change(key, None if value is None else orjson.dumps(value), 0, start + i)
            for i, (key, value) in enumerate(values)
        ]
    )


def test_the_notice_store_holds_typed_notices_and_alerts_and_skips_a_bad_value() -> None:
    store = NoticeStore()
    _feed(
        store,
        (f"notice:{OLD_NOTICE['id']}", OLD_NOTICE),
        ("notice:broken", {"id": "broken", "unknown_field": 1}),
    )
    assert store.notices() == [Notice(**OLD_NOTICE)]
    assert store.notice("broken") is None and store.has_notices_for(OLD_NOTICE["credit_code"])

    [alert] = overdue_alerts(store, now_ms=OLD_NOTICE["feedback_due_ms"] + 1)
    assert alert == Alert(**OLD_ALERT)
    _feed(store, (f"alert:{alert.id}", asdict(alert)))
    assert store.alerts() == [alert] and overdue_alerts(store, now_ms=OLD_NOTICE["feedback_due_ms"] + 1) == []

    _feed(store, (f"notice:{OLD_NOTICE['id']}", None))
    assert store.notices() == []


def test_the_correction_store_indexes_open_requests() -> None:
    store = CorrectionStore()
    _feed(store, (f"correction:{OLD_CORRECTION['id']}", OLD_CORRECTION))
    assert store.any_open("population.resident")
    assert store.disputed("population.resident", OLD_CORRECTION["key"]) == {"address"}
    resolved = store.requests()[0].resolved("confirmed", "population.registry", "checked", now_ms=1)
    _feed(store, (f"correction:{resolved.id}", asdict(resolved)))
    assert store.request(resolved.id) == resolved
    assert not store.any_open("population.resident")
    assert store.disputed("population.resident", OLD_CORRECTION["key"]) == frozenset()
