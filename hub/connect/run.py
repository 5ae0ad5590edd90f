"""``hub connector run NAME``: one connector in the foreground, with visible progress."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from hub.client import open_channel
from hub.connect.registry import resolve_connector
from hub.connect.runtime import ConnectorFailed, ConnectorRuntime, RunStats, RuntimeOptions

log = logging.getLogger(__name__)


def run_connector(
    name: str,
    *,
    source: str,
    hub: str,
    state_dir: Path | None,
    batch_size: int = 2000,
    max_in_flight: int = 4,
    tls: tuple[Path, Path, Path] | None = None,
    once: bool = False,
) -> int:
    connector = resolve_connector(name)()
    state = state_dir or Path(".hub-data") / "connectors" / connector.name
    if tls is None:
        log.warning("no certificate given: calling as %s in insecure development mode", connector.department)
    channel = open_channel(hub, department=connector.department, tls=tls)
    console = Console(stderr=True)
    interactive = console.is_terminal
    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, disable=not interactive
    )
    task = progress.add_task(connector.name)
    last_logged = [0.0]

    def report(stats: RunStats) -> None:
        text = (
            f"{connector.name} → {connector.resource}: {stats.published:,} published, "
            f"{stats.dead_lettered:,} dead-lettered, {stats.retried:,} retried, {stats.rate:,.0f} rec/s"
        )
        if interactive:
            progress.update(task, description=text)
        elif stats.elapsed - last_logged[0] >= 5:
            last_logged[0] = stats.elapsed
            log.info(text)

    runtime = ConnectorRuntime(
        connector,
        connector.default_source(source),
        channel,
        state,
        RuntimeOptions(batch_size=batch_size, max_in_flight=max_in_flight, stop_when_idle=once),
        on_progress=report,
    )
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: runtime.stop())
    try:
        with progress:
            stats = runtime.run()
    except ConnectorFailed as exc:
        log.error("%s", exc)
        return 2
    finally:
        channel.close()
    print(
        f"{connector.name}: {stats.published:,} records published in {stats.elapsed:.1f}s "
        f"({stats.rate:,.0f}/s); {stats.dead_lettered:,} rejected, see {runtime.dead_letter.path}",
        file=sys.stderr,
    )
    return 0 if stats.dead_lettered == 0 else 1
