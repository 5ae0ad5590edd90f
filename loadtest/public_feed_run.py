"""Citizens reading the public feed must not slow verification: two bounded Locust runs, one after
the other against the same hub, with and without citizens.

    python -m loadtest.public_feed_run [--residents 20000] [--entities 5000] [--run-time 20] [--citizens 40]

Starts the embedded broker and ``hub serve`` with the public site on free loopback ports, loads a
small city and an officer pool, files, draws, records and publishes one market-regulation plan, then
runs ``loadtest/public_feed.py``: first gRPC Verifier users and DrawChecker users alone, then the same
while a second Locust process runs ``--citizens`` Citizen users browsing the feed. Prints Verify and
draws-verify latency in both runs.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from hub.childproc import free_port
from hub.client import open_channel
from hub.datagen.city import City, CitySize
from hub.datagen.produce import produce_city
from hub.kafka.embedded import EmbeddedBroker
from hub.testing.served import ServedHub
from hub.v1 import (
    common_pb2,
    exchange_pb2,
    exchange_pb2_grpc,
    inspections_pb2_grpc,
    verification_pb2,
    verification_pb2_grpc,
)
from hub.v1 import inspections_pb2 as ins

ROOT = Path(__file__).resolve().parent.parent
SEED = 2017


def _officers(size: CitySize) -> list[dict]:
    people = [r for r in City(SEED, CitySize(min(size.residents, 200), 1)).residents()][:12]
    return [
        {
            "cert_no": f"SC-MR-{i:04d}",
            "resident_id": p["resident_id"],
            "name": p["name"],
            "department": "market_regulation",
            "level": "city" if i % 2 else "county",
            "district_code": p["district_code"],
            "field": "market",
            "valid_from": "2020-01-01",
            "valid_to": "2030-12-31",
            "status": "valid",
        }
        for i, p in enumerate(people)
    ]


def _round(address: str, size: CitySize) -> str:
    """One plan, drawn, every result recorded and published: what citizens will read."""
    officers = _officers(size)
    records = [exchange_pb2.Record(json=orjson.dumps(o)) for o in officers]
    channel = open_channel(address, department="justice")
    written = exchange_pb2_grpc.ExchangeStub(channel).Publish(
        exchange_pb2.PublishRequest(resource="enforcement.officer", records=records), timeout=30
    )
    verification_pb2_grpc.VerificationStub(channel).Verify(  # read our writes: the pool is in the cache
        verification_pb2.VerifyRequest(
            resource="enforcement.officer",
            key=officers[-1]["cert_no"],
            consistency=common_pb2.Consistency(min_offsets=written.offsets),
            context=common_pb2.CallContext(purpose=common_pb2.PURPOSE_LEGAL_BASIS, case_number="SF-LOAD-0001"),
        ),
        timeout=30,
    )
    market = inspections_pb2_grpc.InspectionsStub(open_channel(address, department="market_regulation"))
    draw_at = int(time.time() * 1000) + 2000
    plan = market.FilePlan(
        ins.FilePlanRequest(
            item_ids=["SC-01"],
            filter=ins.TargetFilter(district_prefix="5106"),
            ratio=0.03,
            officers_per_target=2,
            draw_at_ms=draw_at,
            window_start="2026-12-01",
            window_end="2026-12-31",
        ),
        timeout=60,
    ).plan
    time.sleep(max(0.0, draw_at / 1000 - time.time()))
    drawn = market.Draw(ins.DrawRequest(plan_id=plan.id), timeout=60).draw
    for i, target in enumerate(drawn.targets):
        market.RecordResult(
            ins.RecordResultRequest(
                plan_id=plan.id,
                credit_code=target.credit_code,
                outcome=ins.OUTCOME_NO_PROBLEM if i % 5 else ins.OUTCOME_ORDERED_CORRECTED,
                inspected_on="2026-11-27",
            ),
            timeout=30,
        )
    market.PublishResults(ins.PublishResultsRequest(plan_id=plan.id), timeout=60)
    print(f"plan {plan.id}: {len(drawn.targets)} results published", flush=True)
    return plan.id


def _command(args, hub: ServedHub, site: str, plan: str, users: dict[str, int], out: Path) -> list[str]:
    total = sum(users.values())
    return [
        *(sys.executable, "-m", "locust", "-f", str(ROOT / "loadtest" / "public_feed.py"), "--headless"),
        *("--users", str(total), "--spawn-rate", str(total), "--run-time", f"{args.run_time}s"),
        *("--host", hub.address, "--public-site", site, "--plans", plan, "--stop-timeout", "3"),
        *("--residents", str(args.residents), "--entities", str(args.entities), "--city-seed", str(SEED)),
        *("--verifiers", str(users.get("Verifier", 0)), "--checkers", str(users.get("DrawChecker", 0))),
        *("--citizens", str(users.get("Citizen", 0)), "--only-summary", "--csv", str(out)),
        *users,
    ]


def _stats(out: Path) -> dict[str, dict]:
    with Path(f"{out}_stats.csv").open() as f:
        return {r["Name"]: r for r in csv.DictReader(f)}


def _locust(args, hub: ServedHub, site: str, plan: str, out: Path, citizens: int) -> tuple[dict, dict]:
    """Verifiers and draw checkers in one Locust process and, at the same time, citizens in another (so
    the citizens' client work does not delay the verifiers' own greenlets): (verifiers' stats, citizens')."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    beside = None
    if citizens:
        beside = subprocess.Popen(
            _command(args, hub, site, plan, {"Citizen": citizens}, Path(f"{out}-citizens")),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    try:
        subprocess.run(
            _command(args, hub, site, plan, {"Verifier": args.verifiers, "DrawChecker": 2}, out),
            cwd=ROOT,
            env=env,
            capture_output=True,
            timeout=args.run_time + 120,
        )
    finally:
        if beside is not None:
            beside.wait(args.run_time + 120)
    return _stats(out), _stats(Path(f"{out}-citizens")) if citizens else {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--residents", type=int, default=20_000)
    parser.add_argument("--entities", type=int, default=5_000)
    parser.add_argument("--run-time", type=int, default=20, help="Seconds per run.")
    parser.add_argument("--verifiers", type=int, default=8)
    parser.add_argument("--citizens", type=int, default=40)
    args = parser.parse_args()
    size = CitySize(args.residents, args.entities)
    with tempfile.TemporaryDirectory(prefix="public-feed-") as tmp:
        broker = EmbeddedBroker(Path(tmp) / "broker")
        bootstrap = broker.start()
        hub = None
        try:
            counts = produce_city(bootstrap, "hub.", size, SEED)
            public_port = free_port()
            os.environ["HUB_PUBLIC_PORT"] = str(public_port)
            hub = ServedHub(bootstrap, Path(tmp) / "hub", 1)
            hub.wait_loaded({"market.entity": counts["market.entity"]})
            site = f"http://127.0.0.1:{public_port}"
            plan = _round(hub.address, size)
            quiet, _ = _locust(args, hub, site, plan, Path(tmp) / "a", 0)
            busy, pages = _locust(args, hub, site, plan, Path(tmp) / "b", args.citizens)
        finally:
            if hub is not None:
                hub.stop()
            broker.stop()
    print()
    print(f"== public feed under Locust ({args.run_time}s per run, {args.verifiers} verifiers) ==")
    for name in ("Verification/Verify", "draws verify"):
        a, b = quiet[name], busy[name]
        print(
            f"{name:<20} without citizens: {float(a['Requests/s']):7.1f}/s p50 {a['50%']:>4} ms p95 {a['95%']:>4} ms"
            f" | with {args.citizens} citizens: {float(b['Requests/s']):7.1f}/s p50 {b['50%']:>4} ms "
            f"p95 {b['95%']:>4} ms | p95 ratio {float(b['95%']) / max(1.0, float(a['95%'])):.2f}x"
        )
    page = pages["Aggregated"]
    failures = int(busy["Aggregated"]["Failure Count"]) + int(page["Failure Count"])
    print(
        f"citizens' pages: {float(page['Requests/s']):.1f}/s, p50 {page['50%']} ms, p95 {page['95%']} ms; "
        f"failures in the busy run: {failures}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
