"""Supervision: each refusal, each alert kind, answers and escalation, publicity, the report, replay."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import grpc
import orjson
import pytest

from hub.governance.audit import subject_digest
from hub.governance.keys import subject_key
from hub.governance.workdays import WorkCalendar
from hub.supervision.steps import CaseState, StepEvent
from hub.v1 import supervision_pb2 as sv
from tests.hubtest import RunningHub
from tests.supervision_kit import (
    APPROVAL,
    APPROVER,
    CST,
    DECIDE,
    EXPIRED,
    GOOD,
    LICENCE,
    MAJOR_PENALTY,
    MARKET,
    PENALTY,
    REVOKED,
    load_power_list,
    ms,
    step,
    stub,
)


def refused(hub: RunningHub, *args, **kw) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        step(hub, *args, **kw)
    return err.value


def test_refusals_are_clear_and_audited(hub: RunningHub) -> None:
    load_power_list(hub)
    err = refused(hub, "CF-R1", PENALTY, "investigate", ms("2017-11-01"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "starts with 'accept'" in err.details()
    step(hub, "CF-R1", PENALTY, "accept", ms("2017-11-01"))
    err = refused(hub, "CF-R1", PENALTY, "inform", ms("2017-11-02"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.details().startswith("step: 'inform' out of order") and "comes 'investigate'" in err.details()
    for cert, why in ((EXPIRED, "expired on 2016-12-31"), (REVOKED, "is revoked"), ("DY-ZF-9999", "no enforcement")):
        err = refused(hub, "CF-R1", PENALTY, "investigate", ms("2017-11-02"), cert=cert)
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert err.details().startswith("officer_certificate:") and why in err.details()
    err = refused(hub, "CF-R1", PENALTY, "investigate", ms("2017-11-02"), cert=APPROVER)
    assert "is of approval_bureau" in err.details()
    err = refused(hub, "CF-R1", PENALTY, "investigate", ms("2017-11-02"), cert="")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details() == "officer_certificate: required"
    err = refused(hub, "CF-R1", PENALTY, "sign", ms("2017-11-02"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("step: 'sign' is not a step")
    err = refused(hub, "CF-R1", LICENCE, "accept", ms("2017-11-02"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    # A major decision (declared, or the item's) with no legal review before it.
    step(hub, "CF-R1", PENALTY, "investigate", ms("2017-11-03"))
    step(hub, "CF-R1", PENALTY, "inform", ms("2017-11-06"))
    err = refused(hub, "CF-R1", PENALTY, "decide", ms("2017-11-07"), major=True, **DECIDE)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "needs a 'legal_review' step" in err.details()
    step(hub, "M-1", MAJOR_PENALTY, "accept", ms("2017-11-01"))
    step(hub, "M-1", MAJOR_PENALTY, "investigate", ms("2017-11-02"))
    step(hub, "M-1", MAJOR_PENALTY, "inform", ms("2017-11-03"))
    err = refused(hub, "M-1", MAJOR_PENALTY, "decide", ms("2017-11-06"), **DECIDE)
    assert "major decision" in err.details()
    step(hub, "M-1", MAJOR_PENALTY, "legal_review", ms("2017-11-06"))
    assert step(hub, "M-1", MAJOR_PENALTY, "decide", ms("2017-11-07"), **DECIDE).next_step == "deliver"
    # A non-major decision needs no review, and a repeated step is a no-op.
    assert step(hub, "CF-R1", PENALTY, "decide", ms("2017-11-07"), **DECIDE).seq == 3
    assert step(hub, "CF-R1", PENALTY, "decide", ms("2017-11-07"), **DECIDE).seq == 3
    # Each refused attempt is in the audit trail under the case number, with its status.
    digest = subject_digest(subject_key(hub.settings.data_dir / "dev-keys"), "CF-R1")
    deadline = time.monotonic() + 120  # the audit index follows the topic; a guard only
    while True:
        entries = [e for e in hub.server.deps.audit_index.by_subject(digest, 100) if e["action"] == "supervision.step"]
        outcomes = sorted(e["outcome"] for e in entries)
        if outcomes.count("FAILED_PRECONDITION") >= 7 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert outcomes.count("FAILED_PRECONDITION") == 7, outcomes
    assert outcomes.count("INVALID_ARGUMENT") == 2 and outcomes.count("PERMISSION_DENIED") == 1


def test_each_alert_kind_answers_and_escalation(hub: RunningHub) -> None:
    load_power_list(hub)
    # A licence (20 working days; review 12): review late (yellow), decided refused with no reason
    # (red), published late (yellow), delivered late (yellow) and past the promised limit (red).
    step(hub, "XK-1", LICENCE, "accept", ms("2017-10-09"), cert=APPROVER, department=APPROVAL)
    step(hub, "XK-1", LICENCE, "review", ms("2017-10-30"), cert=APPROVER, department=APPROVAL)
    step(
        hub, "XK-1", LICENCE, "decide", ms("2017-10-31"), cert=APPROVER, department=APPROVAL,
        outcome="refused", target_name="德阳市某某餐饮有限公司", target_kind=sv.TARGET_KIND_LEGAL, decision="不予许可",
    )  # fmt: skip
    step(hub, "XK-1", LICENCE, "publish", ms("2017-11-13"), cert=APPROVER, department=APPROVAL)
    step(hub, "XK-1", LICENCE, "deliver", ms("2017-11-14"), cert=APPROVER, department=APPROVAL)
    # A case left at accept: its review deadline and its promised limit pass with nothing reported.
    step(hub, "XK-2", LICENCE, "accept", ms("2017-10-09"), cert=APPROVER, department=APPROVAL)
    hub.server.supervision.book.sweep(ms("2017-12-01"))

    office = stub(hub, "supervision_office")
    alerts = {a.id: a for a in office.ListAlerts(sv.SupervisionListAlertsRequest(), timeout=30).alerts}
    expected = {
        "XK-1:review:step_overrun": sv.ALERT_LEVEL_YELLOW,
        "XK-1:decide:refusal_without_reason": sv.ALERT_LEVEL_RED,
        "XK-1:publish:late_publication": sv.ALERT_LEVEL_YELLOW,
        "XK-1:deliver:step_overrun": sv.ALERT_LEVEL_YELLOW,
        "XK-1::case_overrun": sv.ALERT_LEVEL_RED,
        "XK-2:review:step_overrun": sv.ALERT_LEVEL_YELLOW,
        "XK-2::case_overrun": sv.ALERT_LEVEL_RED,
    }
    assert {k: a.level for k, a in alerts.items()} == expected
    assert alerts["XK-1:review:step_overrun"].detail == "review took 15 working days, the limit is 12"
    # Due five working days after they were raised (in 2017): long past, so escalated.
    assert all(a.status == sv.ALERT_STATUS_ESCALATED for a in alerts.values())
    own = stub(hub, APPROVAL).ListAlerts(sv.SupervisionListAlertsRequest(), timeout=30).alerts
    assert len(own) == 7 and not stub(hub, MARKET).ListAlerts(sv.SupervisionListAlertsRequest(), timeout=30).alerts
    with pytest.raises(grpc.RpcError) as err:
        stub(hub, MARKET).ListAlerts(sv.SupervisionListAlertsRequest(department=APPROVAL), timeout=30)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as err:
        office.AnswerAlert(sv.AnswerAlertRequest(alert_id="XK-2::case_overrun", answer="x"), timeout=30)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    answered = stub(hub, APPROVAL).AnswerAlert(
        sv.AnswerAlertRequest(alert_id="XK-2::case_overrun", answer="申请人补正材料，已督办"), timeout=30
    )
    assert answered.alert.status == sv.ALERT_STATUS_ANSWERED and answered.alert.answered_by == APPROVAL
    still = office.ListAlerts(sv.SupervisionListAlertsRequest(status=sv.ALERT_STATUS_ESCALATED), timeout=30).alerts
    assert len(still) == 6


def test_decision_published_then_withdrawn_and_retention(hub: RunningHub) -> None:
    load_power_list(hub)
    feed = hub.server.supervision.feed
    for n, name in enumerate(("accept", "investigate", "inform")):
        step(hub, "CF-P1", PENALTY, name, ms(f"2017-11-0{n + 1}"))
    step(hub, "CF-P1", PENALTY, "decide", ms("2017-11-06"), **DECIDE)
    step(hub, "CF-P1", PENALTY, "publish", ms("2017-11-07"))
    [entry] = feed.current(dt.date(2017, 11, 8))
    assert (entry.target, entry.target_id, entry.decision) == ("张*", "510603********1231", "罚款5000元")
    assert entry.decided_on == "2017-11-06" and entry.expires_on == "2018-05-08"  # 183 days: a natural person
    assert feed.current(dt.date(2018, 5, 8)) == []  # past its retention
    step(hub, "CF-P1", PENALTY, "revoke", ms("2017-11-20"), reason="行政复议撤销")
    assert feed.current(dt.date(2017, 11, 21)) == [] and feed.withdrawn == {"CF-P1": "2017-11-20"}
    # The case's full record replays from its events on Kafka.
    events = [StepEvent(**orjson.loads(v)) for v in read_all(hub, "CF-P1")]
    case = CaseState.opened(events[0])
    for e in events:
        case.advance(e)
    assert [e.step for e in events] == ["accept", "investigate", "inform", "decide", "publish", "revoke"]
    assert case.revoked and case.outcome == "penalised"


def read_all(hub: RunningHub, case_number: str) -> list[bytes]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": hub.bootstrap, "group.id": "replay", "enable.partition.eof": True})
    topic = hub.server.topics.steps
    consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
    out, eof = [], set()
    while len(eof) < 3:
        m = consumer.poll(5)
        if m is None:
            break
        if m.error():
            eof.add(m.partition())
            continue
        if m.key() == case_number.encode():
            out.append(m.value())
    consumer.close()
    return out


def test_monthly_report(hub: RunningHub) -> None:
    load_power_list(hub)
    step(hub, "XK-9", LICENCE, "accept", ms("2017-11-01"), cert=APPROVER, department=APPROVAL)
    step(hub, "XK-9", LICENCE, "review", ms("2017-11-06"), cert=APPROVER, department=APPROVAL)
    step(
        hub, "XK-9", LICENCE, "decide", ms("2017-11-07"), cert=APPROVER, department=APPROVAL,
        outcome="approved", target_name="某公司", target_kind=sv.TARGET_KIND_LEGAL, decision="准予许可",
    )  # fmt: skip
    step(hub, "XK-9", LICENCE, "deliver", ms("2017-11-08"), cert=APPROVER, department=APPROVAL)
    report = stub(hub, "supervision_office").MonthlyReport(sv.MonthlyReportRequest(month="2017-11"), timeout=30)
    rows = {(r.group, r.name): r for r in report.rows}
    approval = rows[("department", APPROVAL)]
    assert (approval.cases, approval.on_time_rate) == (1, 1.0)
    assert approval.average_step_days == pytest.approx(5 / 3)  # review 3 working days, decide 1, deliver 1
    assert approval.unused_items == 13 and LICENCE not in report.unused_items and len(report.unused_items) == 200
    assert rows[("county", "510600")].cases == 1
    steps = {(s.department, s.step): (s.steps, s.average_days) for s in report.steps}
    assert steps == {(APPROVAL, "review"): (1, 3.0), (APPROVAL, "decide"): (1, 1.0), (APPROVAL, "deliver"): (1, 1.0)}
    with pytest.raises(grpc.RpcError) as err:
        stub(hub, APPROVAL).MonthlyReport(sv.MonthlyReportRequest(month="2017-13"), timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and err.value.details().startswith("month:")


def test_working_calendar_agrees_with_add_working_days() -> None:
    from hub.governance.workdays import add_working_days

    holidays = [dt.date(2017, 10, d) for d in range(2, 7)]
    calendar = WorkCalendar(holidays)
    start = dt.datetime(2017, 9, 29, 15, tzinfo=CST)
    for days in range(0, 15):
        expected = add_working_days(start, days, holidays)
        assert calendar.add(int(start.timestamp() * 1000), days) == int(expected.timestamp() * 1000)


def test_report_steps_in_bulk(hub: RunningHub) -> None:
    load_power_list(hub)

    def req(case: str, name: str, day: str, cert: str = GOOD, **kw) -> sv.ReportStepRequest:
        return sv.ReportStepRequest(
            case_number=case, item_code=PENALTY, step=name, officer_certificate=cert, at_ms=ms(day), **kw
        )

    steps = [
        req("CF-B1", "accept", "2017-11-01"),
        req("CF-B2", "inform", "2017-11-01"),  # a case starts with accept
        req("CF-B1", "investigate", "2017-11-02"),
        req("CF-B1", "inform", "2017-11-03", cert=EXPIRED),
        req("CF-B1", "inform", "2017-11-03"),
        req("CF-B1", "decide", "2017-11-06", **DECIDE),
        req("CF-B1", "decide", "2017-11-06", **DECIDE),  # repeated: a no-op
    ]
    stub_ = stub(hub, MARKET)
    results = stub_.ReportSteps(sv.ReportStepsRequest(steps=steps), timeout=30).results
    assert [(r.code, r.seq) for r in results] == [
        ("OK", 0), ("FAILED_PRECONDITION", 0), ("OK", 1), ("FAILED_PRECONDITION", 0), ("OK", 2), ("OK", 3), ("OK", 3)
    ]  # fmt: skip
    assert results[3].error.startswith("steps[3]: officer_certificate: certificate DY-ZF-0002 expired")
    case = hub.server.supervision.book.case("CF-B1")
    assert case is not None and case.last_step == "decide" and case.seq == 4
    assert hub.server.supervision.book.case("CF-B2") is None
    digest = subject_digest(subject_key(hub.settings.data_dir / "dev-keys"), "CF-B2")
    deadline = time.monotonic() + 120  # the audit index follows the topic; a guard only
    while not hub.server.deps.audit_index.by_subject(digest, 10) and time.monotonic() < deadline:
        time.sleep(0.2)
    refused = [e for e in hub.server.deps.audit_index.by_subject(digest, 10) if e["action"] == "supervision.step"]
    assert [e["outcome"] for e in refused] == ["FAILED_PRECONDITION"]
    with pytest.raises(grpc.RpcError) as err:
        stub_.ReportSteps(sv.ReportStepsRequest(steps=steps * 143), timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("steps: at most 1000")


def test_a_case_reported_through_two_replicas(
    hub: RunningHub, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    """Each replica reads a case as of the steps topic's end, not only as of its own writes."""
    from tests.hubtest import running_hub

    load_power_list(hub)
    with running_hub(kafka_bootstrap, topic_prefix, tmp_path / "second") as second:
        for n, name in enumerate(("accept", "investigate", "inform", "decide")):
            replica = (hub, second)[n % 2]
            step(replica, "CF-2R", PENALTY, name, ms(f"2017-11-0{n + 1}"), **(DECIDE if name == "decide" else {}))
        case = second.server.supervision.book.case("CF-2R")
        assert case is not None and case.last_step == "decide"
