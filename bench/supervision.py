"""Supervision benchmark: the monthly report over a city year against PostgreSQL, and alert latency.

    python -m bench.supervision [--cases 566547] [--per-second 6000] [--seconds 10] [--grpc-cases 10000]

1. A year of cases from the generator (566,547 cases, about 2.3M step events, 2,686 items of 27
   departments). The eleven monthly reports (January–November) by Arrow group-bys and joins
   (hub.supervision.report), timed beside the same-run baseline: the same aggregates as SQL
   ``GROUP BY`` queries in PostgreSQL over the same events, loaded with COPY and indexed by time.
2. Alert latency: step events produced to the embedded broker at ``--per-second`` cases a second
   (every step of each case; acks=all), consumed by the hub's feeder into the case book, whose
   alert engine raises alerts as the events arrive. Latency is from the event's ``reported_at_ms``
   (set just before produce) to the alert, for every alert raised on arrival; the run keeps up if
   the book has applied every event within a second of the last one produced.
3. Ingestion through gRPC: ``--grpc-cases`` cases reported with ``Supervision.ReportSteps`` (1,000
   steps a call, 4 calls in flight, each step checked against the power list, the officer's
   certificate and its case's order, written with acks=all and applied before the call returns)
   into ``hub serve`` with one worker.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from bench.common import Report
from hub.cache.feeder import CacheFeeder
from hub.cache.table import Change
from hub.datagen.city import resident_ids
from hub.datagen.supervision import EXTRA_DEPARTMENTS, power_list, step_events
from hub.devservices import PostgresServer
from hub.governance.workdays import WorkCalendar
from hub.kafka.clients import admin_config, producer_config
from hub.kafka.embedded import EmbeddedBroker
from hub.kafka.topics import TopicSpec, ensure_topics
from hub.supervision.alerts import AlertEngine, SupervisionAlert
from hub.supervision.casebook import CaseBook
from hub.supervision.powers import DECIDE, PowerItem
from hub.supervision.publicity import PublicityFeed, Retention
from hub.supervision.report import ALERT_SCHEMA, month_bounds, monthly_report
from hub.supervision.steps import CaseState, StepReport, next_event

MONTHS = [f"2017-{m:02d}" for m in range(1, 12)]
SLICES = 100
_MONTH_SQL = [
    """SELECT department, count(*) FILTER (WHERE closes), count(*) FILTER (WHERE closes AND case_days <= promised_days),
       avg(step_days) FILTER (WHERE step NOT IN ('accept', 'publish', 'revoke'))
       FROM step_event WHERE at_ms >= %(start)s AND at_ms < %(end)s GROUP BY department""",
    """SELECT division, count(*) FILTER (WHERE closes), count(*) FILTER (WHERE closes AND case_days <= promised_days),
       avg(step_days) FILTER (WHERE step NOT IN ('accept', 'publish', 'revoke'))
       FROM step_event WHERE at_ms >= %(start)s AND at_ms < %(end)s GROUP BY division""",
    """SELECT department, count(*), count(*) FILTER (WHERE answered) FROM alert
       WHERE raised_at_ms >= %(start)s AND raised_at_ms < %(end)s GROUP BY department""",
    """SELECT division, count(*), count(*) FILTER (WHERE answered) FROM alert
       WHERE raised_at_ms >= %(start)s AND raised_at_ms < %(end)s GROUP BY division""",
    """SELECT department, count(*) FROM item WHERE code NOT IN
       (SELECT DISTINCT item_code FROM step_event WHERE at_ms >= %(start)s AND at_ms < %(end)s) GROUP BY department""",
]


def year_alerts(events: pa.Table, seed: int = 13) -> pa.Table:
    """The year's case-overrun alerts (closing steps past their promised days), four in five answered."""
    late = events.filter(pc.field("closes") & (pc.field("case_days") > pc.field("promised_days")))
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "id": late["case_number"],
            "department": late["department"],
            "division": late["division"],
            "raised_at_ms": late["at_ms"],
            "answered": rng.random(late.num_rows) < 0.8,
        },
        schema=ALERT_SCHEMA,
    )


def arrow_year(events: pa.Table, alerts: pa.Table, items: pa.Table) -> float:
    started = time.perf_counter()
    for month in MONTHS:
        monthly_report(events, alerts, items, month)
    return time.perf_counter() - started


