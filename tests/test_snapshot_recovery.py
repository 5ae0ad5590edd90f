"""kill -9 of a hub while it writes a snapshot, then recovery: the cache equals Kafka."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from pyarrow import ipc

from hub.childproc import free_port
from hub.datagen.city import resident_ids
from tests.faults import read_topic
from tests.hubtest import resident, running_hub


def _serve(bootstrap: str, prefix: str, data_dir: Path, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hub",
            "serve",
            "--bootstrap-servers",
            bootstrap,
            "--topic-prefix",
            prefix,
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--insecure-dev",
        ],
        env={**os.environ, "HUB_SNAPSHOT_INTERVAL_S": "0.05"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_kill9_during_snapshot_write_then_recovery_equals_kafka(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    ids = resident_ids(11, 60_000)
    snapshots = tmp_path / "snapshots" / topic_prefix.rstrip(".")
    final = snapshots / "population.resident.arrow"
    kills = 0
    with running_hub(kafka_bootstrap, topic_prefix, tmp_path / "loader") as loader:
        for start in range(0, len(ids), 5000):
            loader.publish("population.resident", [resident(r) for r in ids[start : start + 5000]])
        for round_ in range(3):
            proc = _serve(kafka_bootstrap, topic_prefix, tmp_path, free_port())
            try:
                deadline = time.monotonic() + 120
                while not final.exists() and time.monotonic() < deadline:  # a complete snapshot first
                    time.sleep(0.01)
                # churn while the hub runs, so it writes the next snapshot; kill -9 in the middle of that write
                loader.publish("population.resident", [resident(r, status="moved_out") for r in ids[:3000]])
                loader.publish("population.resident", [(r, None) for r in ids[-2000 - round_ :]])
                while time.monotonic() < deadline:
                    if any(p.name.endswith(".tmp") for p in snapshots.glob(".*")):
                        proc.send_signal(signal.SIGKILL)
                        kills += 1
                        break
                    time.sleep(0.0005)
            finally:
                proc.kill()
                proc.wait()
            # the previous (or a newer, complete) snapshot is still a whole Arrow file, never a torn one
            assert ipc.open_file(str(final)).read_all().num_rows >= len(ids) - 2002
    assert kills > 0, "never caught a snapshot write in progress"
    for leftover in snapshots.glob(".*.tmp"):  # a killed writer leaves its temporary file, never a torn snapshot
        leftover.unlink()

    model = read_topic(kafka_bootstrap, f"{topic_prefix}population.resident")
    with running_hub(kafka_bootstrap, topic_prefix, tmp_path) as hub:
        cache = hub.server.cache
        version = cache.version("population.resident")
        assert version.live == len(model) == 60_000 - 2002
        assert cache.loaded_from_snapshot.get("population.resident", 0) > 0
        rows = version.rows(list(model))
        assert (rows >= 0).all()
        empty = dict.fromkeys(f.name for f in version.spec.fields)
        for key, row in zip(list(model)[::97], rows[::97].tolist(), strict=True):
            assert version.record(row) == {**empty, **orjson.loads(model[key])}
        assert hub.verify("population.resident", ids[0], {"status": "moved_out"}).match
        assert not hub.verify("population.resident", ids[-1]).found
