"""The Locust scenarios run against a real hub: every department's user class, headless, with
CSV and HTML reports; interactively from the web UI, on a master with a worker process; the
city-year runner on a small city."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import orjson
import pytest

from hub.childproc import ChildProcess, free_port, wait_for_tcp
from hub.datagen.city import CitySize
from hub.datagen.produce import produce_city
from tests.hubtest import running_hub

ROOT = Path(__file__).resolve().parent.parent
SIZE = CitySize(3000, 600)


def test_locustfile_headless(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    produce_city(kafka_bootstrap, topic_prefix, SIZE)
    with running_hub(kafka_bootstrap, topic_prefix, tmp_path / "hub") as hub:
        done = subprocess.run(
            [
                *(sys.executable, "-m", "locust", "-f", str(ROOT / "loadtest" / "locustfile.py")),
                *("--headless", "--users", "12", "--spawn-rate", "12", "--run-time", "12s", "--stop-timeout", "3"),
                *("--host", hub.address, "--residents", str(SIZE.residents), "--entities", str(SIZE.entities)),
                *("--miss-share", "0.1", "--invalid-share", "0.1", "--only-summary"),
                *("--csv", str(tmp_path / "run"), "--html", str(tmp_path / "run.html")),
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert done.returncode == 0, done.stderr[-4000:]
    with (tmp_path / "run_stats.csv").open() as f:
        rows = {r["Name"]: r for r in csv.DictReader(f)}
    for name in ("Cases/Submit", "Verification/Verify", "Lookup/Get", "Exchange/Publish", "Supervision/ReportSteps"):
        assert int(rows[name]["Request Count"]) > 0, name
        assert int(rows[name]["Failure Count"]) == 0, name
    assert int(rows["Verification/Verify [INVALID_ARGUMENT]"]["Request Count"]) > 0
    assert int(rows["Subscription/Subscribe event"]["Request Count"]) > 0  # publishes reached the listener
    assert (tmp_path / "run.html").stat().st_size > 10_000


def test_web_ui_drives_a_distributed_run(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    """What an operator does: a master with the web UI, a worker process, Start and Stop in the UI."""
    produce_city(kafka_bootstrap, topic_prefix, SIZE)
    web, master_port = free_port(), free_port()
    locust = [sys.executable, "-m", "locust", "-f", str(ROOT / "loadtest" / "locustfile.py")]
    env = {"PYTHONPATH": str(ROOT)}
    with running_hub(kafka_bootstrap, topic_prefix, tmp_path / "hub") as hub:
        master = ChildProcess(
            "locust master",
            [
                *locust,
                *("--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(master_port)),
                *("--web-host", "127.0.0.1", "--web-port", str(web), "--host", hub.address),
                *("--residents", str(SIZE.residents), "--entities", str(SIZE.entities)),
            ],
            tmp_path / "master.log",
            env,
            ROOT,
        )
        worker = ChildProcess(
            "locust worker",
            [*locust, "--worker", "--master-host", "127.0.0.1", "--master-port", str(master_port)],
            tmp_path / "worker.log",
            env,
            ROOT,
        )
        master.start()
        try:
            wait_for_tcp("127.0.0.1", web, 180, master.proc)  # a guard: a busy machine starts Locust slowly
            worker.start()
            base = f"http://127.0.0.1:{web}"
            assert b"locust" in urllib.request.urlopen(base + "/", timeout=10).read().lower()

            def stats() -> dict:
                return orjson.loads(urllib.request.urlopen(base + "/stats/requests", timeout=10).read())

            deadline = time.monotonic() + 180  # guards, not waits: each loop ends when its condition holds
            while not stats().get("workers"):  # the worker has connected to the master
                assert time.monotonic() < deadline, master.tail()
                time.sleep(0.2)
            form = urllib.parse.urlencode({"user_count": 6, "spawn_rate": 6, "host": hub.address}).encode()
            started = orjson.loads(urllib.request.urlopen(base + "/swarm", data=form, timeout=30).read())
            assert started["success"], started
            deadline = time.monotonic() + 180
            by_name: dict[str, dict] = {}
            while by_name.get("Verification/Verify", {}).get("num_requests", 0) < 5:
                assert time.monotonic() < deadline, master.tail() + worker.tail()
                time.sleep(0.5)
                by_name = {s["name"]: s for s in stats()["stats"]}
            urllib.request.urlopen(base + "/stop", data=b"", timeout=10).read()
            assert by_name["Verification/Verify"]["num_failures"] == 0
            deadline = time.monotonic() + 180
            while stats()["state"] != "stopped":  # the worker's users have stopped
                assert time.monotonic() < deadline, master.tail() + worker.tail()
                time.sleep(0.2)
        finally:
            worker.stop()
            master.stop()


@pytest.mark.slow
@pytest.mark.parametrize("per_call", [1, 25])
def test_city_year_on_a_small_city(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, per_call: int) -> None:
    cases = 3000 if per_call > 1 else 600  # one Submit per case is slow work for the suite: fewer cases
    done = subprocess.run(
        [
            *(sys.executable, "-m", "loadtest.city_year", "--bootstrap-servers", kafka_bootstrap),
            *("--topic-prefix", topic_prefix, "--residents", "3000", "--entities", "600", "--cases", str(cases)),
            *("--workers", "1", "--cases-per-call", str(per_call), "--out", str(tmp_path / "out")),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"cases: {cases:,} in" in done.stdout and f"verifications: {4 * cases:,}" in done.stdout, done.stdout
    assert "errors: 0" in done.stdout
    assert f"answered by worker: {cases // per_call:,}\n" in done.stdout, done.stdout
    assert "cores busy during the drive" in done.stdout, done.stdout
    assert re.search(r"the whole machine during the drive \(cores of \d+\): busy [\d.]+ .* stolen [\d.]+", done.stdout)
    assert (tmp_path / "out" / "city_year.png").stat().st_size > 20_000
    assert (tmp_path / "out" / "city_year.html").exists()
    assert (tmp_path / "out" / "city_year_stats.csv").exists()
