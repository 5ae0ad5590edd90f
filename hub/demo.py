"""``hub demo``: the walking skeleton end to end, with timings.

Generates the city's departmental exports, starts the broker and a hub
process, runs the population, market and credit connectors through gRPC
Publish with progress bars, waits until the cache shows the last write,
then runs sample verifications and keeps serving until Ctrl-C.
"""

from __future__ import annotations

import csv
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hub.childproc import ChildProcess, free_port
from hub.connect.registry import resolve_connector
from hub.connect.runtime import ConnectorRuntime, RunStats, RuntimeOptions
from hub.datagen.city import CITY_SIZE, CitySize
from hub.datagen.exports import write_exports
from hub.kafka.embedded import EmbeddedBroker
from hub.settings import HubSettings
from hub.v1 import common_pb2, lookup_pb2, lookup_pb2_grpc, verification_pb2, verification_pb2_grpc

CONNECTORS = ("population", "market", "credit")


@dataclass(frozen=True)
class DemoOptions:
    residents: int = 100_000
    entities: int = 20_000
    seed: int = 2017
    city_scale: bool = False
    keep_serving: bool = True
    defect_rate: float = 0.0005


def process_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_serving(channel: grpc.Channel, timeout: float) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("the hub did not report SERVING")
        time.sleep(0.2)


