"""``hub serve --workers N`` as a child process on free loopback ports, for load tests and
benchmarks: started in insecure development mode with audit on and the notice engine off, ready
once every worker's cache holds what was loaded, stopped by its PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hub.childproc import free_port
from hub.client import open_channel, wait_serving, workers_target
from hub.status import scrape


class ServedHub:
    def __init__(self, bootstrap: str, data_dir: Path, workers: int, topic_prefix: str = "hub.") -> None:
        port, metrics, own = free_port(), free_port(), free_port()
        self.address = f"127.0.0.1:{port}"
        self.metrics = [f"127.0.0.1:{metrics + i}" for i in range(workers)]  # worker i serves on port + i
        self.spread = workers_target("127.0.0.1", own, workers)  # calls take turns over the workers
        self.workers = workers
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "hub.cli", "serve", "--workers", str(workers), "--insecure-dev"),
                *("--bootstrap-servers", bootstrap, "--topic-prefix", topic_prefix, "--data-dir", str(data_dir)),
                *("--port", str(port), "--metrics-port", str(metrics), "--worker-port", str(own)),
            ],
            env={**os.environ, "HUB_LOG_LEVEL": "WARNING", "HUB_NOTICE_ENGINE": "false"},
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_loaded(self, counts: dict[str, int], timeout: float = 1800, snapshotted: bool = False) -> float:
        """Until every worker is SERVING with at least ``counts`` rows per resource in its cache
        (nothing is measured against a half-loaded worker); returns the seconds waited. With
        ``snapshotted``, also until worker 0 has written its snapshot of those rows (the first comes a
        snapshot interval, 60 s, after it started): writing the snapshot of a city takes seconds of a
        core, the load's cost, not that of what is measured after it."""
        started = time.monotonic()
        wait_serving(open_channel(self.address, department="public_security"), timeout)
        while True:
            try:
                scrapes = [scrape(e) for e in self.metrics]  # every worker answers, whatever ``counts``
                ready = all(s.get("hub_cache_rows", resource=r) >= n for s in scrapes for r, n in counts.items()) and (
                    not snapshotted
                    or all(scrapes[0].get("hub_cache_snapshot_rows", resource=r) >= n for r, n in counts.items())
                )
            except OSError:
                ready = False
            if ready:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise TimeoutError("the hub's workers did not load in time")
            time.sleep(1)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
