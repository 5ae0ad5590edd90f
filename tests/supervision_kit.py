"""The supervision tests' fixtures and helpers: the power list loaded, steps reported over gRPC."""

from __future__ import annotations

import datetime as dt

from hub.datagen.city import resident_ids
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


def officer(
    cert: str, rid: str, name: str, department: str, valid_to: str = "2030-12-31", status: str = "valid"
) -> dict:
    """A city-level officer of ``department``, in the resource random inspections draw from too."""
    return {
        "cert_no": cert,
        "resident_id": rid,
        "name": name,
        "department": department,
        "level": "city",
        "district_code": "510600",
        "field": "market" if department == MARKET else "licensing",
        "valid_from": "2014-01-01",
        "valid_to": valid_to,
        "status": status,
    }


def load_power_list(hub: RunningHub) -> RunningHub:
    """What the Justice Bureau publishes: the power list and the officers' certificates."""
    items = hub.publish("power.item", [i.record() for i in load_seed()])
    ids = resident_ids(13, 4)
    officers = hub.publish(
        "enforcement.officer",
        [
            officer(GOOD, ids[0], "王建国", MARKET),
            officer(EXPIRED, ids[1], "李明", MARKET, valid_to="2016-12-31"),
            officer(REVOKED, ids[2], "赵强", MARKET, status="revoked"),
            officer(APPROVER, ids[3], "陈静", APPROVAL),
        ],
    )
    hub.verify("power.item", PENALTY, after=items)
    hub.verify("enforcement.officer", GOOD, after=officers)
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
