"""The departmental connectors and the SDK runtime, against a real hub and broker."""

from __future__ import annotations

import csv
import threading
import time
from pathlib import Path

import pytest

from hub.childproc import free_port
from hub.client import open_channel
from hub.connect.registry import resolve_connector
from hub.connect.runtime import ConnectorRuntime, RuntimeOptions
from hub.connect.source import Source, SourceRecord
from hub.datagen.city import CitySize
from hub.datagen.exports import write_exports
from hub.settings import HubSettings
from tests.hubtest import RunningHub


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory):
    return write_exports(5, CitySize(3000, 600), tmp_path_factory.mktemp("exports"), defect_rate=0.01)


def _run(hub: RunningHub, name: str, source: Source, state: Path, **options) -> ConnectorRuntime:
    connector = resolve_connector(name)()
    channel = hub.client(connector.department).channel
    runtime = ConnectorRuntime(connector, source, channel, state, RuntimeOptions(**options))
    runtime.run()
    return runtime


@pytest.mark.parametrize("name", ["population", "market", "credit"])
def test_connector_loads_its_export(hub: RunningHub, exports, tmp_path: Path, name: str) -> None:
    connector = resolve_connector(name)()
    runtime = _run(hub, name, connector.default_source(str(exports.files[name])), tmp_path, batch_size=500)
    stats = runtime.stats
    assert stats.read == exports.counts[name]
    assert stats.published + stats.dead_lettered == stats.read
    if name == "population":
        assert stats.dead_lettered > 0  # the export has defective rows, reported with reasons
        for entry in runtime.dead_letter.entries():
            assert entry["reason"] and entry["row"] and entry["line"] > 1
    hub.verify(connector.resource, _first_key(connector, exports.files[name]), after=_offsets(hub, runtime))
    version = hub.server.cache.version(connector.resource)
    assert version.live == stats.published


def _first_key(connector, path: Path) -> str:
    return connector.key(connector.default_source(str(path)).poll(1)[0].row)


def _offsets(hub: RunningHub, runtime: ConnectorRuntime):
    from hub.v1 import exchange_pb2

    return exchange_pb2.PublishResponse(offsets=runtime.last_offsets)


class StopAfter(Source):
    """Wraps a source and stops it after ``limit`` records, as a crash would."""

    def __init__(self, inner: Source, limit: int) -> None:
        self.inner, self.limit, self.seen = inner, limit, 0

    def setup(self, offsets) -> None:
        self.inner.setup(offsets)

    def poll(self, max_records: int) -> list[SourceRecord]:
        if self.seen >= self.limit:
            return []
        rows = self.inner.poll(min(max_records, self.limit - self.seen))
        self.seen += len(rows)
        return rows

    @property
    def finished(self) -> bool:
        return self.seen >= self.limit or self.inner.finished


def test_restart_resumes_from_stored_offsets(hub: RunningHub, exports, tmp_path: Path) -> None:
    connector = resolve_connector("population")()
    path = str(exports.files["population"])
    first = _run(hub, "population", StopAfter(connector.default_source(path), 1000), tmp_path, batch_size=300)
    assert first.stats.read == 1000
    second = _run(hub, "population", connector.default_source(path), tmp_path, batch_size=300)
    assert second.stats.read == exports.counts["population"] - 1000  # nothing read twice
    assert (
        first.stats.published + second.stats.published + first.stats.dead_lettered + second.stats.dead_lettered
        == exports.counts["population"]
    )
    with open(path, encoding="utf-8-sig", newline="") as f:
        last_id = list(csv.reader(f))[-1][0].upper()
    assert hub.verify("population.resident", last_id, after=_offsets(hub, second)).found


def test_runtime_retries_until_the_hub_is_up(kafka_bootstrap: str, topic_prefix: str, exports, tmp_path: Path) -> None:
    port = free_port()
    connector = resolve_connector("market")()
    channel = open_channel(f"127.0.0.1:{port}", department=connector.department)
    runtime = ConnectorRuntime(
        connector,
        connector.default_source(str(exports.files["market"])),
        channel,
        tmp_path / "state",
        RuntimeOptions(batch_size=200, backoff_initial_s=0.1, backoff_max_s=0.5, call_timeout_s=5),
    )
    result: list = []
    worker = threading.Thread(target=lambda: result.append(runtime.run()))
    worker.start()
    deadline = time.monotonic() + 60
    while runtime.stats.retried == 0:  # calls fail with UNAVAILABLE meanwhile
        assert time.monotonic() < deadline and worker.is_alive(), "the runtime never retried"
        time.sleep(0.05)
    hub = RunningHub(
        HubSettings(
            bootstrap_servers=kafka_bootstrap,
            topic_prefix=topic_prefix,
            port=port,
            data_dir=tmp_path,
            insecure_dev=True,
        ),
        kafka_bootstrap,
    )
    try:
        worker.join(120)
        assert result and result[0].published == exports.counts["market"]
        assert result[0].retried > 0
    finally:
        hub.stop()
        channel.close()
