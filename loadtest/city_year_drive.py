"""The load of the city year: Locust in this process, case clerks until the year's cases are done.

Run by :mod:`loadtest.city_year` as its own process (Locust patches the standard library for
gevent, which must not happen in the process that waits on Kafka clients). Writes the summary as
JSON, the chart of throughput and latency over time, Locust's HTML report and its CSV files.
"""

# Locust patches the standard library for gevent on import; it must come first.
from locust import constant, constant_pacing, events  # isort: skip
from locust.env import Environment  # isort: skip

import argparse
import datetime as dt
import itertools
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import gevent
import locust.stats
import orjson
from locust.exception import StopUser
from locust.html import get_html_report
from locust.runners import STATE_RUNNING
from locust.stats import PERCENTILES_TO_REPORT, StatsCSVFileWriter, stats_history

from hub.datagen.city import CitySize
from loadtest.locustfile import CaseClerk, StepReporter
from loadtest.workload import CaseFeed, Workload

locust.stats.PERCENTILES_TO_CHART = [0.5, 0.95, 0.99]
locust.stats.HISTORY_STATS_INTERVAL_SEC = 1  # a point per second on the chart


@dataclass
class Totals:
    cases: int = 0
    verifications: int = 0
    case_errors: int = 0
    steps: int = 0


class CityYearClerk(CaseClerk):
    """Takes the next cases of the year until there are none left."""

    wait_time = constant(0)

    def case_feed(self) -> CaseFeed:
        return self.environment.case_feed

    def next_cases(self):
        cases = self.feed.take(self.per_call)
        if not cases:
            raise StopUser()
        return cases

    def handled(self, results) -> None:
        totals: Totals = self.environment.city_totals
        for r in results:
            totals.cases += 1
            totals.verifications += len(r.evidence)
            totals.case_errors += bool(r.error)


class CityYearStepReporter(StepReporter):
    """The bureau's case system beside the clerks: every step of twenty licence cases a second, every
    fourth case reviewed late, until the clerks are done."""

    fixed_count = 1
    wait_time = constant_pacing(0.5)
    late_every = 4

    def reported(self, steps: int) -> None:
        self.environment.city_totals.steps += steps


def drive(args: argparse.Namespace, address: str, workload: Workload) -> tuple[Environment, Totals, float]:
    options = argparse.Namespace(
        cases_per_call=args.cases_per_call,
        pki="",
        city_seed=args.seed,
        residents=args.residents,
        entities=args.entities,
        miss_share=0.0,
        invalid_share=0.0,
    )
    env = Environment(
        user_classes=[CityYearClerk, CityYearStepReporter], events=events, host=address, parsed_options=options
    )
    env.case_feed = CaseFeed(workload, args.cases // args.years, years=args.years)
    env.city_totals = Totals()
    env.city_timeline = [(time.time(), 0)]  # (wall clock, cases done): the run's slope
    runner = env.create_local_runner()
    args.out.mkdir(parents=True, exist_ok=True)
    csv_writer = StatsCSVFileWriter(env, PERCENTILES_TO_REPORT, str(args.out / "city_year"), full_history=True)
    greenlets = [gevent.spawn(stats_history, runner), gevent.spawn(csv_writer.stats_writer)]
    started = time.perf_counter()
    runner.start(args.users + 1, spawn_rate=args.users + 1)  # the clerks and the step reporter
    while runner.state != STATE_RUNNING:  # test start (grants, the power list) runs before the users
        gevent.sleep(0.2)
    last_report = started
    while runner.user_classes_count.get(CityYearClerk.__name__, 0) > 0:
        gevent.sleep(0.2)
        env.city_timeline.append((time.time(), env.city_totals.cases))
        if time.perf_counter() - last_report >= 10:
            last_report = time.perf_counter()
            done = env.city_totals.cases
            print(f"  {done:,} cases after {last_report - started:.0f}s ({done / (last_report - started):,.0f}/s)")
    wall = time.perf_counter() - started
    locust.stats.update_stats_history(runner)
    runner.quit()
    gevent.sleep(locust.stats.CSV_STATS_INTERVAL_SEC + 0.2)  # one more pass of the CSV writer: the final figures
    gevent.killall(greenlets)
    csv_writer.close_files()
    (args.out / "city_year.html").write_text(get_html_report(env, show_download_link=False))
    return env, env.city_totals, wall


def chart(env: Environment, per_call: int, path: Path, title: str) -> None:
    """Cases per second from the drive's own progress (the step reporter's calls are not cases), call
    latency from Locust's history."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = env.stats.history
    t0 = dt.datetime.fromisoformat(history[0]["time"].replace("Z", "+00:00"))

    def seconds(entry: dict) -> float:
        return (dt.datetime.fromisoformat(entry["time"].replace("Z", "+00:00")) - t0).total_seconds()

    xs = [seconds(h) for h in history]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True, constrained_layout=True)
    timeline = env.city_timeline
    per_second = [(t, c) for i, (t, c) in enumerate(timeline) if i % 10 == 0]  # points about 0.2 s apart: 2 s steps
    rates = [(n1 - n0) / (b - a) for (a, n0), (b, n1) in itertools.pairwise(per_second)]
    start = t0.timestamp()
    top.plot([t - start for t, _ in per_second[1:]], rates, color="tab:blue")
    top.set_ylabel("cases per second")
    top.set_ylim(bottom=0)
    top.grid(alpha=0.3)
    top.set_title(title, fontsize=11)
    for q, colour in ((0.5, "tab:green"), (0.95, "tab:orange"), (0.99, "tab:red")):
        bottom.plot(
            xs, [h[f"response_time_percentile_{q}"][1] for h in history], label=f"p{round(q * 100)}", color=colour
        )
    bottom.axhline(50, color="grey", linestyle="--", linewidth=1, label="50 ms target (p99)")
    bottom.set_ylabel(f"call latency, ms ({per_call} cases per call)")
    bottom.set_xlabel("seconds since the first case")
    bottom.set_ylim(bottom=0)
    bottom.grid(alpha=0.3)
    bottom.legend(loc="lower right")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address")
    parser.add_argument("--cases", type=int, required=True, help="All years' cases.")
    parser.add_argument("--years", type=int, required=True)
    parser.add_argument("--cases-per-call", type=int, required=True)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--residents", type=int, required=True)
    parser.add_argument("--entities", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    workload = Workload(args.seed, CitySize(args.residents, args.entities), 0.0, 0.0)
    env, totals, wall = drive(args, args.address, workload)
    name = "Cases/SubmitBatch" if args.cases_per_call > 1 else "Cases/Submit"
    calls = env.stats.get(name, "grpc")
    step_calls = env.stats.get("Supervision/ReportSteps", "grpc")
    summary = {
        **asdict(totals),
        "wall_s": wall,
        "calls": calls.num_requests,
        "failed_calls": calls.num_failures,
        "p50_ms": calls.get_response_time_percentile(0.5),
        "p95_ms": calls.get_response_time_percentile(0.95),
        "p99_ms": calls.get_response_time_percentile(0.99),
        "step_calls": step_calls.num_requests,
        "failed_step_calls": step_calls.num_failures + sum(e.occurrences for e in env.runner.errors.values()),
        "timeline": env.city_timeline,
    }
    title = (
        f"City year: {totals.cases:,} cases in {wall:.0f}s ({totals.cases / wall:,.0f}/s), "
        f"{args.workers} hub workers, {args.users} clerks, {args.cases_per_call} cases per call"
    )
    chart(env, args.cases_per_call, args.out / "city_year.png", title)
    (args.out / "city_year_summary.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
