"""Runs a hub in the foreground until SIGTERM or SIGINT: ``hub serve``."""

from __future__ import annotations

import asyncio
import logging
import signal

from hub.catalogue.model import Catalogue, load_builtin
from hub.kafka.embedded import EmbeddedBroker
from hub.server.app import HubServer
from hub.settings import HubSettings

log = logging.getLogger(__name__)


def load_catalogue(settings: HubSettings) -> Catalogue:
    return Catalogue.from_toml(settings.catalogue_path) if settings.catalogue_path else load_builtin()


async def _serve(settings: HubSettings, bootstrap: str) -> None:
    hub = HubServer(settings, bootstrap, load_catalogue(settings))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await hub.start()
    await stop.wait()
    log.info("stopping: finishing in-flight calls")
    await hub.stop()


def serve(settings: HubSettings) -> None:
    """The hub, plus the embedded broker unless bootstrap servers are set."""
    broker = None
    bootstrap = settings.bootstrap_servers
    if not bootstrap:
        broker = EmbeddedBroker(settings.data_dir / "broker", settings.embedded_broker)
        bootstrap = broker.start()
    try:
        asyncio.run(_serve(settings, bootstrap))
    finally:
        if broker is not None:
            broker.stop()
