"""Recovery benchmark: time from process start to SERVING at city scale, from a snapshot and from a
full replay of the topics, in the same run.

    python -m bench.recovery [--residents 1000000 --entities 340000]

Loads the city into the topics, starts `hub serve` with no snapshot (full replay), stops it with
SIGTERM (it writes its snapshots on the way out), and starts it again (snapshot + tail).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

from bench.common import Report, rss_mib
from hub.childproc import free_port
from hub.client import wait_serving
from hub.datagen.city import CITY_SIZE, CitySize
from hub.datagen.produce import produce_city
from hub.kafka.embedded import EmbeddedBroker


def start_to_serving(bootstrap: str, data_dir: Path) -> tuple[float, float, subprocess.Popen]:
    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hub",
            "serve",
            "--bootstrap-servers",
            bootstrap,
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--insecure-dev",
        ],
        env={**os.environ, "HUB_SNAPSHOT_INTERVAL_S": "86400", "HUB_LOG_LEVEL": "WARNING"},
        stderr=subprocess.DEVNULL,
    )
    wait_serving(grpc.insecure_channel(f"127.0.0.1:{port}"), 900)
    return time.perf_counter() - started, rss_mib(proc.pid), proc


def stop(proc: subprocess.Popen) -> float:
    started = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    proc.wait(300)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=CITY_SIZE.residents)
    parser.add_argument("--entities", type=int, default=CITY_SIZE.entities)
    args = parser.parse_args()
    size = CitySize(args.residents, args.entities)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(Path(tmp) / "broker") as broker:
        counts = produce_city(broker.bootstrap, "hub.", size)
        data_dir = Path(tmp) / "hub"
        replay_s, replay_rss, proc = start_to_serving(broker.bootstrap, data_dir)
        print(f"full replay: SERVING after {replay_s:.1f}s, RSS {replay_rss:,.0f} MiB", flush=True)
        stop_s = stop(proc)
        snapshot_mib = sum(p.stat().st_size for p in (data_dir / "snapshots").rglob("*.arrow")) / 2**20
        print(f"stopped in {stop_s:.1f}s, snapshots {snapshot_mib:,.0f} MiB on disk", flush=True)
        snap_s, snap_rss, proc = start_to_serving(broker.bootstrap, data_dir)
        print(f"from snapshot: SERVING after {snap_s:.1f}s, RSS {snap_rss:,.0f} MiB", flush=True)
        stop(proc)
    total = sum(counts.values())
    report = Report(f"recovery, {total:,} records ({', '.join(f'{k} {v:,}' for k, v in counts.items())})")
    report.add("start to SERVING from snapshot, s", snap_s, "full replay", replay_s, "s", "<= 10 s and <= 0.2x replay")
    print(f"full replay consumed {total / replay_s:,.0f} records/s")
    report.add("hub RSS after recovery, MiB", snap_rss, "after full replay", replay_rss, "MiB")
    report.print_summary()


if __name__ == "__main__":
    main()
