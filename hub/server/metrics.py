"""Prometheus metrics of one hub process, on its own HTTP port (``HUB_METRICS_PORT``).

What operators watch during a run:

- ``hub_rpc_total{method,code}`` and ``hub_rpc_seconds{method}``: call rate, errors and latency,
  recorded by the call interceptor for every governed method;
- ``hub_produced_records_total`` and ``hub_consumed_records_total``: the process's Kafka traffic;
- ``hub_cache_rows{resource,shard}`` and ``hub_cache_lag_seconds{resource,shard}``: the cache's size,
  and the seconds since it last reached the end of the resource's topic (0 while caught up);
- ``hub_cache_rejected_records_total{resource,shard}``: records on a topic the cache could not decode, or
  whose key field is not their Kafka key (a provider publishing around the hub, or a schema change gone
  wrong);
- ``hub_cache_compactions_total{resource,shard}``: rewrites of a table to drop superseded rows (churn);
- ``hub_cache_snapshot_rows{resource,shard}``: records in the last snapshot this process wrote of the
  resource (only the snapshot writer, worker 0, has the series).
  ``shard`` is a sharded replica's ``I/N``, empty for an unsharded hub;
- ``hub_audit_backlog``: audit entries queued and not yet written (calls are refused past a limit);
- ``hub_notices_overdue{department,kind}``: notices now past their claim or feedback limit, and
  ``hub_alerts{department,kind}``: the alerts recorded for them (supervision's risk points);
- ``hub_access_requests_overdue{resource}``: access requests past their decision deadline;
- ``hub_memory_bytes{component}``: the process's resident size and what its parts take (hub.memory);
- ``hub_supervision_alert_seconds``: from a step event's report to the alert it raised in this
  process's case book (electronic supervision keeping up with the steps);
- ``hub_gc_collections_total{generation}`` and ``hub_gc_pause_seconds_total{generation}``: Python's
  garbage collector, which stops the whole process while it runs. A full collection (generation 2)
  stalls every call in flight, for longer the more objects the process keeps outside the frozen cache.

Counters that already exist on the hub's parts are read when scraped, so the request path pays
only for the RPC counter and histogram.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from hub.memory import by_component
from hub.records.shards import WHOLE

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from hub.cache.replica import ReplicaCache
    from hub.flows.stores import CaseLedger, NoticeStore
    from hub.governance.audit import AuditLog
    from hub.governance.audit_index import AuditIndex
    from hub.governance.state import GovernanceState
    from hub.kafka.producer import AckingProducer
    from hub.supervision.alerts import SupervisionAlert

log = logging.getLogger(__name__)

# Verify answers in well under a millisecond in process; a batch or a case takes longer.
_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
_ALERT_BUCKETS = (0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)


@dataclass(frozen=True, kw_only=True)
class HubParts:
    """The parts of a hub whose state is read at scrape time; None while not built yet."""

    cache: ReplicaCache | None
    producers: tuple[AckingProducer | None, ...]  # the records of every one count as produced
    audit: AuditLog | None
    notices: NoticeStore | None = None
    governance: GovernanceState | None = None
    audit_index: AuditIndex | None = None
    case_ledger: CaseLedger | None = None
    catch_ups: dict[str, tuple[int, int]] | None = None  # per topic: rounds, partitions they named


class _PartsCollector:
    """Reads the hub's own counters and gauges at scrape time."""

    def __init__(self, parts: Callable[[], HubParts]):
        self._parts = parts

    def collect(self) -> Iterator[Metric]:
        parts = self._parts()
        cache, audit = parts.cache, parts.audit
        produced = CounterMetricFamily("hub_produced_records", "Records this process produced to Kafka.")
        produced.add_metric([], sum(p.produced for p in parts.producers if p is not None))
        yield produced
        consumed = CounterMetricFamily("hub_consumed_records", "Records this process's cache consumed from Kafka.")
        consumed.add_metric([], cache.feeder.consumed if cache else 0)
        yield consumed
        rows = GaugeMetricFamily("hub_cache_rows", "Live records in the cache.", labels=["resource", "shard"])
        lag = GaugeMetricFamily(
            "hub_cache_lag_seconds",
            "Seconds since the cache last reached the end of the topic.",
            labels=["resource", "shard"],
        )
        rejected = CounterMetricFamily(
            "hub_cache_rejected_records",
            "Records on the topic the cache could not decode.",
            labels=["resource", "shard"],
        )
        compactions = CounterMetricFamily(
            "hub_cache_compactions", "Table rewrites that dropped superseded rows.", labels=["resource", "shard"]
        )
        snapshotted = GaugeMetricFamily(
            "hub_cache_snapshot_rows",
            "Records in the last snapshot of the resource this process wrote (none: no series).",
            labels=["resource", "shard"],
        )
        if cache is not None:
            now_ms = time.time() * 1000
            shard = "" if cache.shard == WHOLE else str(cache.shard)
            for name, table in list(cache.tables.items()):
                version = cache.version(name)
                rows.add_metric([name, shard], version.live)
                seen_end = version.watermark.caught_up_at_ms
                lag.add_metric([name, shard], max(0.0, (now_ms - seen_end) / 1000) if seen_end else float("nan"))
                rejected.add_metric([name, shard], table.rejected)
                compactions.add_metric([name, shard], table.compactions)
            for name, info in list(cache.snapshotted.items()):
                snapshotted.add_metric([name, shard], info.rows)
        yield from (rows, lag, rejected, compactions, snapshotted)
        rounds = CounterMetricFamily(
            "hub_catch_up_rounds",
            "Catch-up rounds finished (reads of a topic to its end before a call goes on).",
            labels=["topic"],
        )
        named = CounterMetricFamily(
            "hub_catch_up_partitions",
            "Partitions those rounds named, summed: over hub_catch_up_rounds, the partitions a round reads.",
            labels=["topic"],
        )
        for topic, (n, partitions) in (parts.catch_ups or {}).items():
            rounds.add_metric([topic], n)
            named.add_metric([topic], partitions)
        yield from (rounds, named)
        backlog = GaugeMetricFamily("hub_audit_backlog", "Audit entries queued, not yet written.")
        backlog.add_metric([], audit.backlog if audit else 0)
        yield backlog
        memory = GaugeMetricFamily("hub_memory_bytes", "Resident memory by component.", labels=["component"])
        for component, size in by_component(cache, parts.audit_index, parts.case_ledger, parts.notices).items():
            memory.add_metric([component], size)
        yield memory
        yield from _supervision(parts, int(time.time() * 1000))


