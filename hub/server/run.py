"""Runs a hub in the foreground until SIGTERM or SIGINT: ``hub serve``.

With ``workers > 1`` this process supervises that many server processes, each a full replica
(its own cache, fed from Kafka) bound to the same gRPC port with SO_REUSEPORT, so the kernel
spreads connections across them and Python's one-core-per-process limit stops being the hub's.
Worker ``i`` serves metrics on ``metrics_port + i``; only worker 0 writes snapshots, all load them.
A worker that dies is restarted.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
import os
import signal
import subprocess
import sys
import threading
import time

import orjson

from hub.catalogue.model import load_catalogue
from hub.childproc import free_port
from hub.client import workers_target
from hub.governance import keys
from hub.kafka.embedded import EmbeddedBroker
from hub.server.app import HubServer
from hub.settings import HubSettings, secret_fields

log = logging.getLogger(__name__)

# The collector's generations, for a process whose calls and feeder allocate fast. At CPython's default
# (700, 10, 10) a young collection came every few hundred objects, promoting the objects of every call and
# feeder batch still in flight; the older generations filled with them, so a full collection (which walks
# every object not frozen, and the cache's index dicts item by item while they are not frozen yet) ran
# every second or two: each worker spent ~10 s of a city load in full collections, and in the year every
# loop stall over 25 ms was one (10 ms early, 25-45 ms by the year's end, as long-lived objects accrue).
GC_THRESHOLDS = (50_000, 20, 20)


async def _serve(settings: HubSettings, bootstrap: str) -> None:
    """Until SIGTERM or SIGINT; a hub whose broker lost its log is replaced by one built from the new log."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    while True:
        hub = HubServer(settings, bootstrap, load_catalogue(settings.catalogue_path))
        await hub.start()
        assert hub.broker is not None
        stopping, lost = asyncio.create_task(stop.wait()), asyncio.create_task(hub.broker.lost_log.wait())
        await asyncio.wait([stopping, lost], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        lost.cancel()
        log.info("stopping: finishing in-flight calls")
        await hub.stop(log_lost=hub.broker.lost_log.is_set())
        if stop.is_set():
            return
        log.warning("starting afresh on the broker's new log")


def serve(settings: HubSettings) -> None:
    """The hub, plus the embedded broker unless bootstrap servers are set."""
    broker = None
    bootstrap = settings.bootstrap_servers
    if not bootstrap:
        broker = EmbeddedBroker(settings.data_dir / "broker", settings.embedded_broker)
        bootstrap = broker.start()
        idempotent = settings.kafka_idempotence and broker.idempotent_producers
        settings = settings.model_copy(update={"kafka_idempotence": idempotent})
    try:
        if settings.workers > 1:
            _supervise(settings, bootstrap)
        else:
            gc.set_threshold(*GC_THRESHOLDS)
            asyncio.run(_serve(settings, bootstrap))
    finally:
        if broker is not None:
            broker.stop()


def worker_environment(settings: HubSettings, bootstrap: str, index: int) -> dict[str, str]:
    """The settings of worker ``index`` as HUB_* variables (a worker reads nothing else)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    values = settings.model_dump(mode="json", exclude_none=True)
    values.update(bootstrap_servers=bootstrap, workers=1, snapshot_writer=index == 0)
    if settings.metrics_port:
        values["metrics_port"] = settings.metrics_port + index
    if settings.worker_port:
        values["worker_port"] = settings.worker_port + index
    for secret in secret_fields(HubSettings):
        value = getattr(settings, secret)
        if value is not None:
            values[secret] = value.get_secret_value()
    for name, value in values.items():
        env[f"HUB_{name.upper()}"] = value if isinstance(value, str) else orjson.dumps(value).decode()
    return env


def _spread_target(settings: HubSettings) -> str:
    """The target naming each worker at its own port, for the log; the ports alone when the host is a
    name or every address (a client names the machine's address itself)."""
    if not settings.worker_port:
        return ""
    last = settings.worker_port + settings.workers - 1
    try:
        if not ipaddress.ip_address(settings.host).is_unspecified:
            return workers_target(settings.host, settings.worker_port, settings.workers)
    except ValueError:
        pass
    return f"ports {settings.worker_port}-{last} of {settings.host}, one a worker"


def _supervise(settings: HubSettings, bootstrap: str) -> None:
    if settings.port == 0:
        settings = settings.model_copy(update={"port": free_port(settings.host)})
    if settings.tls_dir is None:  # created once here, so every worker digests subjects with the same key
        keys.subject_key(settings.data_dir / "dev-keys")
        keys.audit_signing_key(settings.data_dir / "dev-keys")
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())

    def start(index: int) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "serve"], env=worker_environment(settings, bootstrap, index)
        )

    spread = _spread_target(settings)
    workers = [start(i) for i in range(settings.workers)]
    log.info("%d workers on %s:%d: pids %s", len(workers), settings.host, settings.port, [w.pid for w in workers])
    if spread:
        log.info("calls spread over the workers: %s", spread)
    try:
        while not stopping.wait(1.0):
            for i, w in enumerate(workers):
                if w.poll() is not None:
                    log.error("worker %d (pid %d) exited with %s; restarting it", i, w.pid, w.returncode)
                    time.sleep(1.0)
                    workers[i] = start(i)
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for w in workers:
            try:
                w.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker pid %d did not stop in time; killing it", w.pid)
                w.kill()
                w.wait()
