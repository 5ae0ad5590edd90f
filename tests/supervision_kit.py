"""The supervision tests' fixtures and helpers: the power list loaded, steps reported over gRPC."""

from __future__ import annotations

import datetime as dt

from hub.supervision.powers import load_seed
from hub.v1 import supervision_pb2 as sv
from hub.v1 import supervision_pb2_grpc
from tests.hubtest import RunningHub

CST = dt.timezone(dt.timedelta(hours=8))
MARKET, APPROVAL = "market_regulation", "approval_bureau"
GOOD, EXPIRED, REVOKED, APPROVER = "DY-ZF-0001", "DY-ZF-0002", "DY-ZF-0003", "DY-ZF-0101"
PENALTY = "market_regulation.CF001"  # 对无照经营的处罚: not major unless the decision says so
MAJOR_PENALTY = "market_regulation.CF002"  # 对虚假宣传的处罚: always major
LICENCE = "approval_bureau.XK001"  # 食品经营许可, 20 working days


def ms(day: str, hour: int = 10) -> int:
    return int(dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=CST).timestamp() * 1000)


def officer(cert: str, name: str, department: str, valid_to: str = "2030-12-31", status: str = "valid") -> dict:
    return {"certificate_no": cert, "name": name, "department": department, "valid_to": valid_to, "status": status}


def load_power_list(hub: RunningHub) -> RunningHub:
    """What the Justice Bureau publishes: the power list and the officers' certificates."""
    items = hub.publish("power.item", [i.record() for i in load_seed()], department="legal_affairs")
    officers = hub.publish(
        "enforcement.officer",
        [
            officer(GOOD, "王建国", MARKET),
            officer(EXPIRED, "李明", MARKET, valid_to="2016-12-31"),
            officer(REVOKED, "赵强", MARKET, status="revoked"),
            officer(APPROVER, "陈静", APPROVAL),
        ],
        department="legal_affairs",
    )
    hub.verify("power.item", PENALTY, after=items, department="legal_affairs")
    hub.verify("enforcement.officer", GOOD, after=officers, department="legal_affairs")
    return hub


def stub(hub: RunningHub, department: str) -> supervision_pb2_grpc.SupervisionStub:
    return supervision_pb2_grpc.SupervisionStub(hub.client(department).channel)


def step(hub: RunningHub, case: str, item: str, name: str, at: int, cert: str = GOOD, department: str = MARKET, **kw):
    return stub(hub, department).ReportStep(
        sv.ReportStepRequest(case_number=case, item_code=item, step=name, officer_certificate=cert, at_ms=at, **kw),
        timeout=30,
    )


DECIDE = {
    "outcome": "penalised",
    "target_name": "张三",
    "target_id": "510603199001011231",
    "target_kind": sv.TARGET_KIND_NATURAL,
    "decision": "罚款5000元",
}
