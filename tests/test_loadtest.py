"""The Locust scenarios run against a real hub: every department's user class, headless, with
CSV and HTML reports; the city-year runner on a small city."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
    for name in ("Cases/Submit", "Verification/Verify", "Lookup/Get", "Exchange/Publish"):
        assert int(rows[name]["Request Count"]) > 0, name
        assert int(rows[name]["Failure Count"]) == 0, name
    assert int(rows["Verification/Verify [INVALID_ARGUMENT]"]["Request Count"]) > 0
    assert int(rows["Subscription/Subscribe event"]["Request Count"]) > 0  # publishes reached the listener
    assert (tmp_path / "run.html").stat().st_size > 10_000


@pytest.mark.slow
@pytest.mark.parametrize("per_call", [1, 25])
def test_city_year_on_a_small_city(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, per_call: int) -> None:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "loadtest.city_year", "--bootstrap-servers", kafka_bootstrap),
            *("--topic-prefix", topic_prefix, "--residents", "3000", "--entities", "600", "--cases", "3000"),
            *("--workers", "1", "--cases-per-call", str(per_call), "--out", str(tmp_path / "out")),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "cases: 3,000 in" in done.stdout and "verifications: 12,000" in done.stdout, done.stdout
    assert "errors: 0" in done.stdout
    assert (tmp_path / "out" / "city_year.png").stat().st_size > 20_000
    assert (tmp_path / "out" / "city_year.html").exists()
    assert (tmp_path / "out" / "city_year_stats.csv").exists()
