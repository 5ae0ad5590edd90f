"""``hub status``: what a running hub reports, read from its health service and metrics endpoints.

Two scrapes a second apart give rates; latency percentiles are estimated from the histogram
buckets (upper bounds), summed over every process.
"""

from __future__ import annotations

import math
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table


def endpoints(spec: str) -> list[str]:
    """``host:9464,host:9465`` or ``host:9464-9467``."""
    out = []
    for part in spec.split(","):
        host, _, ports = part.strip().rpartition(":")
        first, _, last = ports.partition("-")
        out += [f"{host}:{p}" for p in range(int(first), int(last or first) + 1)]
    return out


@dataclass
class Scrape:
    """One process's metrics: plain samples keyed by (name, labels)."""

    values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)

    def get(self, name: str, **labels: str) -> float:
        """The samples of ``name`` with these labels, summed over the labels not named (a cache
        series also carries the process's ``shard``)."""
        wanted = set(labels.items())
        return sum(v for (n, series), v in self.values.items() if n == name and wanted <= set(series))

    def series(self, name: str) -> dict[tuple[tuple[str, str], ...], float]:
        return {labels: v for (n, labels), v in self.values.items() if n == name}


def scrape(endpoint: str, timeout: float = 5.0) -> Scrape:
    with urllib.request.urlopen(f"http://{endpoint}/metrics", timeout=timeout) as response:
        text = response.read().decode()
    out = Scrape()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def bucket_quantile(buckets: dict[float, float], q: float) -> float:
    """The upper bound of the bucket holding quantile ``q`` of cumulative ``buckets``."""
    if not buckets:
        return math.nan
    total = buckets[max(buckets)]
    if total == 0:
        return math.nan
    for bound in sorted(buckets):
        if buckets[bound] >= q * total:
            return bound
    return math.inf


def _health(address: str) -> str:
    try:
        with grpc.insecure_channel(address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            # types-grpcio-health-checking's HealthStub declares no RPC methods
            reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=3)  # type: ignore[attr-defined]
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    except grpc.RpcError as err:
        return f"unreachable ({err.code().name})"


def print_status(hub: str, metrics: str, interval: float = 1.0) -> int:
    console = Console()
    targets = endpoints(metrics)
    before, failed = {}, []
    for t in targets:
        try:
            before[t] = scrape(t)
        except OSError as exc:
            failed.append(f"{t}: {exc}")
    if not before:
        raise ConnectionError(f"no metrics from {'; '.join(failed)}")
    time.sleep(interval)
    after = {t: scrape(t) for t in before}
    console.print(f"hub {hub}: [bold]{_health(hub)}[/bold]   processes reporting metrics: {len(after)}")
    for line in failed:
        console.print(f"[red]no metrics from {line}[/red]")

    procs = Table("metrics endpoint", "produced/s", "consumed/s", "audit backlog", title="processes")
    for t, now in after.items():
        was = before[t]
        procs.add_row(
            t,
            f"{(now.get('hub_produced_records_total') - was.get('hub_produced_records_total')) / interval:,.0f}",
            f"{(now.get('hub_consumed_records_total') - was.get('hub_consumed_records_total')) / interval:,.0f}",
            f"{now.get('hub_audit_backlog'):,.0f}",
        )
    console.print(procs)

    components = [dict(labels)["component"] for labels in next(iter(after.values())).series("hub_memory_bytes")]
    memory = Table(
        "component",
        *after,
        title="resident memory by component, MiB",
        caption="resident: the process's RSS; other: what no component accounts for (the interpreter, "
        "libraries, librdkafka, heap memory freed but not yet returned)",
    )
    for c in components:
        memory.add_row(c, *(f"{now.get('hub_memory_bytes', component=c) / 2**20:,.0f}" for now in after.values()))
    console.print(memory)

    calls: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    rates: dict[str, float] = defaultdict(float)
    buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for t, now in after.items():
        for labels, value in now.series("hub_rpc_total").items():
            d = dict(labels)
            calls[d["method"]][d["code"]] += value
            rates[d["method"]] += (value - before[t].values.get(("hub_rpc_total", labels), 0.0)) / interval
        for labels, value in now.series("hub_rpc_seconds_bucket").items():
            d = dict(labels)
            buckets[d["method"]][float(d["le"])] += value
    rpc = Table("method", "calls", "errors", "calls/s now", "p50 ms", "p99 ms", title="calls since start")
    for method in sorted(calls):
        total = sum(calls[method].values())
        errors = total - calls[method].get("OK", 0.0)
        rpc.add_row(
            method,
            f"{total:,.0f}",
            f"{errors:,.0f}",
            f"{rates[method]:,.0f}",
            f"≤ {bucket_quantile(buckets[method], 0.5) * 1000:g}",
            f"≤ {bucket_quantile(buckets[method], 0.99) * 1000:g}",
        )
    console.print(rpc)

    cache = Table("resource", "rows", "lag s (worst process)", "rejected records", title="cache")
    first = next(iter(after.values()))
    for labels, rows in sorted(first.series("hub_cache_rows").items()):
        resource = dict(labels)["resource"]
        lag = max(s.get("hub_cache_lag_seconds", resource=resource) for s in after.values())
        rejected = max(s.get("hub_cache_rejected_records_total", resource=resource) for s in after.values())
        cache.add_row(resource, f"{rows:,.0f}", f"{lag:.1f}", f"{rejected:,.0f}")
    console.print(cache)
    return 0
