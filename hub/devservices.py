"""Local servers the tests and benchmarks start for themselves: PostgreSQL and Redis.

Both come from Debian's packages (``scripts/install-system-deps.sh``). Each server gets its own
data directory and a free loopback port, runs as a child process of ours (PostgreSQL as the
``postgres`` user when we are root, since it refuses to run as root), and is stopped by its PID.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from hub.childproc import ChildProcess, free_port, wait_for_tcp


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run scripts/install-system-deps.sh")
    return Path(found[-1]).parent


class PostgresServer:
    """A private PostgreSQL cluster with logical decoding on (wal_level=logical, wal2json)."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self.port = port or free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        self._proc: ChildProcess | None = None
        self._owned_root = False

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self, timeout: float = 60.0) -> str:
        bin_dir = _postgres_bin()
        if self.user:
            # The postgres user must reach its directory; ours (e.g. pytest's, mode 0700) may not let it.
            self.root = Path(tempfile.mkdtemp(prefix="hub-postgres-"))
            owner = pwd.getpwnam(self.user)
            shutil.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._owned_root = True
        self.root.mkdir(parents=True, exist_ok=True)
        data = self.root / "data"
        if not (data / "PG_VERSION").exists():
            subprocess.run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ],
                check=True,
                capture_output=True,
                user=self.user,
                group=self.user,
            )
        self._proc = ChildProcess(
            "postgres",
            [
                str(bin_dir / "postgres"),
                "-D",
                str(data),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"port={self.port}",
                "-c",
                f"unix_socket_directories={self.root}",
                "-c",
                "wal_level=logical",
                "-c",
                "max_replication_slots=32",
                "-c",
                "max_wal_senders=32",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=256MB",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
            ],
            self.root / "postgres.log",
            user=self.user,
        )
        self._proc.start()
        wait_for_tcp("127.0.0.1", self.port, timeout, self._proc.proc)
        self._wait_accepting(timeout)
        return self.dsn

    def _wait_accepting(self, timeout: float) -> None:
        import time

        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.dsn, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop(grace=10)  # SIGINT: PostgreSQL's fast shutdown
            self._proc = None
        if self._owned_root:
            shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    """A private Redis with persistence off, on loopback."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self.port = port or free_port()
        self._proc: ChildProcess | None = None

    def start(self, timeout: float = 30.0) -> int:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("Redis is not installed: run scripts/install-system-deps.sh")
        self.root.mkdir(parents=True, exist_ok=True)
        self._proc = ChildProcess(
            "redis",
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
            ],
            self.root / "redis.log",
        )
        self._proc.start()
        wait_for_tcp("127.0.0.1", self.port, timeout, self._proc.proc)
        return self.port

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop(grace=5)
            self._proc = None