class Demo:
    def __init__(self, settings: HubSettings, options: DemoOptions, console: Console) -> None:
        self.settings = settings
        self.options = options
        self.console = console
        self.size = CITY_SIZE if options.city_scale else CitySize(options.residents, options.entities)
        self.run_dir = settings.data_dir / "demo" / time.strftime("%Y%m%d-%H%M%S")
        self.timings: list[tuple[str, float, str]] = []
        self.broker: EmbeddedBroker | None = None
        self.hub: ChildProcess | None = None
        self.port = settings.port or free_port(settings.host)
        self._last_offsets: dict[str, tuple[str, list]] = {}

    def timed(self, label: str, seconds: float, note: str = "") -> None:
        self.timings.append((label, seconds, note))

    def start(self) -> grpc.Channel:
        s = self.settings
        bootstrap = s.bootstrap_servers
        if not bootstrap:
            t = time.perf_counter()
            self.broker = EmbeddedBroker(self.run_dir / "broker", s.embedded_broker)
            bootstrap = self.broker.start()
            self.timed("start embedded broker", time.perf_counter() - t, f"tansu, {s.embedded_broker}, {bootstrap}")
        t = time.perf_counter()
        self.hub = ChildProcess(
            "hub",
            [
                sys.executable,
                "-m",
                "hub",
                "serve",
                "--bootstrap-servers",
                bootstrap,
                "--host",
                s.host,
                "--port",
                str(self.port),
                "--data-dir",
                str(self.run_dir),
                "--topic-prefix",
                s.topic_prefix,
            ],
            self.run_dir / "logs" / "hub.log",
        )
        self.hub.start()
        channel = grpc.insecure_channel(
            f"{s.host}:{self.port}", options=[("grpc.max_receive_message_length", 64 << 20)]
        )
        wait_serving(channel, 120)
        self.timed("start hub, cache caught up", time.perf_counter() - t, f"pid {self.hub.pid}, port {self.port}")
        return channel

    def load(self, channel: grpc.Channel, exports) -> dict[str, RunStats]:
        results: dict[str, RunStats] = {}
        with Progress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>9} rec/s"),
            TimeElapsedColumn(),
            console=self.console,
        ) as progress:
            for name in CONNECTORS:
                connector = resolve_connector(name)()
                task = progress.add_task(name, total=exports.counts[name], rate="")

                def report(stats: RunStats, task=task) -> None:
                    progress.update(task, completed=stats.published + stats.dead_lettered, rate=f"{stats.rate:,.0f}")

                runtime = ConnectorRuntime(
                    connector,
                    connector.default_source(str(exports.files[name])),
                    channel,
                    self.run_dir / "connectors" / name,
                    RuntimeOptions(batch_size=2000, max_in_flight=4),
                    on_progress=report,
                )
                stats = runtime.run()
                results[name] = stats
                self.timed(
                    f"connector {name}",
                    stats.elapsed,
                    f"{stats.published:,} published ({stats.rate:,.0f}/s), {stats.dead_lettered} to dead letter",
                )
                first = connector.default_source(str(exports.files[name])).poll(1)
                self._last_offsets[connector.resource] = (connector.key(first[0].row), runtime.last_offsets)
        return results

    def wait_visible(self, channel: grpc.Channel) -> None:
        """Read-your-writes: a Verify that waits for each resource's last published offsets."""
        stub = verification_pb2_grpc.VerificationStub(channel)
        for resource, (key, offsets) in self._last_offsets.items():
            stub.Verify(
                verification_pb2.VerifyRequest(
                    resource=resource, key=key, consistency=common_pb2.Consistency(min_offsets=offsets)
                ),
                timeout=300,
            )

    def samples(self, channel: grpc.Channel, exports) -> None:
        c = self.console
        verify = verification_pb2_grpc.VerificationStub(channel)
        lookup = lookup_pb2_grpc.LookupStub(channel)
        population = resolve_connector("population")()
        with exports.files["population"].open(encoding="utf-8-sig", newline="") as f:
            resident = next(
                r
                for r in map(population.map, _valid_rows(csv.DictReader(f), population))
                if r["status"] == "registered"
            )
        rid, district = resident["resident_id"], resident["district_code"]
        serious = _first_serious(exports.files["credit"])
        claim = verification_pb2.Claim
        ctx = common_pb2.CallContext(purpose=common_pb2.PURPOSE_LEGAL_BASIS, case_number="DY-2017-000001")
        table = Table(title="sample verifications (answers carry no field values)", show_lines=False)
        for col in ("question", "answer"):
            table.add_column(col)

        def ask(question: str, request) -> None:
            try:
                r = verify.Verify(request, timeout=5)
                table.add_row(question, f"found={r.found} match={r.match} claims={list(r.claims)}")
            except grpc.RpcError as err:
                table.add_row(question, f"[red]{err.code().name}[/red]: {err.details()}")

        ask(
            f"{rid} registered in district {district}?",
            verification_pb2.VerifyRequest(
                resource="population.resident",
                key=rid,
                context=ctx,
                claims=[claim(field="district_code", values=[district]), claim(field="status", values=["registered"])],
            ),
        )
        ask(
            f"{rid} registered in Deyang (prefix 5106)?",
            verification_pb2.VerifyRequest(
                resource="population.resident",
                key=rid,
                context=ctx,
                claims=[claim(field="district_code", op=verification_pb2.CLAIM_OP_PREFIX, values=["5106"])],
            ),
        )
        other = "510683" if district != "510683" else "510603"
        ask(
            f"{rid} registered in {other}? (false claim)",
            verification_pb2.VerifyRequest(
                resource="population.resident",
                key=rid,
                context=ctx,
                claims=[claim(field="district_code", values=[other])],
            ),
        )
        bad = rid[:17] + ("0" if rid[17] != "0" else "1")
        ask(
            f"{bad} (bad check digit)?",
            verification_pb2.VerifyRequest(resource="population.resident", key=bad, context=ctx),
        )
        if serious:
            ask(
                f"{serious} on the serious-violation list on 2017-11-30?",
                verification_pb2.VerifyRequest(
                    resource="credit.list_entry",
                    key=serious,
                    key_field="credit_code",
                    context=ctx,
                    claims=[
                        claim(field="category", values=["serious_violation"]),
                        claim(field="listed_on", op=verification_pb2.CLAIM_OP_AT_MOST, values=["2017-11-30"]),
                        claim(
                            field="removed_on", op=verification_pb2.CLAIM_OP_AFTER, values=["2017-11-30"], or_unset=True
                        ),
                    ],
                ),
            )
        c.print(table)

        ids = _sample_ids(exports.files["population"], 1000)
        t = time.perf_counter()
        calls = 20
        for _ in range(calls):
            r = verify.VerifyBatch(
                verification_pb2.VerifyBatchRequest(
                    resource="population.resident",
                    keys=ids,
                    context=ctx,
                    claims=[
                        verification_pb2.ClaimColumn(
                            field="district_code", op=verification_pb2.CLAIM_OP_PREFIX, values=["5106"]
                        )
                    ],
                ),
                timeout=10,
            )
        elapsed = time.perf_counter() - t
        self.timed(
            "VerifyBatch ×20 (1,000 keys)",
            elapsed,
            f"{calls * len(ids) / elapsed:,.0f} keys/s; {sum(r.found)} found, {sum(r.match)} in Deyang",
        )
        got = lookup.Get(
            lookup_pb2.GetRequest(
                resource="population.resident",
                key=rid,
                context=ctx,
                fields=["gender", "birth_date", "district_code", "status"],
            )
        )
        c.print(f"Lookup.Get {rid} → {got.records[0].decode()}")

    def report(self) -> None:
        table = Table(title=f"hub demo: {self.size.residents:,} residents, {self.size.entities:,} entities")
        table.add_column("step")
        table.add_column("seconds", justify="right")
        table.add_column("notes")
        for label, seconds, note in self.timings:
            table.add_row(label, f"{seconds:,.2f}", note)
        self.console.print(table)

    def stop(self) -> None:
        if self.hub is not None:
            self.hub.stop(grace=15)
        if self.broker is not None:
            self.broker.stop()