def postgres_year(dsn: str, events: pa.Table, alerts: pa.Table, items: pa.Table) -> float:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE step_event (case_number text, item_code text, category text, department text, "
            "division text, step text, at_ms bigint, step_days int, case_days int, promised_days int, closes bool)"
        )
        conn.execute("CREATE TABLE alert (id text, department text, division text, raised_at_ms bigint, answered bool)")
        conn.execute("CREATE TABLE item (code text, department text)")
        started = time.perf_counter()
        for name, table in (("step_event", events), ("alert", alerts), ("item", items)):
            buffer = io.BytesIO()
            pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False))
            with conn.cursor().copy(f"COPY {name} FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(buffer.getvalue())
        conn.execute("CREATE INDEX ON step_event (at_ms)")
        conn.execute("CREATE INDEX ON alert (raised_at_ms)")
        conn.execute("VACUUM ANALYZE")
        print(f"PostgreSQL: loaded with COPY and indexed in {time.perf_counter() - started:.1f}s", flush=True)
        started = time.perf_counter()
        for month in MONTHS:
            start, end = month_bounds(month)
            for sql in _MONTH_SQL:
                conn.execute(sql, {"start": start, "end": end}).fetchall()
        return time.perf_counter() - started


def case_reports(items: list[PowerItem], n: int, seed: int = 7) -> list[tuple[PowerItem, list[StepReport]]]:
    """Each case's steps as its department reports them: a few late, a few refusals without a reason.
    Officers' certificates are ``DY-ZF-<department>``."""
    rng = np.random.default_rng(seed)
    calendar = WorkCalendar()
    common = [i for i in items if i.category not in ("penalty", "coercive")]
    start = int(time.mktime((2017, 3, 1, 10, 0, 0, 0, 0, 0)) * 1000)
    cases = []
    for k in range(n):
        item = common[int(rng.integers(len(common)))]
        at, reports = start + int(rng.integers(0, 200)) * 86_400_000, []
        for s in [s for s in item.steps if not s.optional]:
            took = s.limit_days + 2 if rng.random() < 0.02 else int(rng.integers(0, s.limit_days + 1))
            at = calendar.add(at, took) if reports else at
            refused = s.name == DECIDE and rng.random() < 0.01
            reports.append(
                StepReport(
                    case_number=f"B{k:07d}", item_code=item.code, step=s.name,
                    officer_certificate=f"DY-ZF-{item.department}", at_ms=at,
                    outcome=("refused" if refused else "approved") if s.name == DECIDE else "",
                    target_name="某公司" if s.name == DECIDE else "", target_kind="legal" if s.name == DECIDE else "",
                )
            )  # fmt: skip
        cases.append((item, reports))
    return cases


def prepared_cases(items: list[PowerItem], n: int) -> list[list[dict]]:
    """Each case's step events, through the same rules as ReportStep; ``reported_at_ms`` is set when produced."""
    calendar = WorkCalendar()
    cases = []
    for item, reports in case_reports(items, n):
        case, events = None, []
        for report in reports:
            event = next_event(item, case, report, calendar, 0)
            case = case or CaseState.opened(event)
            case.advance(event)
            events.append(orjson.loads(orjson.dumps(event)))
        cases.append(events)
    return cases


def grpc_ingestion(bootstrap: str, data_dir: Path, items: list[PowerItem], n_cases: int, in_flight: int) -> float:
    """Cases a second through ``Supervision.ReportSteps`` (1,000 steps a call) into ``hub serve``."""
    import asyncio

    from hub.client import identity_headers, open_channel
    from hub.testing.served import ServedHub
    from hub.v1 import (
        catalog_pb2,
        catalog_pb2_grpc,
        exchange_pb2,
        exchange_pb2_grpc,
        supervision_pb2,
        supervision_pb2_grpc,
    )

    hub = ServedHub(bootstrap, data_dir, 1)
    try:
        departments = sorted({i.department for i in items})
        officers = [
            {"cert_no": f"DY-ZF-{d}", "resident_id": rid, "name": "王建国", "department": d, "level": "city"}
            | {"district_code": "510600", "field": d, "valid_from": "2015-01-01", "valid_to": "2030-12-31"}
            | {"status": "valid"}
            for d, rid in zip(departments, resident_ids(11, len(departments)), strict=True)
        ]
        exchange = exchange_pb2_grpc.ExchangeStub(open_channel(hub.address, department="justice"))
        hub.wait_loaded({})
        catalog = catalog_pb2_grpc.CatalogStub(open_channel(hub.address, department="hub_admin"))
        for code, name in EXTRA_DEPARTMENTS.items():
            descriptor = catalog_pb2.DepartmentDescriptor(code=code, name=name, title=name)
            catalog.RegisterDepartment(catalog_pb2.RegisterDepartmentRequest(department=descriptor), timeout=30)
        for resource, records in (("power.item", [i.record() for i in items]), ("enforcement.officer", officers)):
            pb = [exchange_pb2.Record(json=orjson.dumps(r)) for r in records]
            exchange.Publish(exchange_pb2.PublishRequest(resource=resource, records=pb), timeout=120)
        hub.wait_loaded({"power.item": len(items), "enforcement.officer": len(officers)})
        by_department: dict[str, list[supervision_pb2.ReportStepRequest]] = {}
        for item, reports in case_reports(items, n_cases, seed=11):
            by_department.setdefault(item.department, []).extend(
                supervision_pb2.ReportStepRequest(
                    case_number=r.case_number, item_code=r.item_code, step=r.step,
                    officer_certificate=r.officer_certificate, at_ms=r.at_ms, outcome=r.outcome,
                    target_name=r.target_name, target_kind=supervision_pb2.TARGET_KIND_LEGAL if r.target_kind else 0,
                )
                for r in reports
            )  # fmt: skip

        async def run() -> float:
            calls = []
            for department, steps in by_department.items():
                channel = grpc.aio.insecure_channel(hub.address)
                stub = supervision_pb2_grpc.SupervisionStub(channel)
                metadata = identity_headers(department)
                # a call's steps end on a case boundary, so no case is split across calls in flight
                batch: list = []
                for step in steps:
                    if len(batch) >= 1000 - 8 and step.step == "accept":
                        calls.append((stub, metadata, batch))
                        batch = []
                    batch.append(step)
                calls.append((stub, metadata, batch))
            gate = asyncio.Semaphore(in_flight)

            async def send(stub, metadata, batch) -> None:
                async with gate:
                    results = (
                        await stub.ReportSteps(
                            supervision_pb2.ReportStepsRequest(steps=batch), metadata=metadata, timeout=120
                        )
                    ).results
                    refused = [r.error for r in results if r.code != "OK"]
                    assert not refused, refused[:3]

            started = time.perf_counter()
            await asyncio.gather(*(send(*c) for c in calls))
            return time.perf_counter() - started

        return n_cases / asyncio.run(run())
    finally:
        hub.stop()


def _produce(bootstrap: str, topic: str, n_cases: int, per_second: int, ready, go, result) -> None:
    """The departments' systems, in their own process: each case's events, paced through each second."""
    cases = prepared_cases(power_list(), n_cases)
    producer = Producer(producer_config(bootstrap))
    ready.set()
    go.wait()
    slice_size = max(1, per_second // SLICES)
    started = time.perf_counter()
    for n, first in enumerate(range(0, len(cases), slice_size)):
        for events in cases[first : first + slice_size]:
            for event in events:
                event["reported_at_ms"] = int(time.time() * 1000)
                producer.produce(topic, orjson.dumps(event), event["case_number"].encode())
        producer.poll(0)
        pause = started + (n + 1) / SLICES - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    producer.flush(30)
    result.put((sum(map(len, cases)), time.perf_counter() - started))


@dataclass
class Latency:
    alerts: list[float] = field(default_factory=list)  # ms from the step event to its alert
    applied: list[float] = field(default_factory=list)  # ms from the event's produce to the book having it
    events: int = 0
    producing_s: float = 0.0
    behind_s: float = 0.0  # from the last produce until every event was applied


def alert_latency(bootstrap: str, n_cases: int, per_second: int) -> Latency:
    topic = "bench._steps"
    ensure_topics(AdminClient(admin_config(bootstrap)), [TopicSpec(topic, 3, compacted=False)])
    out = Latency()

    def on_alert(alert: SupervisionAlert) -> None:
        if alert.event_reported_at_ms:
            out.alerts.append(time.time() * 1000 - alert.event_reported_at_ms)

    def on_changes(topic: str, changes: Sequence[Change]) -> None:  # the Kafka hop and the book, per event
        now = time.time() * 1000
        out.applied.extend(now - c.timestamp_ms for c in changes[::20])

    spawn = multiprocessing.get_context("spawn")
    ready, go, result = spawn.Event(), spawn.Event(), spawn.Queue()
    producer = spawn.Process(target=_produce, args=(bootstrap, topic, n_cases, per_second, ready, go, result))
    producer.start()
    calendar = WorkCalendar()
    book = CaseBook(3, AlertEngine(calendar, 5), PublicityFeed(calendar, Retention()), on_alert=on_alert)
    feeder = CacheFeeder(bootstrap, {topic: book}, on_changes=on_changes)
    try:
        ready.wait(300)
        feeder.start()
        go.set()
        out.events, out.producing_s = result.get(timeout=600)
        last = time.perf_counter()
        while sum(book.positions()) < out.events and time.perf_counter() - last < 60:
            threading.Event().wait(0.01)
        out.behind_s = time.perf_counter() - last
    finally:
        feeder.stop()
        producer.join(30)
    return out


def percentiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return float("nan"), float("nan")
    q = statistics.quantiles(values, n=100)
    return q[49], q[98]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=566_547, help="Cases in the year (report).")
    parser.add_argument("--per-second", type=int, default=6000, help="Cases a second (alert latency).")
    parser.add_argument("--seconds", type=int, default=10, help="How long to produce at that pace.")
    parser.add_argument("--grpc-cases", type=int, default=10_000, help="Cases reported through ReportSteps.")
    args = parser.parse_args()

    items = power_list()
    started = time.perf_counter()
    year = step_events(items, args.cases)
    alerts = year_alerts(year.events)
    print(
        f"generated {year.n_cases:,} cases, {year.events.num_rows:,} step events, {alerts.num_rows:,} alerts, "
        f"{len(items):,} items in {time.perf_counter() - started:.1f}s",
        flush=True,
    )
    arrow_s = arrow_year(year.events, alerts, year.items)
    print(f"Arrow: 11 monthly reports in {arrow_s:.2f}s", flush=True)
    n_cases = args.per_second * args.seconds
    with tempfile.TemporaryDirectory(prefix="bench-supervision-") as tmp:
        postgres = PostgresServer(Path(tmp) / "pg")
        try:
            pg_s = postgres_year(postgres.start(), year.events, alerts, year.items)
        finally:
            postgres.stop()
        print(f"PostgreSQL: the same 11 months of GROUP BY in {pg_s:.2f}s", flush=True)
        broker = EmbeddedBroker(Path(tmp) / "broker")
        try:
            bootstrap = broker.start()
            lat = alert_latency(bootstrap, n_cases, args.per_second)
            ingested = grpc_ingestion(bootstrap, Path(tmp) / "hub", items, args.grpc_cases, in_flight=4)
        finally:
            broker.stop()
    alerts_p, applied_p = percentiles(lat.alerts), percentiles(lat.applied)
    print(
        f"alerts: {n_cases:,} cases ({lat.events:,} step events) produced in {lat.producing_s:.1f}s "
        f"({n_cases / lat.producing_s:,.0f} cases/s); all applied {lat.behind_s:.2f}s after the last produce; "
        f"event to applied p50 {applied_p[0]:.0f} ms, p99 {applied_p[1]:.0f} ms; "
        f"{len(lat.alerts):,} alerts raised on arrival, p50 {alerts_p[0]:.0f} ms, p99 {alerts_p[1]:.0f} ms",
        flush=True,
    )
    report = Report(f"supervision: a city year ({year.n_cases:,} cases, {year.events.num_rows:,} step events)")
    report.add("11 monthly reports, Arrow", arrow_s, "PostgreSQL GROUP BY", pg_s, "s")
    report.add("cases/s with alerts computed", n_cases / lat.producing_s, "target", args.per_second, "cases/s")
    report.add("cases/s through gRPC ReportSteps", ingested, "target", args.per_second, "cases/s")
    report.print_summary()
    print(f"alert latency from the step event: p50 {alerts_p[0]:.0f} ms, p99 {alerts_p[1]:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
