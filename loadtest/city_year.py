"""The city year: load the city and drive the 566,547 cases of 2017 through the hub, then report.

    python -m loadtest.city_year [--years 1] [--workers 2] [--cases-per-call 25] [--users 4] [--out DIR]

Starts the embedded broker (or uses ``--bootstrap-servers``), produces the seeded city (1,000,000
residents, 340,000 entities, ~2.8M credit records) into the topics, starts ``hub serve --workers N``
with audit on (each worker also on its own port; the clerks take one each in turn), waits until
every worker's cache holds the city and worker 0 has written its snapshot of it, and runs the load
(:mod:`loadtest.city_year_drive`, Locust in its own process): case clerks submit the year's cases,
each checked by four verifications in the hub (``loadtest.workload.CITY_YEAR_MIX``),
``--cases-per-call`` at a time, until the year is done.

``--years 2`` drives two years' cases (2017 and 2018) against the same hub, one after the other.

Prints wall time, cases/s, verifications/s, call latency p50/p95/p99, errors, and how many cores
the hub's workers, Locust and the broker kept busy during the drive (which side saturates first), and
how the whole machine's cores were spent meanwhile (busy, idle, stolen by a virtual machine's host);
the steps a case system reported beside the clerks (every fourth case late) and the latency from
each step event to the supervision alert it raised (p50/p99, per worker's case book);
the run's slope: cases/s, CPU per case of the hub and the broker in the first and the last tenth of
the cases and their ratio, the resident memory at 10% and 90% (and with two years, each year's rate);
writes a chart of throughput and latency over time (PNG), Locust's HTML report and its CSV files to
``--out``.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import psutil

from hub.client import ensure_grants
from hub.datagen.city import CITY_SIZE, CitySize
from hub.datagen.produce import produce_city
from hub.kafka.embedded import EmbeddedBroker
from hub.status import bucket_quantile, scrape
from hub.testing.served import ServedHub
from loadtest.slope import ProcessSampler, sample_at, time_at, window
from loadtest.workload import CITY_YEAR_CASES, LEGAL


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU seconds the given live processes have used so far."""
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def machine_cores(before: Any, after: Any) -> str:
    """How the machine's cores were spent between two ``psutil.cpu_times()`` (busy beyond user and
    system is interrupt handling). A run whose processes kept fewer cores busy than the machine did
    shared it with something else; stolen time is a virtual machine's host running other guests."""
    spent = {f: getattr(after, f) - getattr(before, f) for f in after._fields}
    wall = sum(spent.values()) / (os.cpu_count() or 1)
    idle = spent["idle"] + spent.get("iowait", 0.0)

    def cores(seconds: float) -> str:
        return f"{seconds / wall:.2f}" if wall > 0 else "0.00"

    return (
        f"busy {cores(sum(spent.values()) - idle)} (user {cores(spent['user'] + spent.get('nice', 0.0))}, "
        f"system {cores(spent['system'])}), idle {cores(idle)}, stolen {cores(spent.get('steal', 0.0))}"
    )


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # of children already waited for
    return usage.ru_utime + usage.ru_stime


def alert_latency(endpoints: list[str]) -> tuple[int, float, float]:
    """(alerts raised on step events, p50, p99 in seconds) over the workers' case books: the upper
    bounds of the histogram's buckets."""
    buckets: dict[float, float] = {}
    for endpoint in endpoints:
        for (name, labels), value in scrape(endpoint).values.items():
            if name == "hub_supervision_alert_seconds_bucket":
                bound = float(dict(labels)["le"])
                buckets[bound] = buckets.get(bound, 0) + value
    if not buckets:
        return 0, float("nan"), float("nan")
    return int(buckets[max(buckets)]), bucket_quantile(buckets, 0.5), bucket_quantile(buckets, 0.99)


SUBMITS = ("/SubmitBatch", "/Submit")