def _supervision(parts: HubParts, now_ms: int) -> Iterator[Metric]:
    """Overdue notices, their alerts and overdue access requests, counted from the replica's stores."""
    overdue: Tally[tuple[str, str]] = Tally()
    alerts: Tally[tuple[str, str]] = Tally()
    if parts.notices is not None:
        for n in parts.notices.notices():
            if (late := n.overdue(now_ms)) is not None:
                overdue[(n.department, late[0])] += 1
        for a in parts.notices.alerts():
            alerts[(a.department, a.kind)] += 1
    labels = ["department", "kind"]
    notices = GaugeMetricFamily("hub_notices_overdue", "Notices past their claim or feedback limit.", labels=labels)
    raised = GaugeMetricFamily("hub_alerts", "Alerts recorded for overdue notices.", labels=labels)
    for family, tally in ((notices, overdue), (raised, alerts)):
        for (department, kind), count in sorted(tally.items()):
            family.add_metric([department, kind], count)
    requests = GaugeMetricFamily(
        "hub_access_requests_overdue", "Access requests past their decision deadline.", labels=["resource"]
    )
    if parts.governance is not None:
        for resource, count in sorted(Tally(r.resource for r in parts.governance.overdue()).items()):
            requests.add_metric([resource], count)
    yield from (notices, raised, requests)


class GcPauses:
    """Collections and the time they stopped the process, per generation, as ``gc.callbacks`` report
    them. Runs inside a collection, on whichever thread triggered it: takes no lock (a collection can
    start while that thread holds one) and makes nothing."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:  # collections never overlap: the interpreter runs one at a time
            generation = info["generation"]
            self.collections[generation] += 1
            self.seconds[generation] += time.perf_counter() - self._started

    def collect(self) -> Iterator[Metric]:
        count = CounterMetricFamily("hub_gc_collections", "Garbage collections.", labels=["generation"])
        paused = CounterMetricFamily(
            "hub_gc_pause_seconds", "Time the garbage collector stopped this process.", labels=["generation"]
        )
        for generation in range(3):
            count.add_metric([str(generation)], self.collections[generation])
            paused.add_metric([str(generation)], self.seconds[generation])
        yield count
        yield paused


class HubMetrics:
    """The registry of one process. :meth:`observe` is called once per call and must stay cheap."""

    def __init__(self, parts: Callable[[], HubParts]) -> None:
        self.registry = CollectorRegistry()
        self._calls = Counter("hub_rpc", "gRPC calls by method and status.", ["method", "code"], registry=self.registry)
        self._seconds = Histogram(
            "hub_rpc_seconds", "gRPC call latency.", ["method"], buckets=_BUCKETS, registry=self.registry
        )
        self._alert_seconds = Histogram(
            "hub_supervision_alert_seconds",
            "From the step event's report to the alert it raised here.",
            buckets=_ALERT_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_PartsCollector(parts))
        self.gc_pauses = GcPauses()
        self.registry.register(self.gc_pauses)
        gc.callbacks.append(self.gc_pauses)
        self._children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        self._server: WSGIServer | None = None
        self.port: int | None = None

    def observe(self, method: str, code: str, seconds: float) -> None:
        children = self._children.get((method, code))
        if children is None:
            short = method.rsplit("/", 2)[-2].removeprefix("hub.v1.") + "/" + method.rsplit("/", 1)[-1]
            children = self._children[(method, code)] = (
                self._calls.labels(short, code),
                self._seconds.labels(short),
            )
        children[0].inc()
        children[1].observe(seconds)

    def observe_alert(self, alert: SupervisionAlert) -> None:
        """An alert raised on a step event's arrival (not by a deadline passing): its latency."""
        if alert.event_reported_at_ms:
            self._alert_seconds.observe(max(0.0, time.time() - alert.event_reported_at_ms / 1000))

    def serve(self, port: int, host: str = "127.0.0.1") -> int | None:
        """Starts the HTTP endpoint; a port in use is logged, not fatal (the hub still serves)."""
        try:
            server, _ = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            log.warning("metrics endpoint not started on %s:%d: %s", host, port, exc)
            return None
        self._server = server
        self.port = server.server_port
        log.info("metrics on http://%s:%d/metrics", host, self.port)
        return self.port

    def close(self) -> None:
        if self.gc_pauses in gc.callbacks:
            gc.callbacks.remove(self.gc_pauses)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
