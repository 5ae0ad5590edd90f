"""Enforcement publicity over HTTP: a decision published, then withdrawn; officers; the power list."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hub.public.publicity import hub_pages
from tests.hubtest import RunningHub, running_hub
from tests.supervision_kit import DECIDE, PENALTY, load_power_list, ms, step


@pytest.fixture(scope="module")
def hub(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    """One hub for the module, the power list loaded: the tests read pages of different registers."""
    with running_hub(kafka_bootstrap, f"p{uuid.uuid4().hex[:10]}.", tmp_path_factory.mktemp("hub")) as h:
        yield load_power_list(h)


def fetch(hub: RunningHub, paths: list[str]) -> dict[str, tuple[str, object]]:
    """Each path's (HTML text, or JSON) from the pages mounted on a bare aiohttp app."""
    pages = hub_pages(
        hub.server.cache, hub.server.catalogue, hub.server.supervision, today=lambda: dt.date(2017, 11, 30)
    )

    async def run() -> dict[str, tuple[str, object]]:
        app = web.Application()
        for path, handler in pages.routes():
            app.router.add_get(path, handler)
        async with TestClient(TestServer(app)) as client:
            out = {}
            for path in paths:
                response = await client.get(path)
                assert response.status == 200
                out[path] = (
                    response.content_type,
                    await (response.json() if path.endswith(".json") else response.text()),
                )
            return out

    return asyncio.run(run())


def test_decision_published_then_withdrawn(hub: RunningHub) -> None:
    for n, name in enumerate(("accept", "investigate", "inform")):
        step(hub, "CF-W1", PENALTY, name, ms(f"2017-11-0{n + 1}"))
    step(hub, "CF-W1", PENALTY, "decide", ms("2017-11-06"), **DECIDE)
    step(hub, "CF-W1", PENALTY, "publish", ms("2017-11-07"))
    got = fetch(hub, ["/publicity/decisions", "/publicity/decisions.json"])
    kind, page = got["/publicity/decisions"]
    assert kind == "text/html" and 'name="viewport"' in page
    assert (
        "德阳市市场监督管理局 · 行政处罚" in page and "对象：张*（510603********1231）" in page and "罚款5000元" in page
    )
    assert "张三" not in page and "510603199001011231" not in page
    [entry] = got["/publicity/decisions.json"][1]["decisions"]
    assert entry["enforcing_body"] == "德阳市市场监督管理局" and entry["target"] == "张*"
    assert (entry["category"], entry["decision"], entry["decided_on"]) == ("penalty", "罚款5000元", "2017-11-06")

    step(hub, "CF-W1", PENALTY, "revoke", ms("2017-11-20"), reason="行政复议决定撤销")
    got = fetch(hub, ["/publicity/decisions", "/publicity/decisions.json"])
    assert got["/publicity/decisions.json"][1]["decisions"] == [] and "罚款5000元" not in got["/publicity/decisions"][1]


def test_officers_and_power_list(hub: RunningHub) -> None:
    got = fetch(hub, ["/publicity/officers", "/publicity/officers.json", "/publicity/powers", "/publicity/powers.json"])
    officers = got["/publicity/officers.json"][1]["officers"]
    assert {"name": "王建国", "certificate_no": "DY-ZF-0001", "enforcing_body": "德阳市市场监督管理局"} in officers
    assert "赵强" not in got["/publicity/officers"][1]  # a revoked certificate is not listed,
    assert "李明" not in got["/publicity/officers"][1]  # nor one expired before today (the same rule as the steps)
    items = got["/publicity/powers.json"][1]["items"]
    assert len(items) == 201 and "权力清单（201 项）" in got["/publicity/powers"][1]
    penalty = next(i for i in items if i["code"] == "market_regulation.CF002")
    assert penalty["major"] and "legal_review" in penalty["steps"] and penalty["promised_days"] == 90
