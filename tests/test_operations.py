"""What operators watch: the metrics endpoint, `hub status`, per-request debug logs, and several
server processes behind one port."""

from __future__ import annotations

import gc
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from hub.childproc import free_port
from hub.client import wait_serving
from hub.datagen.city import resident_ids
from hub.status import scrape
from tests.hubtest import resident, running_hub

PEOPLE = resident_ids(77, 20)
COMPONENTS = ["cache columns", "cache key indexes", "change rings", "audit index", "case ledger", "notices"]
HUB = [sys.executable, "-m", "hub.cli"]
ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}


class _SlowCounter:
    """A counter child that takes 0.2 s to count: a count made after the answer would be missed."""

    def __init__(self, counter) -> None:
        self._counter = counter

    def inc(self) -> None:
        time.sleep(0.2)
        self._counter.inc()


def test_metrics_status_and_debug_log(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Snapshots only when the test asks (one written meanwhile by the hub's thread would race it).
    with running_hub(kafka_bootstrap, topic_prefix, tmp_path, metrics_port=0, snapshot_interval_s=3600.0) as hub:
        written = hub.publish("population.resident", [resident(p) for p in PEOPLE])
        with caplog.at_level(logging.DEBUG, logger="hub.server.interceptors"):
            for p in PEOPLE[:5]:
                assert hub.verify("population.resident", p, {"status": "registered"}, after=written).match
        with pytest.raises(grpc.RpcError):
            hub.verify("population.resident", "not-an-id")
        lines = [r for r in caplog.records if r.name == "hub.server.interceptors" and r.levelno == logging.DEBUG]
        assert len(lines) == 5 and all(r.method == "/hub.v1.Verification/Verify" and r.code == "OK" for r in lines)
        assert lines[0].department == "public_security" and lines[0].resource == "population.resident"

        endpoint = f"127.0.0.1:{hub.server.metrics.port}"
        metrics = scrape(endpoint)
        assert metrics.get("hub_rpc_total", method="Verification/Verify", code="OK") == 5
        assert metrics.get("hub_rpc_total", method="Verification/Verify", code="INVALID_ARGUMENT") == 1
        assert metrics.get("hub_rpc_seconds_count", method="Exchange/Publish") == 1
        assert metrics.get("hub_cache_rows", resource="population.resident") == len(PEOPLE)
        assert not metrics.series("hub_cache_snapshot_rows")  # none written yet
        hub.server.cache.snapshot_all()
        assert scrape(endpoint).get("hub_cache_snapshot_rows", resource="population.resident") == len(PEOPLE)
        assert metrics.get("hub_produced_records_total") >= len(PEOPLE)
        assert metrics.get("hub_consumed_records_total") >= len(PEOPLE)
        assert metrics.get("hub_cache_lag_seconds", resource="population.resident") < 5
        assert metrics.get("hub_cache_rejected_records_total", resource="population.resident") == 0
        full = metrics.get("hub_gc_collections_total", generation="2")
        gc.collect()  # a full collection, counted with its pause by the callback the hub registered
        after = scrape(endpoint)
        assert after.get("hub_gc_collections_total", generation="2") >= full + 1
        assert after.get("hub_gc_pause_seconds_total", generation="2") > 0
        memory = {dict(labels)["component"]: size for labels, size in metrics.series("hub_memory_bytes").items()}
        assert list(memory) == ["resident", *COMPONENTS, "other"]
        assert memory["resident"] > memory["cache columns"] > 0 and memory["change rings"] > 0
        assert memory["other"] == memory["resident"] - sum(memory[c] for c in COMPONENTS)  # the unaccounted rest
        # Counted before the answer leaves: even a slow count is seen by a scrape right after the refusal.
        children = hub.server.metrics._children
        key = ("/hub.v1.Verification/Verify", "INVALID_ARGUMENT")
        children[key] = (_SlowCounter(children[key][0]), children[key][1])
        for i in range(2, 5):
            with pytest.raises(grpc.RpcError):
                hub.verify("population.resident", "not-an-id")
            assert scrape(endpoint).get("hub_rpc_total", method="Verification/Verify", code="INVALID_ARGUMENT") == i

        status = subprocess.run(
            [*HUB, "status", "--hub", hub.address, "--metrics", endpoint],
            env=ENV,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert status.returncode == 0, status.stderr
        assert "SERVING" in status.stdout and "Verification/Verify" in status.stdout
        assert "population.resident" in status.stdout
        table = status.stdout[status.stdout.index("resident memory by component") :]
        for component in ["resident", *COMPONENTS, "other"]:
            assert re.search(rf"│ {component} +│ +[\d,]+ +│", table), component
        assert "what no component accounts for" in table


def test_several_workers_share_one_port(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    port, metrics = free_port(), free_port()
    proc = subprocess.Popen(
        [
            *HUB,
            *("serve", "--workers", "2", "--port", str(port), "--metrics-port", str(metrics)),
            *("--bootstrap-servers", kafka_bootstrap, "--topic-prefix", topic_prefix),
            *("--data-dir", str(tmp_path), "--insecure-dev"),
        ],
        env={**ENV, "HUB_LOG_LEVEL": "INFO"},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        from hub.client import open_channel

        wait_serving(open_channel(f"127.0.0.1:{port}", department="public_security"), 120)
        deadline = time.monotonic() + 60
        while True:  # the second worker may still be starting
            try:
                both = [scrape(f"127.0.0.1:{m}") for m in (metrics, metrics + 1)]
                break
            except OSError:
                assert time.monotonic() < deadline, "a worker never served metrics"
                time.sleep(0.5)
        assert all(s.get("hub_cache_rows", resource="population.resident") == 0 for s in both)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-3000:]
    assert err.count("hub stopped") == 2
