"""Random-inspection benchmark: a city year of draw plans over the city-scale pool.

    python -m bench.inspections [--entities 340000] [--residents 200000] [--departments 33] [--plans 2]

In process, on the hub's own cache tables (hub.cache.table, fed the generated records as the feeder
would): for every department's plans, the target pool by filters (status, district, business scope),
the draw, officer assignment with the conflict-of-interest check against the population registry,
and verification by re-running from the published material. ~10,000 targets in all (3% of 340,000).
Same-run baselines: pandas boolean filtering of the same frame into the same sorted list of credit
codes, and pandas ``sample`` of the filtered frame (targets) and of the officer frame (officers per
target), which prove nothing to anyone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time

import orjson
import pandas as pd

from bench.common import Report
from hub.cache.table import ResourceTable
from hub.catalogue.model import load_builtin
from hub.datagen.city import City, CitySize
from hub.inspections import draw, pools
from hub.inspections.items import InspectionItem
from hub.records.change import Change
from hub.records.reference import SCOPE_ITEMS

SEED = 20261129
ON = dt.date(2026, 12, 1)


def table(name: str, records: list[dict], key: str) -> ResourceTable:
    t = ResourceTable(load_builtin().resource(name), 1)
    for start in range(0, len(records), 20000):
        part = records[start : start + 20000]
        t.apply([Change(r[key], orjson.dumps(r), 0, start + i) for i, r in enumerate(part)])
    t.settle()
    return t


def officers(residents: list[dict], departments: list[str], per_department: int) -> list[dict]:
    rng = random.Random(SEED)
    out = []
    for d in departments:
        for i in range(per_department):
            person = rng.choice(residents)
            out.append(
                {
                    "cert_no": f"51060{i % 2}{d[-2:]}{i:05d}",
                    "resident_id": person["resident_id"],
                    "name": person["name"],
                    "department": d,
                    "level": "city" if i % 2 else "county",
                    "district_code": person["district_code"],
                    "field": d,
                    "valid_from": "2020-01-01",
                    "valid_to": "2029-12-31" if i % 10 else "2025-12-31",  # one in ten expired
                    "status": "valid",
                }
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=340_000)
    parser.add_argument("--residents", type=int, default=200_000)
    parser.add_argument("--departments", type=int, default=33)
    parser.add_argument("--plans", type=int, default=2, help="Plans per department.")
    parser.add_argument("--officers", type=int, default=60, help="Officers per department.")
    parser.add_argument("--targets", type=int, default=10_000, help="Targets drawn in the year.")
    args = parser.parse_args()

    started = time.perf_counter()
    city = City(SEED, CitySize(args.residents, args.entities))
    residents, entities = list(city.residents()), list(city.entities())
    departments = [f"dept{i:02d}" for i in range(args.departments)]
    pool_officers = officers(residents, departments, args.officers)
    versions = {
        pools.RESIDENTS: table(pools.RESIDENTS, residents, "resident_id").version,
        pools.TARGETS: table(pools.TARGETS, entities, "credit_code").version,
        pools.OFFICERS: table(pools.OFFICERS, pool_officers, "cert_no").version,
    }
    frame = pd.DataFrame(entities)[["credit_code", "status", "district_code", "business_scope"]]
    officer_frame = pd.DataFrame(pool_officers)
    print(
        f"{len(entities):,} entities, {len(residents):,} residents, {len(pool_officers):,} officers "
        f"in the cache in {time.perf_counter() - started:.1f}s"
    )

    rng = random.Random(SEED)
    districts = sorted({e["district_code"] for e in entities})
    scopes = [s[0] for s in SCOPE_ITEMS]
    plans = []
    for d in departments:
        for p in range(args.plans):
            f = pools.TargetFilter(
                district_prefix=rng.choice(["5106", *districts]) if p else "5106",
                scope_item=rng.choice(scopes) if p else "",
            )
            plans.append((d, f))
    item = InspectionItem(
        id="X", department="x", name="x", legal_basis="x", checks="x", method="x",
        target_kind="market_entity", default_ratio=0.03, field="x",
    )  # fmt: skip

    t = {k: 0.0 for k in ("pool", "pool_pd", "draw", "draw_pd", "assign", "assign_pd", "verify", "verify_pd")}
    sizes, frames, target_pools = [], [], []
    for _, f in plans:
        s = time.perf_counter()
        pool = pools.target_pool(versions, [item], f, ON)
        t["pool"] += time.perf_counter() - s
        sizes.append(len(pool))
        target_pools.append(pool)
        s = time.perf_counter()
        mask = (frame["status"] == "active") & frame["district_code"].str.startswith(f.district_prefix or "")
        if f.scope_item:
            mask &= frame["business_scope"].map(lambda scope, item=f.scope_item: item in (scope or ()))
        filtered = frame[mask]
        listed = sorted(filtered["credit_code"].tolist())  # the same output: the pool as published
        t["pool_pd"] += time.perf_counter() - s
        frames.append(filtered)
        assert listed == pool
    total = sum(sizes)
    published = []
    for (d, _), pool, filtered in zip(plans, target_pools, frames, strict=True):
        n = max(1, round(args.targets * len(pool) / total))
        officer_pool = pools.officer_pool(versions[pools.OFFICERS], d, [d], ("city", "county"), ON)
        plan = {"id": f"DP-{d}-{len(published)}", "count": n, "ratio_ppm": 0, "officers_per_target": 2}
        seed = f"{rng.getrandbits(256):064x}"
        beacon = draw.sha256_hex(seed.encode())
        s = time.perf_counter()
        key = draw.root(
            draw.plan_digest(plan),
            draw.target_pool_digest(pool),
            draw.officer_pool_digest(officer_pool.officers),
            seed,
            beacon,
        )
        chosen = draw.select_targets(key, pool, draw.sample_size(len(pool), 0, n))
        t["draw"] += time.perf_counter() - s
        s = time.perf_counter()
        filtered.sample(n=len(chosen), random_state=len(published))
        t["draw_pd"] += time.perf_counter() - s
        s = time.perf_counter()
        pairs = pools.conflicts(versions[pools.TARGETS], versions[pools.RESIDENTS], chosen, officer_pool.resident_ids)
        assigned = draw.assign_officers(key, chosen, officer_pool.officers, 2, draw.conflict_map(pairs))
        t["assign"] += time.perf_counter() - s
        s = time.perf_counter()
        mine = officer_frame[(officer_frame["department"] == d) & (officer_frame["valid_to"] >= ON.isoformat())]
        for i in range(len(chosen)):
            mine.sample(n=2, random_state=i)
        t["assign_pd"] += time.perf_counter() - s
        published.append(
            {
                "plan": plan,
                "commitment": {
                    "plan_digest": draw.plan_digest(plan),
                    "target_pool_digest": draw.target_pool_digest(pool),
                    "officer_pool_digest": draw.officer_pool_digest(officer_pool.officers),
                    "seed_commitment": draw.seed_commitment(plan["id"], seed),
                },
                "target_pool": pool,
                "officer_pool": officer_pool.officers,
                "draw": {
                    "seed": seed,
                    "beacon": beacon,
                    "root": key.hex(),
                    "conflicts": pairs,
                    "targets": [{"credit_code": a.credit_code, "officers": list(a.officers)} for a in assigned],
                },
            }
        )
    drawn = sum(len(m["draw"]["targets"]) for m in published)
    conflicts = sum(len(m["draw"]["conflicts"]) for m in published)
    s = time.perf_counter()
    failures = [m["plan"]["id"] for m in published if draw.verify(m)]
    t["verify"] = time.perf_counter() - s
    s = time.perf_counter()
    for i, (m, filtered) in enumerate(zip(published, frames, strict=True)):
        filtered.sample(n=len(m["draw"]["targets"]), random_state=i)
    t["verify_pd"] = time.perf_counter() - s
    assert not failures, failures

    print(
        f"{len(plans)} plans of {args.departments} departments: pools of {min(sizes):,}..{max(sizes):,} "
        f"entities, {drawn:,} targets drawn, {conflicts} officer-target conflicts excluded"
    )
    report = Report("random inspections, a city year (seconds for all plans; lower is better)")
    report.add("target pools by filters (cache)", t["pool"], "pandas filter", t["pool_pd"], "s")
    report.add("draw (commit-reveal hashing)", t["draw"], "pandas sample", t["draw_pd"], "s")
    report.add("officers + conflict checks", t["assign"], "pandas sample", t["assign_pd"], "s")
    report.add("verification by re-running", t["verify"], "pandas re-sample", t["verify_pd"], "s")
    report.print_summary()


if __name__ == "__main__":
    main()
