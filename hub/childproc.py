"""Child processes the hub starts itself (the embedded broker, SeaweedFS).

A child is stopped by its PID only: SIGINT first, SIGKILL after a grace
period. On Linux the child also gets SIGTERM if its parent dies, so a killed
hub never leaves an orphan broker behind: util-linux's ``setpriv`` sets that
signal and execs the command. Setting it from Python between fork and exec
(``preexec_fn``) could hang the child before its exec when the parent has
other threads (gRPC's, librdkafka's) holding a lock at the fork: a broker
restarted by a fault test once never started.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import cast

log = logging.getLogger(__name__)


def _die_with_parent_prefix() -> list[str]:
    """What a command is run under so that it gets SIGTERM when this process dies (none where there is
    no ``setpriv``: such a child outlives a killed parent)."""
    setpriv = shutil.which("setpriv") if sys.platform == "linux" else None
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []


_DIE_WITH_PARENT = _die_with_parent_prefix()


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free on ``host`` a moment ago, below the kernel's ephemeral range.

    Every outgoing connection takes an ephemeral port, so a server restarted on its port after a kill
    (the fault tests) could find it taken by some client in between; below that range only another
    explicit bind can take it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randrange(min(10_000, low - 1), low)
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(family, socket.SOCK_STREAM) as s:  # that range is full: any free port
        s.bind((host, 0))
        return s.getsockname()[1]


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def wait_for_tcp(host: str, port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            args = cast(list[str], proc.args)
            program = args[len(_DIE_WITH_PARENT)] if args[: len(_DIE_WITH_PARENT)] == _DIE_WITH_PARENT else args[0]
            raise RuntimeError(f"process {program} exited with {proc.returncode} before listening")
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f}s") from None
            time.sleep(0.05)


class ChildProcess:
    """One long-running child with its output in a log file."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
    ) -> None:
        self.name = name
        self.args = list(args)
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.user = user  # run as this user (servers such as PostgreSQL refuse to run as root)
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [*_DIE_WITH_PARENT, *self.args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(self.env or {})},
                cwd=self.cwd,
                user=self.user,
                group=self.user,
            )
        log.info("started %s (pid %d), log %s", self.name, self.proc.pid, self.log_path)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def exit_status(self) -> str:
        """How it ended, for error messages: an exit code, or the signal that killed it."""
        code = self.proc.poll() if self.proc is not None else None
        if code is None:
            return "running"
        return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"

    def stop(self, grace: float = 5.0) -> None:
        """SIGINT, then SIGKILL if it has not exited within ``grace`` seconds."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            log.warning("%s (pid %d) ignored SIGINT for %.0fs; killing it", self.name, proc.pid, grace)
            proc.kill()
            proc.wait()
        log.info("stopped %s (pid %d)", self.name, proc.pid)

    def kill(self) -> None:
        """SIGKILL at once: for fault tests."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
