"""The tests' helpers: the packaged harness (:mod:`hub.testing.harness`) and record builders."""

from __future__ import annotations

from hub.testing.harness import CTX, RunningHub, running_hub, running_layout, running_shards

__all__ = ["CTX", "RunningHub", "resident", "running_hub", "running_layout", "running_shards"]


def resident(rid: str, **over) -> dict:
    record = {
        "resident_id": rid,
        "name": "张伟",
        "gender": "1" if int(rid[16]) % 2 else "2",
        "birth_date": f"{rid[6:10]}-{rid[10:12]}-{rid[12:14]}",
        "district_code": "510603",
        "address": "四川省德阳市旌阳区长江西路1号",
        "household_id": "510603000000001",
        "status": "registered",
        "registered_on": "2001-05-01",
    }
    record.update(over)
    return record