def calls_per_worker(endpoints: list[str]) -> list[int]:
    """SubmitBatch and Submit calls each worker answered: the clerks take the workers' own ports in
    turn (hub.client.starting_at), so these are near equal when the clerks divide evenly."""
    calls = []
    for endpoint in endpoints:
        answered = scrape(endpoint).series("hub_rpc_total")
        calls.append(int(sum(n for labels, n in answered.items() if dict(labels)["method"].endswith(SUBMITS))))
    return calls


def print_slope(timeline: list[tuple[float, int]], samples: list, years: int) -> None:
    """The run's shape: the first and last tenth, memory at 10% and 90%, and each year's rate."""
    first, last = window(timeline, samples, 0.0, 0.1), window(timeline, samples, 0.9, 1.0)
    print(
        f"first tenth: {first.cases_per_s:,.0f} cases/s, CPU per case: hub {first.hub_cpu_ms_per_case:.2f} ms, "
        f"broker {first.broker_cpu_ms_per_case:.2f} ms"
    )
    print(
        f"last tenth:  {last.cases_per_s:,.0f} cases/s, CPU per case: hub {last.hub_cpu_ms_per_case:.2f} ms, "
        f"broker {last.broker_cpu_ms_per_case:.2f} ms"
    )
    print(f"last tenth / first tenth: {last.cases_per_s / first.cases_per_s:.2f}x cases/s")
    total = timeline[-1][1]
    at = [sample_at(samples, time_at(timeline, f * total)) for f in (0.1, 0.9)]
    print(
        f"resident memory at 10% / 90%: hub {at[0].hub_rss >> 20:,} / {at[1].hub_rss >> 20:,} MiB, "
        f"broker {at[0].broker_rss >> 20:,} / {at[1].broker_rss >> 20:,} MiB"
    )
    if years > 1:
        rates = [window(timeline, samples, y / years, (y + 1) / years).cases_per_s for y in range(years)]
        print(
            "cases/s by year: "
            + ", ".join(f"{r:,.0f}" for r in rates)
            + f" (last / first: {rates[-1] / rates[0]:.2f}x)"
        )
    print(f"load average at the end (1/5/15 min): {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=0, help="Cases to drive (default: 2017's, each year).")
    parser.add_argument("--years", type=int, default=1, help="Years of cases against the same hub (1 or more).")
    parser.add_argument("--cases-per-call", type=int, default=25, help="Cases per SubmitBatch call (1: Submit).")
    parser.add_argument("--users", type=int, default=4, help="Concurrent case clerks (calls in flight).")
    parser.add_argument("--workers", type=int, default=2, help="Hub server processes sharing the port.")
    parser.add_argument("--residents", type=int, default=CITY_SIZE.residents)
    parser.add_argument("--entities", type=int, default=CITY_SIZE.entities)
    parser.add_argument("--seed", type=int, default=2017, help="Seed of the generated city.")
    parser.add_argument("--bootstrap-servers", default="", help="Use this Kafka cluster instead of the embedded one.")
    parser.add_argument("--topic-prefix", default="hub.", help="Prefix of the hub's topics.")
    parser.add_argument("--out", type=Path, default=Path("loadtest-results"), help="Where the reports go.")
    args = parser.parse_args()
    if args.years < 1:
        parser.error("--years: at least 1")
    per_year = args.cases or CITY_YEAR_CASES
    args.cases = per_year * args.years

    size = CitySize(args.residents, args.entities)
    with tempfile.TemporaryDirectory(prefix="city-year-") as tmp:
        broker = None
        bootstrap = args.bootstrap_servers
        if not bootstrap:
            broker = EmbeddedBroker(Path(tmp) / "broker")
            bootstrap = broker.start()
        hub = None
        try:
            started = time.perf_counter()
            counts = produce_city(bootstrap, args.topic_prefix, size, args.seed)
            print(f"city produced into Kafka in {time.perf_counter() - started:.0f}s", flush=True)
            hub = ServedHub(bootstrap, Path(tmp) / "hub", args.workers, args.topic_prefix)
            waited = hub.wait_loaded({"population.resident": counts["population.resident"]}, snapshotted=True)
            print(
                f"{args.workers} hub workers loaded the city (and worker 0 wrote its snapshot) in {waited:.0f}s; "
                f"driving {args.cases:,} cases",
                flush=True,
            )
            ensure_grants(hub.address, [("approval_bureau", "population.resident", [LEGAL])])
            args.out.mkdir(parents=True, exist_ok=True)
            hub_pids = [hub.pid, *(c.pid for c in psutil.Process(hub.pid).children(recursive=True))]
            broker_pids = [broker.pid] if broker is not None and broker.pid else []
            before = (cpu_seconds(hub_pids), _children_cpu_seconds(), cpu_seconds(broker_pids), time.monotonic())
            machine_before = psutil.cpu_times()
            with ProcessSampler(hub_pids, broker_pids) as sampler:
                subprocess.run(
                    [
                        *(sys.executable, "-m", "loadtest.city_year_drive", hub.spread, "--out", str(args.out)),
                        *("--cases", str(args.cases), "--cases-per-call", str(args.cases_per_call)),
                        *("--years", str(args.years), "--users", str(args.users), "--workers", str(args.workers)),
                        *("--seed", str(args.seed), "--residents", str(args.residents)),
                        *("--entities", str(args.entities)),
                    ],
                    check=True,
                )
            elapsed = time.monotonic() - before[3]
            machine = machine_cores(machine_before, psutil.cpu_times())
            alerts = alert_latency(hub.metrics)
            per_worker = calls_per_worker(hub.metrics)
            cores = [
                (cpu_seconds(hub_pids) - before[0]) / elapsed,
                (_children_cpu_seconds() - before[1]) / elapsed,  # the drive, now waited for
                (cpu_seconds(broker_pids) - before[2]) / elapsed,
            ]
        finally:
            if hub is not None:
                hub.stop()
            if broker is not None:
                broker.stop()

    s = orjson.loads((args.out / "city_year_summary.json").read_bytes())
    errors = s["failed_calls"] + s["case_errors"] + s["failed_step_calls"]
    wall = s["wall_s"]
    print()
    print("== city year ==")
    print(f"cases: {s['cases']:,} in {wall:.1f}s wall time")
    print(f"cases/s: {s['cases'] / wall:,.0f}")
    print(f"verifications: {s['verifications']:,} ({s['verifications'] / wall:,.0f}/s)")
    print(
        f"calls: {s['calls']:,} of {args.cases_per_call} cases; answered by worker: "
        + ", ".join(f"{n:,}" for n in per_worker)
    )
    print(f"call latency: p50 {s['p50_ms']:.0f} ms, p95 {s['p95_ms']:.0f} ms, p99 {s['p99_ms']:.0f} ms")
    print(
        f"errors: {errors} ({s['failed_calls']} failed calls, {s['case_errors']} rejected cases, "
        f"{s['failed_step_calls']} failed step reports)"
    )
    print(
        f"steps: {s['steps']:,} in {s['step_calls']:,} ReportSteps calls; supervision alerts raised on step events: "
        f"{alerts[0] // args.workers:,} per worker, latency from the step event p50 <= {alerts[1] * 1000:g} ms, "
        f"p99 <= {alerts[2] * 1000:g} ms"
    )
    print(
        f"cores busy during the drive (of {os.cpu_count()}): hub workers {cores[0]:.2f}, Locust {cores[1]:.2f}"
        + (f", broker {cores[2]:.2f}" if broker is not None else "")
    )
    print(f"the whole machine during the drive (cores of {os.cpu_count()}): {machine}")
    print_slope(s["timeline"], sampler.samples, args.years)
    print(f"reports: {args.out}/city_year.png, city_year.html, city_year_stats*.csv")
    return 0 if errors == 0 and s["cases"] == args.cases else 1


if __name__ == "__main__":
    sys.exit(main())
