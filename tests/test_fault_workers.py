"""One of ``hub serve --workers 2`` SIGKILLed in the middle of a Locust case run. The clerks retry;
the supervisor restarts the worker; every case is answered, and each is recorded exactly once in the
cases topic (a retried case number gets its recorded result, not a second event)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from hub.datagen.city import CitySize
from hub.datagen.produce import produce_city
from hub.testing.served import ServedHub
from tests.faults import count_by_key, wait_for

ROOT = Path(__file__).resolve().parent.parent
SIZE = CitySize(3000, 600)
CASES = 200


def test_a_worker_killed_mid_run_loses_no_case_and_counts_none_twice(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    produce_city(kafka_bootstrap, topic_prefix, SIZE)
    hub = ServedHub(kafka_bootstrap, tmp_path / "hub", workers=2, topic_prefix=topic_prefix)
    answered = tmp_path / "answered.txt"
    answered.touch()
    try:
        hub.wait_loaded({"population.resident": SIZE.residents, "market.entity": SIZE.entities}, timeout=300)
        workers = psutil.Process(hub.pid).children()
        assert len(workers) == 2
        locust = subprocess.Popen(
            [
                *(sys.executable, "-m", "locust", "-f", str(ROOT / "loadtest" / "case_retry.py"), "RetryingClerk"),
                # The run ends once every case is answered; the run time only bounds a stuck one, so that
                # a slow machine does not end it early.
                *("--headless", "--users", "6", "--spawn-rate", "6", "--run-time", "480s", "--host", hub.address),
                *("--residents", str(SIZE.residents), "--entities", str(SIZE.entities), "--cases", str(CASES)),
                *("--exit-code-on-error", "0", "--only-summary", "--stop-timeout", "5"),
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "HUB_ANSWERED_CASES": str(answered)},
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "locust.log").open("wb"),
        )
        wait_for(lambda: len(answered.read_text().split()) >= CASES // 4, "a quarter of the cases answered")
        at_kill = len(answered.read_text().split())
        os.kill(workers[0].pid, signal.SIGKILL)
        assert locust.wait(600) == 0, (tmp_path / "locust.log").read_text()[-3000:]
        wait_for(lambda: len(psutil.Process(hub.pid).children()) == 2, "the supervisor restarting the worker")
    finally:
        hub.stop()
    numbers = answered.read_text().split()
    values: dict[str, set[bytes]] = {}
    events = count_by_key(kafka_bootstrap, f"{topic_prefix}_cases", values, events=True)
    twice = {n: (c, len(values[n])) for n, c in events.items() if c > 1}  # (events, distinct events)
    print(
        f"worker SIGKILL: {len(numbers)} cases answered ({at_kill} before the kill), {len(set(numbers))} distinct, "
        f"{sum(events.values())} case events for {len(events)} case numbers, {len(twice)} recorded twice"
    )
    assert len(numbers) == len(set(numbers)) == CASES
    assert set(events) == set(numbers) and not twice, twice