def _valid_rows(reader, connector):
    from hub.connect.source import MappingError

    for row in reader:
        try:
            connector.map(row)
            yield row
        except MappingError:
            continue


def _sample_ids(path: Path, n: int) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        next(reader)
        return [row[0].upper() for _, row in zip(range(n), reader, strict=False)]


def _first_serious(path: Path) -> str | None:
    with path.open(encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            if row["类别"] == "严重违法失信企业名单" and not row["移出日期"]:
                return row["统一社会信用代码"]
    return None


def run_demo(settings: HubSettings, options: DemoOptions) -> int:
    console = Console()
    demo = Demo(settings, options, console)
    console.rule("[bold]city exchange hub: walking skeleton demo")
    started = time.perf_counter()
    try:
        t = time.perf_counter()
        size = demo.size
        exports = write_exports(
            options.seed,
            size,
            settings.data_dir / "exports" / f"seed{options.seed}-{size.residents}-{size.entities}",
            options.defect_rate,
            progress=lambda m: console.print(f"[dim]{m}[/dim]"),
        )
        demo.timed(
            "generate departments' exports",
            time.perf_counter() - t,
            ", ".join(f"{k} {v:,}" for k, v in exports.counts.items()),
        )
        channel = demo.start()
        t_load = time.perf_counter()
        results = demo.load(channel, exports)
        demo.wait_visible(channel)
        load_s = time.perf_counter() - t_load
        total = sum(s.published for s in results.values())
        demo.timed(
            "publish → Kafka → cache, end to end",
            load_s,
            f"{total:,} records visible to Verify, {total / load_s:,.0f} records/s",
        )
        demo.timed("hub resident memory", 0.0, f"{process_rss_mb(demo.hub.pid):,.0f} MiB RSS")
        demo.samples(channel, exports)
        demo.timed("total", time.perf_counter() - started)
        demo.report()
        dead = [n for n, s in results.items() if s.dead_lettered]
        if dead:
            console.print(f"rows rejected with reasons: {demo.run_dir / 'connectors'}/<name>/dead-letter.jsonl")
        if options.keep_serving:
            console.print(
                f"[bold green]hub serving on {settings.host}:{demo.port}[/bold green] "
                f"(grpcurl -plaintext {settings.host}:{demo.port} list). Ctrl-C to stop."
            )
            stop = threading.Event()
            signal.signal(signal.SIGINT, lambda *_: stop.set())
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            while not stop.wait(1):
                if demo.hub is not None and not demo.hub.alive():
                    console.print("[red]the hub process exited[/red]")
                    return 1
        return 0
    finally:
        demo.stop()
