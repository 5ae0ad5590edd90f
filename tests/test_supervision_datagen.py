"""The generator at the seeds' scale: 2,686 items of 27 departments, loaded through the CLI; a year of
step events; a ledger with 200 planted off-platform decisions."""

from __future__ import annotations

import contextlib
import io
import time

import pyarrow.compute as pc

from hub.cli import main
from hub.datagen.supervision import ledger, power_list, step_events
from hub.supervision.powers import CATEGORY_CODES
from hub.supervision.registry import CachedPowerList
from tests.hubtest import RunningHub


def test_power_list_and_cases_at_the_seeds_scale() -> None:
    items = power_list()
    assert len(items) == 2686 and len({i.code for i in items}) == 2686
    assert len({i.department for i in items}) == 27 and {i.category for i in items} == set(CATEGORY_CODES)
    year = step_events(items, 20_000)
    events = year.events
    assert 3.8 < events.num_rows / 20_000 < 4.4  # the city year: 566,547 cases, about 2.3M step events
    closes = events.filter(events["closes"])
    assert closes.num_rows == 20_000 and pc.count_distinct(closes["case_number"]).as_py() == 20_000
    assert pc.min(events["at_ms"]).as_py() >= 1483200000000  # 2017-01-01 CST


def test_ledger_plants_off_platform_penalties() -> None:
    decisions = [
        {"case_number": f"C{n}", "item_code": "x.CF001", "decided_on": "2017-05-02", "outcome": "penalised",
         "decision": "罚款1000元"}
        for n in range(50)
    ]  # fmt: skip
    planted = ledger(decisions, ["x.CF001", "x.CF002"])
    assert len(planted.off_platform) == 200 and len(planted.differing) == 3 and len(planted.missing) == 2
    assert len(planted.rows) == 50 - 2 + 200
    assert set(planted.rows[0]) == {"案件编号", "事项编码", "决定日期", "处理结果", "决定内容"}


def test_generated_power_list_loads_through_the_cli(hub: RunningHub) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["supervise", "load-powers", "--generated", "--hub", hub.address, "--department", "justice"])
    assert out.getvalue().strip() == "published 2,686 power items of 27 departments"
    powers = CachedPowerList(hub.server.cache)
    deadline = time.monotonic() + 120  # the cache follows the topic; a guard only
    while len(powers.items()) < 2686 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(powers.items()) == 2686
