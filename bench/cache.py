"""In-process cache benchmark at city scale: the Arrow cache against a dict of dicts and a pandas index.

    python -m bench.cache [--residents 1000000]

Measures, on the same resident data (seeded city generator):
- single-key verify per second (two claims: district prefix and status);
- batch verify keys per second, 1,000 keys per batch, same claims;
- resident memory of the cache and of a dict of dicts holding the same records, each built in its
  own fresh process so neither inherits the other's heap.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import random
import subprocess
import sys
import time

import numpy as np
import orjson

from bench.common import Report, rate, rss_mib
from hub.cache.claims import Claim, Op, compile_claims
from hub.cache.table import ResourceTable
from hub.cache.verify import verify_many, verify_one
from hub.catalogue.model import load_builtin
from hub.datagen.city import City, CitySize
from hub.records.change import Change

SEED = 2017
CLAIMS = [Claim("district_code", Op.PREFIX, ("5106",)), Claim("status", Op.EQUALS, ("registered",))]


def resident_values(n: int) -> list[tuple[str, bytes]]:
    city = City(SEED, CitySize(n, 1))
    return [(r["resident_id"], orjson.dumps(r)) for r in city.residents()]


def build_cache(values: list[tuple[str, bytes]]) -> ResourceTable:
    spec = load_builtin().resource("population.resident")
    table = ResourceTable(spec, 1)
    for start in range(0, len(values), 20000):
        table.apply([Change(k, v, 0, start + i) for i, (k, v) in enumerate(values[start : start + 20000])])
    table.settle()  # as the feeder does once the topic is quiet
    return table


def build_dicts(values: list[tuple[str, bytes]]) -> dict[str, dict]:
    return {k: orjson.loads(v) for k, v in values}


def memory_child(kind: str, n: int) -> None:
    """Runs in a fresh process: builds one structure, prints its RSS growth in MiB as JSON."""
    values = resident_values(n)
    gc.collect()
    before = rss_mib()
    structure = build_cache(values) if kind == "cache" else build_dicts(values)
    del values
    gc.collect()
    print(
        json.dumps(
            {
                "kind": kind,
                "mib": rss_mib() - before,
                "rows": len(structure.version.index.base) if kind == "cache" else len(structure),
            }
        )
    )


def measure_memory(n: int) -> dict[str, float]:
    out = {}
    for kind in ("cache", "dicts"):
        result = subprocess.run(
            [sys.executable, "-m", "bench.cache", "--memory-child", kind, "--residents", str(n)],
            capture_output=True,
            text=True,
            check=True,
        )
        out[kind] = json.loads(result.stdout.strip().splitlines()[-1])["mib"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=1_000_000)
    parser.add_argument("--memory-child", choices=["cache", "dicts"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.residents)
        return

    n = args.residents
    speeds = measure_speed(n)
    gc.collect()
    print("measuring memory in fresh processes", flush=True)
    memory = measure_memory(n)
    single, single_compiled, single_dict, single_pandas, batch, batch_dict, batch_pandas = speeds
    report = Report(f"in-process cache, {n:,} residents")
    report.add("single verify/s", single, "dict of dicts", single_dict, "/s", ">= 500,000/s")
    report.add("single verify/s incl. claim compile", single_compiled, "dict of dicts", single_dict, "/s")
    report.add("single verify/s", single, "pandas .at", single_pandas, "/s")
    report.add("batch verify keys/s", batch, "dict of dicts", batch_dict, "keys/s", ">= 2,000,000 and >= 3x dict")
    report.add("batch verify keys/s", batch, "pandas get_indexer", batch_pandas, "keys/s")
    report.add("memory MiB", memory["cache"], "dict of dicts", memory["dicts"], "MiB", "<= 0.4x dict")
    report.print_summary()


def measure_speed(n: int) -> tuple[float, ...]:
    print(f"generating {n:,} residents (seed {SEED})", flush=True)
    values = resident_values(n)
    t = time.perf_counter()
    table = build_cache(values)
    print(f"cache built in {time.perf_counter() - t:.1f}s ({n / (time.perf_counter() - t):,.0f} records/s)")
    t = time.perf_counter()
    dicts = build_dicts(values)
    print(f"dict of dicts built in {time.perf_counter() - t:.1f}s")

    import pandas as pd

    frame = pd.DataFrame.from_records(list(dicts.values()), index="resident_id")
    frame["district_code"] = frame["district_code"].astype("category")
    frame["status"] = frame["status"].astype("category")

    version = table.version
    spec = version.spec
    rng = random.Random(1)
    keys = [k for k, _ in values]
    lookups = [keys[rng.randrange(n)] for _ in range(200_000)]
    batches = [lookups[i : i + 1000] for i in range(0, len(lookups), 1000)]
    compiled = compile_claims(spec, CLAIMS)

    # -- single key -------------------------------------------------------------------------------
    def cache_single() -> int:
        for key in lookups[:50_000]:
            verify_one(version, "resident_id", key, compiled)
        return 50_000

    def cache_single_with_compile() -> int:
        for key in lookups[:50_000]:
            verify_one(version, "resident_id", key, compile_claims(spec, CLAIMS))
        return 50_000

    def dict_single() -> int:
        for key in lookups[:50_000]:
            r = dicts.get(key)
            if r is not None:
                _ = [r["district_code"].startswith("5106"), r["status"] == "registered"]
        return 50_000

    district, status = frame["district_code"], frame["status"]

    def pandas_single() -> int:
        for key in lookups[:5000]:
            with contextlib.suppress(KeyError):
                _ = [district.at[key].startswith("5106"), status.at[key] == "registered"]
        return 5000

    # -- batches of 1,000 -------------------------------------------------------------------------
    def cache_batch() -> int:
        for batch in batches:
            verify_many(version, "resident_id", batch, compiled)
        return len(batches) * 1000

    def dict_batch() -> int:
        for batch in batches:
            found, match = [], []
            for key in batch:
                r = dicts.get(key)
                found.append(r is not None)
                match.append(r is not None and r["district_code"].startswith("5106") and r["status"] == "registered")
        return len(batches) * 1000

    index = frame.index

    def pandas_batch() -> int:
        codes_d = district.cat.codes.to_numpy()
        codes_s = status.cat.codes.to_numpy()
        prefix = np.array([c.startswith("5106") for c in district.cat.categories])
        registered = list(status.cat.categories).index("registered")
        for batch in batches:
            pos = index.get_indexer(batch)
            hit = pos >= 0
            p = pos[hit]
            _ = prefix[codes_d[p]] & (codes_s[p] == registered)
        return len(batches) * 1000

    print("measuring single verifications", flush=True)
    single = rate(cache_single)
    single_compiled = rate(cache_single_with_compile)
    single_dict = rate(dict_single)
    single_pandas = rate(pandas_single)
    print("measuring batch verifications", flush=True)
    batch = rate(cache_batch)
    batch_dict = rate(dict_batch)
    batch_pandas = rate(pandas_batch)
    return single, single_compiled, single_dict, single_pandas, batch, batch_dict, batch_pandas


if __name__ == "__main__":
    main()
