"""Checks run before a command starts anything, so that a mistake is one line on stderr rather than
a started broker's log, 30 s of librdkafka retries, or a worker supervisor restarting in a loop."""

from __future__ import annotations

import socket
import time

from hub.catalogue.model import load_catalogue
from hub.cli.errors import CommandError
from hub.settings import HubSettings, require_transport


def port_free(host: str, port: int, what: str, *, reuse_port: bool = False) -> None:
    """``port`` can be bound on ``host`` (0 always can). ``reuse_port`` binds as the gRPC server does,
    so a port shared by ``hub serve --workers`` processes counts as free."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise CommandError(f"{what} port {host}:{port} is not available: {exc.strerror}") from None


def kafka_reachable(bootstrap: str, timeout: float = 5.0) -> None:
    """Some bootstrap server accepts a TCP connection within ``timeout`` (a broker starting just now
    gets that long)."""
    servers = [s.strip().rpartition(":") for s in bootstrap.split(",") if s.strip()]
    deadline = time.monotonic() + timeout
    while True:
        problems = []
        for host, _, port in servers:
            try:
                socket.create_connection((host.strip("[]"), int(port)), timeout=1.0).close()
                return
            except (OSError, ValueError) as exc:
                problems.append(f"{host}:{port}: {getattr(exc, 'strerror', None) or exc}")
        if time.monotonic() > deadline:
            raise CommandError(f"cannot reach the Kafka cluster at {bootstrap} ({'; '.join(problems)})")
        time.sleep(0.2)


def ready_to_serve(settings: HubSettings) -> None:
    """What ``hub serve`` needs before it starts a broker or a worker. (A metrics port in use is
    not among them: the hub logs it and serves without metrics.) Nothing here imports the server, so
    a mistake is reported in the time it takes to read the settings."""
    require_transport(settings)
    load_catalogue(settings.catalogue_path)
    port_free(settings.host, settings.port, "gRPC", reuse_port=True)
    if settings.worker_port:
        for i in range(settings.workers):
            port_free(settings.host, settings.worker_port + i, f"worker {i}'s own gRPC")
    if settings.bootstrap_servers:
        kafka_reachable(settings.bootstrap_servers)
