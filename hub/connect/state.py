"""Where a connector keeps its state: stored source offsets and the dead letter."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson


class OffsetStore:
    """Source offsets in a JSON file, replaced atomically (write, fsync, rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offsets: dict[str, Any] = {}
        if path.exists():
            self._offsets = orjson.loads(path.read_bytes())

    def load(self) -> dict[str, Any]:
        return dict(self._offsets)

    def commit(self, offsets: Mapping[str, Any]) -> None:
        self._offsets.update(offsets)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        with tmp.open("wb") as f:
            f.write(orjson.dumps(self._offsets, option=orjson.OPT_INDENT_2))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


class DeadLetterFile:
    """Rows the connector or the hub rejected, one JSON object per line, with the reason."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._lock = threading.Lock()
        self._unsynced = False

    def write(
        self,
        *,
        partition: str,
        line: int,
        reason: str,
        row: Mapping[str, Any] | None = None,
        record: Mapping[str, Any] | None = None,
        stage: str,
    ) -> None:
        entry = {
            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "stage": stage,
            "partition": partition,
            "line": line,
            "reason": reason,
            "row": row,
            "record": record,
        }
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab") as f:
                f.write(orjson.dumps(entry, default=str) + b"\n")
            self.count += 1
            self._unsynced = True

    def sync(self) -> None:
        """Forces what was written to disk: before an offset past these rows is stored."""
        with self._lock:
            if not self._unsynced:
                return
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            self._unsynced = False

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [orjson.loads(line) for line in self.path.read_bytes().splitlines() if line.strip()]
