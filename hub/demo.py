"""``hub demo``: the hub end to end, with timings.

Generates the city's departmental exports, starts the broker and a hub process (in insecure
development mode: departments are named by a header), runs the population, market and credit
connectors through gRPC Publish with progress bars, and waits until the cache shows the last write.
Then it plays a department's day: the administrative-approval bureau requests access to the
population registry, the public security bureau approves it, the bureau verifies claims, looks a
record up (masked), is refused outside its grant's purpose, and finally both audit questions are
asked. It keeps serving until Ctrl-C.
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
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hub.childproc import ChildProcess, free_port
from hub.client import open_channel, wait_serving
from hub.connect.registry import resolve_connector
from hub.connect.runtime import ConnectorRuntime, RunStats, RuntimeOptions
from hub.connect.source import MappingError
from hub.datagen.city import CITY_SIZE, CitySize
from hub.datagen.exports import ExportSet, write_exports
from hub.kafka.embedded import EmbeddedBroker
from hub.settings import HubSettings
from hub.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    common_pb2,
    governance_pb2,
    governance_pb2_grpc,
    lookup_pb2,
    lookup_pb2_grpc,
    verification_pb2,
    verification_pb2_grpc,
)

CONNECTORS = ("population", "market", "credit")
CONSUMER = "approval_bureau"
CASE = common_pb2.CallContext(purpose=common_pb2.PURPOSE_LEGAL_BASIS, case_number="DY-2017-SP-000001")


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
        self.address = f"{settings.host}:{self.port}"
        self._channels: dict[str, grpc.Channel] = {}
        self._last_offsets: dict[str, tuple[str, str, list]] = {}

    def timed(self, label: str, seconds: float, note: str = "") -> None:
        self.timings.append((label, seconds, note))

    def channel(self, department: str) -> grpc.Channel:
        if department not in self._channels:
            self._channels[department] = open_channel(self.address, department=department)
        return self._channels[department]

    def start(self) -> None:
        s = self.settings
        bootstrap = s.bootstrap_servers
        if not bootstrap:
            t = time.perf_counter()
            self.broker = EmbeddedBroker(self.run_dir / "broker", s.embedded_broker)
            bootstrap = self.broker.start()
            self.timed("start embedded broker", time.perf_counter() - t, f"tansu, {s.embedded_broker}, {bootstrap}")
        t = time.perf_counter()
        command = [
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
        ]
        command += ["--tls-dir", str(s.tls_dir)] if s.tls_dir else ["--insecure-dev"]
        if self.broker is not None and not self.broker.idempotent_producers:
            command.append("--no-kafka-idempotence")
        self.hub = ChildProcess("hub", command, self.run_dir / "logs" / "hub.log")
        self.hub.start()
        wait_serving(self.channel("hub_admin"), 120)
        self.timed("start hub, cache caught up", time.perf_counter() - t, f"pid {self.hub.pid}, port {self.port}")

    def load(self, exports: ExportSet) -> dict[str, RunStats]:
        results: dict[str, RunStats] = {}
        columns = (
            TextColumn("{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>9} rec/s"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=self.console) as progress:
            for name in CONNECTORS:
                connector = resolve_connector(name)()
                task = progress.add_task(name, total=exports.counts[name], rate="")

                def report(stats: RunStats, task=task) -> None:
                    progress.update(task, completed=stats.published + stats.dead_lettered, rate=f"{stats.rate:,.0f}")

                runtime = ConnectorRuntime(
                    connector,
                    connector.default_source(str(exports.files[name])),
                    self.channel(connector.department),
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
                self._last_offsets[connector.resource] = (
                    connector.department,
                    connector.key(first[0].row),
                    runtime.last_offsets,
                )
        return results

    def wait_visible(self) -> None:
        """Read-your-writes: each provider verifies with its last published offsets, so this returns
        only once the cache holds everything."""
        context = common_pb2.CallContext(purpose=common_pb2.PURPOSE_DATA_CHECK, case_number="DY-LOAD-CHECK")
        for resource, (department, key, offsets) in self._last_offsets.items():
            verification_pb2_grpc.VerificationStub(self.channel(department)).Verify(
                verification_pb2.VerifyRequest(
                    resource=resource, key=key, context=context, consistency=common_pb2.Consistency(min_offsets=offsets)
                ),
                timeout=300,
            )

    def governance(self) -> None:
        """The approval bureau asks the population registry for access; the registry approves. The
        hub answers DecideAccess once its replica has applied the grant, so the samples see it."""
        consumer = governance_pb2_grpc.GovernanceStub(self.channel(CONSUMER))
        provider = governance_pb2_grpc.GovernanceStub(self.channel("public_security"))
        filed = consumer.RequestAccess(
            governance_pb2.RequestAccessRequest(
                resource="population.resident",
                fields=["name", "birth_date", "district_code", "status"],
                purposes=[common_pb2.PURPOSE_LEGAL_BASIS],
                legal_basis="《国务院关于加快推进“互联网+政务服务”工作的指导意见》(国发〔2016〕55号)",
            )
        ).request
        deadline = time.strftime("%Y-%m-%d", time.localtime(filed.deadline_ms / 1000))
        decided = provider.DecideAccess(
            governance_pb2.DecideAccessRequest(
                request_id=filed.id, decision=governance_pb2.DECISION_APPROVE, reason="certificate-free approval"
            )
        )
        self.console.print(
            f"access request {filed.id}: {CONSUMER} → population.resident "
            f"(decide by {deadline}, 10 working days); approved as grant {decided.grant.id} "
            f"for {', '.join(decided.grant.fields)}, purpose LEGAL_BASIS"
        )

    def samples(self, exports: ExportSet) -> None:
        """The bureau's day after the grant, step by step; each step's calls are answered before the next."""
        rid, district = _sample_resident(exports)
        self.verify_claims(exports, rid, district)
        self.verify_batch(exports)
        self.look_up(rid)
        self.ask_audit_questions(rid)

    def verify_claims(self, exports: ExportSet, rid: str, district: str) -> None:
        """True, false and refused claims about one resident and one listed entity, as a table."""
        verify = verification_pb2_grpc.VerificationStub(self.channel(CONSUMER))
        serious = _first_serious(exports.files["credit"])
        claim = verification_pb2.Claim
        table = Table(title=f"{CONSUMER} verifies, case {CASE.case_number} (answers carry no field values)")
        table.add_column("question")
        table.add_column("answer")

        def ask(question: str, request, call=verify.Verify) -> None:
            try:
                r = call(request, timeout=5)
                table.add_row(question, f"found={r.found} match={r.match} claims={list(r.claims)}")
            except grpc.RpcError as err:
                table.add_row(question, f"[red]{err.code().name}[/red]: {err.details()}")

        ask(
            f"{rid} registered in district {district}?",
            verification_pb2.VerifyRequest(
                resource="population.resident",
                key=rid,
                context=CASE,
                claims=[claim(field="district_code", values=[district]), claim(field="status", values=["registered"])],
            ),
        )
        ask(
            f"{rid} registered in Deyang (prefix 5106)?",
            verification_pb2.VerifyRequest(
                resource="population.resident",
                key=rid,
                context=CASE,
                claims=[claim(field="district_code", op=verification_pb2.CLAIM_OP_PREFIX, values=["5106"])],
            ),
        )
        other = "510683" if district != "510683" else "510603"
        ask(
            f"{rid} registered in {other}? (false claim)",
            verification_pb2.VerifyRequest(
                resource="population.resident",
                key=rid,
                context=CASE,
                claims=[claim(field="district_code", values=[other])],
            ),
        )
        bad = rid[:17] + ("0" if rid[17] != "0" else "1")
        ask(
            f"{bad} (bad check digit)?",
            verification_pb2.VerifyRequest(resource="population.resident", key=bad, context=CASE),
        )
        ask(
            f"{rid} address? (field outside the grant)",
            verification_pb2.VerifyRequest(
                resource="population.resident",
                key=rid,
                context=CASE,
                claims=[claim(field="address", op=verification_pb2.CLAIM_OP_PREFIX, values=["四川省"])],
            ),
        )
        if serious:
            ask(
                f"{serious} on the serious-violation list on 2017-11-30?",
                verification_pb2.VerifyRequest(
                    resource="credit.list_entry",
                    key=serious,
                    key_field="credit_code",
                    context=CASE,
                    claims=[
                        claim(field="category", values=["serious_violation"]),
                        claim(field="listed_on", op=verification_pb2.CLAIM_OP_AT_MOST, values=["2017-11-30"]),
                        claim(
                            field="removed_on", op=verification_pb2.CLAIM_OP_AFTER, values=["2017-11-30"], or_unset=True
                        ),
                    ],
                ),
            )
        self.console.print(table)

    def verify_batch(self, exports: ExportSet) -> None:
        """Twenty VerifyBatch calls of 1,000 keys each, timed."""
        verify = verification_pb2_grpc.VerificationStub(self.channel(CONSUMER))
        ids = _sample_ids(exports.files["population"], 1000)
        t = time.perf_counter()
        calls = 20
        for _ in range(calls):
            r = verify.VerifyBatch(
                verification_pb2.VerifyBatchRequest(
                    resource="population.resident",
                    keys=ids,
                    context=CASE,
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

    def look_up(self, rid: str) -> None:
        """A lookup within the grant (masked), then one for a purpose the grant does not cover."""
        c = self.console
        lookup = lookup_pb2_grpc.LookupStub(self.channel(CONSUMER))
        got = lookup.Get(lookup_pb2.GetRequest(resource="population.resident", key=rid, context=CASE))
        c.print(f"Lookup.Get {rid} as {CONSUMER} → {got.records[0].decode()} (masked: {', '.join(got.masked_fields)})")
        try:
            lookup.Get(
                lookup_pb2.GetRequest(
                    resource="population.resident",
                    key=rid,
                    context=common_pb2.CallContext(
                        purpose=common_pb2.PURPOSE_WORK_REFERENCE, case_number=CASE.case_number
                    ),
                )
            )
        except grpc.RpcError as err:
            c.print(f"Lookup.Get for WORK_REFERENCE → [red]{err.code().name}[/red]: {err.details()}")

    def ask_audit_questions(self, rid: str) -> None:
        """The provider's question (who used my resource) and the citizen's (who looked at me)."""
        c = self.console
        provider_view = self.wait_audited()
        usage = ", ".join(f"{u.caller}/{common_pb2.Purpose.Name(u.purpose)}: {u.calls}" for u in provider_view.usage)
        c.print(f"public_security asks who used population.resident → {usage}")
        citizen = audit_pb2_grpc.AuditStub(self.channel("citizen_portal")).QuerySubject(
            audit_pb2.QuerySubjectRequest(subject_key=rid)
        )
        c.print(
            f"the citizen {rid[:6]}********{rid[-4:]} asks who looked at their data → "
            + "; ".join(
                f"{e.caller} {e.action} for {common_pb2.Purpose.Name(e.purpose)} in case {e.case_number} ({e.outcome})"
                for e in citizen.entries[:4]
            )
        )

    def wait_audited(self, timeout: float = 30.0) -> audit_pb2.QueryResourceResponse:
        """The provider's view once it shows the samples' last call (the refused lookup). The audit
        writer batches, but one hub process writes one chain, in order: with the last call visible,
        every earlier one is too. The provider's question is not itself a read, so asking again
        changes no answer."""
        stub = audit_pb2_grpc.AuditStub(self.channel("public_security"))
        deadline = time.monotonic() + timeout
        while True:
            view = stub.QueryResource(audit_pb2.QueryResourceRequest(resource="population.resident", limit=3))
            if any(e.caller == CONSUMER and e.purpose == common_pb2.PURPOSE_WORK_REFERENCE for e in view.recent):
                return view
            if time.monotonic() > deadline:
                raise TimeoutError(f"the audit trail did not show the demo's last call within {timeout:.0f}s")
            time.sleep(0.1)

    def report(self) -> None:
        table = Table(title=f"hub demo: {self.size.residents:,} residents, {self.size.entities:,} entities")
        table.add_column("step")
        table.add_column("seconds", justify="right")
        table.add_column("notes")
        for label, seconds, note in self.timings:
            table.add_row(label, f"{seconds:,.2f}", note)
        self.console.print(table)

    def stop(self) -> None:
        for channel in self._channels.values():
            channel.close()
        if self.hub is not None:
            self.hub.stop(grace=15)
        if self.broker is not None:
            self.broker.stop()


def _sample_resident(exports: ExportSet) -> tuple[str, str]:
    population = resolve_connector("population")()
    with exports.files["population"].open(encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            try:
                record = population.map(row)
            except MappingError:
                continue
            if record["status"] == "registered":
                return record["resident_id"], record["district_code"]
    raise RuntimeError("no registered resident in the export")


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
    console.rule("[bold]city exchange hub demo")
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
        demo.start()
        t_load = time.perf_counter()
        results = demo.load(exports)
        demo.wait_visible()
        load_s = time.perf_counter() - t_load
        total = sum(s.published for s in results.values())
        demo.timed(
            "publish → Kafka → cache, end to end",
            load_s,
            f"{total:,} records visible to Verify, {total / load_s:,.0f} records/s",
        )
        assert demo.hub is not None and demo.hub.pid is not None
        demo.timed("hub resident memory", 0.0, f"{process_rss_mb(demo.hub.pid):,.0f} MiB RSS")
        demo.governance()
        demo.samples(exports)
        demo.timed("total", time.perf_counter() - started)
        demo.report()
        if any(s.dead_lettered for s in results.values()):
            console.print(f"rows rejected with reasons: {demo.run_dir / 'connectors'}/<name>/dead-letter.jsonl")
        if options.keep_serving:
            console.print(
                f"[bold green]hub serving on {demo.address}[/bold green] (insecure development mode; "
                f"grpcurl -plaintext -H 'x-hub-department: {CONSUMER}' {demo.address} list). Ctrl-C to stop."
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
