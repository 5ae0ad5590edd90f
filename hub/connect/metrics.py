"""A connector's progress as Prometheus metrics, for runs without a terminal to watch."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from hub.connect.runtime import RunStats


class ConnectorMetrics:
    def __init__(self, connector: str, resource: str, port: int) -> None:
        self.registry = CollectorRegistry()
        labels = {"connector": connector, "resource": resource}
        self._records = Counter(
            "hub_connector_records", "Records by outcome.", ["connector", "resource", "outcome"], registry=self.registry
        )
        self._calls = Counter(
            "hub_connector_publish_calls", "Publish calls made.", list(labels), registry=self.registry
        )
        self._rate = Gauge(
            "hub_connector_records_per_second",
            "Published records per second since start.",
            list(labels),
            registry=self.registry,
        )
        self._labels = labels
        self._seen = RunStats()
        server, _ = start_http_server(port, addr="127.0.0.1", registry=self.registry)
        self.port = server.server_port

    def update(self, stats: RunStats) -> None:
        for outcome, now, before in (
            ("read", stats.read, self._seen.read),
            ("published", stats.published, self._seen.published),
            ("dead_lettered", stats.dead_lettered, self._seen.dead_lettered),
            ("retried", stats.retried, self._seen.retried),
        ):
            if now > before:
                self._records.labels(**self._labels, outcome=outcome).inc(now - before)
        if stats.calls > self._seen.calls:
            self._calls.labels(**self._labels).inc(stats.calls - self._seen.calls)
        self._rate.labels(**self._labels).set(stats.rate)
        self._seen = RunStats(stats.read, stats.published, stats.dead_lettered, stats.retried, stats.calls)
