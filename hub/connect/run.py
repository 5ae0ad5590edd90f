"""``hub connector run``: one connector in the foreground, with visible progress.

On a terminal a live line shows the counts and rate; otherwise a log line every 5 s, and with
``metrics_port`` Prometheus metrics. SIGINT and SIGTERM stop it after in-flight calls settle.
Beside the runtime, a :class:`~hub.connect.corrections.CorrectionDesk` answers disputes about the
connector's resource.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from hub.client import open_channel
from hub.connect.corrections import CorrectionDesk
from hub.connect.registry import resolve_connector
from hub.connect.runtime import ConnectorFailed, ConnectorRuntime, RunStats, RuntimeOptions
from hub.connect.settings import ConnectorSettings

log = logging.getLogger(__name__)


def run_connector(settings: ConnectorSettings) -> int:
    connector = resolve_connector(settings.type)()
    state = settings.state_dir or Path(".hub-data") / "connectors" / connector.name
    tls = settings.tls.paths() if settings.tls else None
    if tls is None:
        log.warning("no certificate given: calling as %s in insecure development mode", connector.department)
    channel = open_channel(settings.hub, department=connector.department, tls=tls)
    console = Console(stderr=True)
    interactive = console.is_terminal
    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, disable=not interactive
    )
    task = progress.add_task(connector.name)
    metrics = None
    if settings.metrics_port is not None:
        from hub.connect.metrics import ConnectorMetrics

        metrics = ConnectorMetrics(connector.name, connector.resource, settings.metrics_port)
        log.info("metrics on http://127.0.0.1:%d/metrics", metrics.port)
    last_logged = [0.0]

    def report(stats: RunStats) -> None:
        text = (
            f"{connector.name} → {connector.resource}: {stats.published:,} published, "
            f"{stats.dead_lettered:,} dead-lettered, {stats.retried:,} retried, {stats.rate:,.0f} rec/s"
        )
        if metrics is not None:
            metrics.update(stats)
        if interactive:
            progress.update(task, description=text)
        elif stats.elapsed - last_logged[0] >= 5:
            last_logged[0] = stats.elapsed
            log.info(text)

    source = connector.default_source(settings.source.get_secret_value())
    runtime = ConnectorRuntime(
        connector,
        source,
        channel,
        state,
        RuntimeOptions(
            batch_size=settings.batch_size,
            max_in_flight=settings.max_in_flight,
            stop_when_idle=settings.once,
            jsonl=settings.jsonl,
        ),
        on_progress=report,
    )
    # A live connector also answers disputes about its resource; a one-shot load does not stay for them.
    desk = None if settings.once else CorrectionDesk(connector, source, channel, state / "corrections-inbox.jsonl")
    desk_thread = threading.Thread(target=desk.run, name="corrections", daemon=True) if desk else None

    def stop(*_: object) -> None:
        runtime.stop()
        if desk is not None:
            desk.stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    try:
        if desk_thread is not None:
            desk_thread.start()
        with progress:
            stats = runtime.run()
    except ConnectorFailed as exc:
        log.error("%s", exc)
        return 2
    finally:
        stop()
        if desk_thread is not None:
            desk_thread.join(5)
        channel.close()
    print(
        f"{connector.name}: {stats.published:,} records published in {stats.elapsed:.1f}s "
        f"({stats.rate:,.0f}/s); {stats.dead_lettered:,} rejected, see {runtime.dead_letter.path}",
        file=sys.stderr,
    )
    return 0 if stats.dead_lettered == 0 else 1
