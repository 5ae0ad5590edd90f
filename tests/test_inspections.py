"""Random inspections through real gRPC, the real broker and the public site: the README's round,
re-run checks that name what changed, bad input, and the page in Debian's headless Chromium."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import grpc
import pytest

from hub.client import open_channel
from hub.datagen.city import credit_codes, resident_ids
from hub.inspections.draw import verify
from hub.v1 import inspections_pb2 as ins
from hub.v1 import inspections_pb2_grpc, notices_pb2, notices_pb2_grpc
from tests.hubtest import resident, running_hub
from tests.readme import blocks

ROOT = Path(__file__).resolve().parent.parent
IDS = resident_ids(12, 40)
CODES = [c for c in credit_codes(12, 60) if c.startswith("91")][:8]
SCREENSHOT = ROOT / "docs" / "img" / "inspections-feed.png"


def _officer(cert: str, rid: str, department: str, level: str, field: str, valid_to: str = "2030-12-31") -> dict:
    return {
        "cert_no": cert,
        "resident_id": rid,
        "name": "李执法",
        "department": department,
        "level": level,
        "district_code": "510600" if level == "city" else "510603",
        "field": field,
        "valid_from": "2020-01-01",
        "valid_to": valid_to,
        "status": "valid",
    }


def _seed(h) -> dict:
    """Jingyang's food businesses (one represented by an officer, one by an officer's household member),
    two in Guanghan outside the filter, and the officers of both departments (one certificate expired)."""
    people = [resident(rid, household_id=f"H{i // 2:03d}") for i, rid in enumerate(IDS[:20])]
    officers = [
        _officer("SC-FD-0001", IDS[0], "food_drug", "city", "food_drug"),
        _officer("SC-FD-0002", IDS[2], "food_drug", "city", "food_drug"),
        _officer("SC-FD-0003", IDS[4], "food_drug", "county", "food_drug"),
        _officer("SC-FD-0004", IDS[6], "food_drug", "county", "food_drug"),
        _officer("SC-FD-0009", IDS[8], "food_drug", "city", "food_drug", valid_to="2025-12-31"),
        _officer("SC-MR-0001", IDS[10], "market_regulation", "city", "market"),
        _officer("SC-MR-0002", IDS[12], "market_regulation", "county", "market"),
        _officer("SC-MR-0003", IDS[14], "market_regulation", "county", "market"),
    ]
    reps = [IDS[0], IDS[1], IDS[16], IDS[17], IDS[18], IDS[19], IDS[3], IDS[5]]  # 0: officer; 1: his household
    entities, licences = [], []
    for i, code in enumerate(CODES):
        district = "510603" if i < 6 else "510681"
        entities.append(
            {
                "credit_code": code,
                "name": f"德阳市旌阳区第{i + 1}食品商行有限公司",
                "entity_type": "company",
                "legal_rep_id": reps[i],
                "legal_rep_name": "王某",
                "district_code": district,
                "established_on": "2015-03-01",
                "status": "active",
                "business_scope": ["food_sales"],
            }
        )
        licences.append(
            {
                "licence_no": f"JY1{district}{i:08d}",
                "holder_id": code,
                "licence_type": "food_business",
                "valid_from": "2022-01-01",
                "valid_to": "2030-01-01",
                "status": "valid",
            }
        )
    for resource, records, key in (
        ("population.resident", people, "resident_id"),
        ("market.entity", entities, "credit_code"),
        ("approval.licence", licences, "licence_no"),
        ("enforcement.officer", officers, "cert_no"),
    ):
        response = h.publish(resource, records)
        assert response.rejected == 0, response
        assert h.verify(resource, records[-1][key], after=response).found  # in the cache before the round
    return {"officers": officers, "entities": entities}


@pytest.fixture(scope="module")
def round_(kafka_bootstrap, tmp_path_factory):
    prefix = f"t{uuid.uuid4().hex[:10]}."
    with running_hub(kafka_bootstrap, prefix, tmp_path_factory.mktemp("insp"), public_port=0) as h:
        data = _seed(h)
        site = f"http://127.0.0.1:{h.server.public_site.port}"
        env = {"HUB": h.address, "SITE": site}
        os.environ.update(env)
        [(_, code)] = blocks("inspections")[:1]
        namespace: dict = {}
        exec(compile(code, "README.md", "exec"), namespace)
        yield h, site, namespace, data


def test_readme_round_through_grpc_and_the_public_page(round_):
    h, site, ns, data = round_
    drawn, plan = ns["drawn"], ns["plan"]
    items = inspections_pb2_grpc.InspectionsStub(open_channel(h.address, department="citizen_portal"))
    listed = items.ListItems(ins.ListItemsRequest()).items
    assert len(listed) >= 30 and len({i.department for i in listed}) >= 10
    assert plan.commitment.target_pool_size == 6  # Jingyang only, licence holders
    assert set(plan.commitment.watermark) >= {"market.entity", "enforcement.officer"}
    assert len(drawn.targets) == 3 and all(len(t.officers) == 2 for t in drawn.targets)
    pool = {o["cert_no"] for o in data["officers"] if o["department"] == "food_drug"} - {"SC-FD-0009"}
    assert {o for t in drawn.targets for o in t.officers} <= pool  # the expired certificate is never drawn
    # Conflict of interest: SC-FD-0001 represents CODES[0], and his household member represents CODES[1].
    for t in drawn.targets:
        if t.credit_code in CODES[:2]:
            assert "SC-FD-0001" not in t.officers
    assert ns["joint"] >= 2 and ns["shared"], "both departments drew the drawn targets: a joint notice"
    assert {n.credit_code for n in ns["shared"]} <= {t.credit_code for t in drawn.targets}
    # Not found at the address: market regulation is told, for the abnormal-operation list.
    market_notices = notices_pb2_grpc.NoticesStub(open_channel(h.address, department="market_regulation"))
    flagged = [
        n for n in market_notices.List(notices_pb2.NoticesListRequest()).notices if n.reason == "not_found_at_address"
    ]
    assert [n.credit_code for n in flagged] == [drawn.targets[0].credit_code]
    assert drawn.targets[0].credit_code in ns["page"]
    feed = json.loads(urllib.request.urlopen(f"{site}/feed.json").read())
    assert len(feed["items"]) == 3 and {i["outcome"] for i in feed["items"]} == {"not_found", "no_problem"}
    atom = urllib.request.urlopen(f"{site}/feed.atom").read().decode()
    assert atom.count("<entry>") == 3 and "SC-FD-" in atom
    # 7. The re-run check, exactly as the README says.
    [(_, command)] = blocks("inspections")[1:2]
    done = subprocess.run(
        ["bash", "-c", command],
        env={**os.environ, "PLAN_ID": plan.plan.id, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verified: 3 of 6 targets" in done.stdout


def _material(site: str, plan_id: str) -> dict:
    return json.loads(urllib.request.urlopen(f"{site}/plans/{plan_id}.json").read())


def test_verify_names_a_changed_pool_seed_or_input(round_, tmp_path, capsys):
    from hub.cli import main

    _, site, ns, _ = round_
    plan_id = ns["plan"].plan.id
    original = _material(site, plan_id)
    assert verify(original) == []
    changes = {
        "target pool": lambda m: m["target_pool"].pop(),
        "officer pool": lambda m: m["officer_pool"].pop(),
        "seed": lambda m: m["draw"].update(seed="00" * 32),
        "root": lambda m: m["draw"].update(beacon="11" * 32),
        "plan": lambda m: m["plan"].update(officers_per_target=3),
    }
    for what, change in changes.items():
        material = copy.deepcopy(original)
        change(material)
        path = tmp_path / f"{what}.json"
        path.write_text(json.dumps(material))
        assert main(["draws", "verify", plan_id, "--file", str(path)]) == 1
        out = capsys.readouterr().out
        assert "NOT verified" in out and f"  {what}:" in out, out
    # The beacon is an algorithm input: the re-run draws other targets or officers, and says which.
    material = copy.deepcopy(original)
    material["draw"]["beacon"] = "22" * 32
    problems = verify(material)
    assert any(p.startswith(("targets:", "officers of")) for p in problems), problems


def test_bad_input_is_named(round_):
    h, _, ns, _ = round_
    food = inspections_pb2_grpc.InspectionsStub(open_channel(h.address, department="food_drug"))
    market = inspections_pb2_grpc.InspectionsStub(open_channel(h.address, department="market_regulation"))
    later = int(time.time() * 1000) + 3_600_000
    good = dict(
        item_ids=["SP-01"],
        ratio=0.5,
        officers_per_target=2,
        draw_at_ms=later,
        window_start="2026-12-01",
        window_end="2026-12-31",
    )
    for change, field in (
        ({"item_ids": []}, "item_ids"),
        ({"ratio": 1.5}, "ratio"),
        ({"ratio": 0.0}, "ratio"),
        ({"officers_per_target": 1}, "officers_per_target"),
        ({"draw_at_ms": int(time.time() * 1000) - 1000}, "draw_at_ms"),
    ):
        with pytest.raises(grpc.RpcError) as err:
            food.FilePlan(ins.FilePlanRequest(**{**good, **change}))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details().startswith(f"{field}:"), err.value.details()
    plan_id, drawn = ns["plan"].plan.id, ns["drawn"]
    undrawn = next(c for c in CODES if c not in {t.credit_code for t in drawn.targets})
    with pytest.raises(grpc.RpcError) as err:
        food.RecordResult(
            ins.RecordResultRequest(
                plan_id=plan_id, credit_code=undrawn, outcome=ins.OUTCOME_NO_PROBLEM, inspected_on="2026-11-27"
            )
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "was not drawn" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        market.RecordResult(
            ins.RecordResultRequest(
                plan_id=plan_id,
                credit_code=drawn.targets[1].credit_code,
                outcome=ins.OUTCOME_CASE_FILED,
                inspected_on="2026-11-27",
            )
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and "food_drug" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        food.FilePlan(ins.FilePlanRequest(**{**good, "item_ids": ["SC-01"]}))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.skipif(not shutil.which("chromium"), reason="Debian's chromium is not installed")
def test_public_page_in_headless_chromium(round_):
    from playwright.sync_api import sync_playwright

    _, site, ns, _ = round_
    code = ns["drawn"].targets[0].credit_code
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=1)
            page.goto(site + "/")
            assert page.locator("a.result").count() == 3
            page.fill("input[name=code]", code)
            page.click("button[type=submit]")
            page.wait_for_url(f"**/?code={code}")
            assert page.locator("a.result").count() == 1
            if os.environ.get("HUB_UPDATE_SCREENSHOT"):
                page.screenshot(path=str(SCREENSHOT), full_page=True)
            page.click("a.result")
            page.wait_for_selector("h1#target")
            text = page.inner_text("main")
            assert code in text and "通过登记的住所" in text and "SC-FD-" in text
        finally:
            browser.close()


def test_draw_test_vector():
    """The vector in docs/inspections.md, for independent implementations."""
    from hub.inspections import draw

    plan = {"count": 2, "id": "P", "officers_per_target": 2, "ratio_ppm": 0}
    officers = [{"cert_no": f"X{i}", "department": "d", "level": "city", "field": "f"} for i in range(1, 5)]
    key = draw.root(
        draw.plan_digest(plan),
        draw.target_pool_digest(["A", "B", "C", "D"]),
        draw.officer_pool_digest(officers),
        "00" * 32,
        "11" * 32,
    )
    assert key.hex() == "43f51b24028c4cd356946e91a45488c0696671c6250d2f93f3be1df947dc184b"
    targets = draw.select_targets(key, ["A", "B", "C", "D"], 2)
    assigned = draw.assign_officers(key, targets, officers, 2, {})
    assert [(a.credit_code, a.officers) for a in assigned] == [("A", ("X2", "X1")), ("B", ("X4", "X2"))]
    assigned = draw.assign_officers(key, targets, officers, 2, draw.conflict_map([["A", "X2"]]))
    assert [(a.credit_code, a.officers) for a in assigned] == [("A", ("X1", "X3")), ("B", ("X4", "X2"))]


def test_overdue_results_and_publications_raise_alerts():
    """Drawn targets with no result N working days after the window, and results not published by
    their due time, become alerts once (deterministic ids, so any replica may write them)."""
    from hub.inspections.results import overdue_alerts
    from hub.inspections.store import InspectionStore
    from hub.records.change import Change

    store = InspectionStore()
    plan = {"id": "P1", "department": "food_drug", "window_start": "2026-12-01", "window_end": "2026-12-04"}
    drawn = {"targets": [{"credit_code": "A"}, {"credit_code": "B"}, {"credit_code": "C"}]}
    results = {
        "result:P1:B": {"credit_code": "B", "published_at_ms": 0, "publish_due_ms": 1_000, "recorded_at_ms": 1},
        "result:P1:C": {"credit_code": "C", "published_at_ms": 5, "publish_due_ms": 1_000, "recorded_at_ms": 2},
    }
    values = {"plan:P1": {"plan": {**plan, "filed_at_ms": 0}, "state": "drawn"}, "draw:P1": drawn, **results}
    store.apply([Change(k, json.dumps(v).encode(), 0, i, 1) for i, (k, v) in enumerate(values.items())])
    # 2026-12-04 is a Friday: 20 working days later is 2026-12-31 (no holidays); 2 days: 2026-12-08.
    alerts = overdue_alerts(
        store, now_ms=int(time.mktime((2027, 1, 2, 0, 0, 0, 0, 0, 0)) * 1000), working_days=20, holidays=()
    )
    assert {(a["credit_code"], a["kind"]) for a in alerts} == {("A", "result_overdue"), ("B", "publication_overdue")}
    early = overdue_alerts(
        store, now_ms=int(time.mktime((2026, 12, 20, 0, 0, 0, 0, 0, 0)) * 1000), working_days=20, holidays=()
    )
    assert [(a["credit_code"], a["kind"]) for a in early] == [("B", "publication_overdue")]
    store.apply([Change(f"alert:{a['id']}", json.dumps(a).encode(), 0, 10 + i, 2) for i, a in enumerate(alerts)])
    assert overdue_alerts(store, now_ms=10**13, working_days=20, holidays=()) == []


def test_natural_persons_are_masked():
    from hub.public.inspections import public_name

    assert public_name("92510603MA6XXXXXX1", "张三便利店") == "张****"  # an individual business: its owner
    assert public_name("91510603MA6XXXXXX1", "德阳市某某有限公司") == "德阳市某某有限公司"


def test_locust_citizens_and_draw_checkers_on_the_feed(round_, tmp_path):
    """loadtest/public_feed.py's HTTP users against the round's site: no failures. Bounded by work
    (--iterations), not by a run time a busy machine might spend before the first request."""
    h, site, ns, _ = round_
    done = subprocess.run(
        [
            *(sys.executable, "-m", "locust", "-f", str(ROOT / "loadtest" / "public_feed.py"), "--headless"),
            *("--users", "4", "--spawn-rate", "4", "--iterations", "3", "--only-summary"),
            *("--host", h.address, "--public-site", site, "--plans", ns["plan"].plan.id),
            *("--verifiers", "0", "--checkers", "1", "--citizens", "3", "--json-file", str(tmp_path / "run")),
            *("Citizen", "DrawChecker"),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,  # a guard only: the run ends when the users have done their tasks
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # The JSON file is written from the final stats at exit; the CSV files lag up to a second behind.
    stats = {e["name"]: e for e in json.loads((tmp_path / "run.json").read_text())}
    assert stats["draws verify"]["num_requests"] == 3  # one checker, three tasks
    assert stats["/"]["num_requests"] >= 3  # each citizen lands on the feed page
    assert sum(e["num_failures"] for e in stats.values()) == 0
