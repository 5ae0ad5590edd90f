"""Small compacted topics held in memory: key → latest JSON value, the same on every replica.

The hub keeps its own state (the managed catalogue, access requests and grants, the certificate
revocation list) in such topics, so every replica agrees without a database. Writers produce the
full new value of a key; readers apply values in offset order. The topics have one partition, so
all replicas see one order.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import orjson

from hub.kafka.tail import TailReader
from hub.records.change import Change

log = logging.getLogger(__name__)


class KeyedState:
    """A FeedTarget (see hub.cache.feeder) for one single-partition compacted topic."""

    partitions = 1

    def __init__(self, name: str) -> None:
        self.name = name
        self.values: dict[str, dict] = {}
        self._position = 0
        self._listeners: list[Callable[[list[str]], None]] = []
        self._lock = threading.Lock()

    def positions(self) -> tuple[int, ...]:
        return (self._position,)

    def subscribe(self, listener: Callable[[list[str]], None]) -> None:
        """``listener(changed_keys)`` runs on the feeding thread after each applied batch."""
        self._listeners.append(listener)

    def apply(self, changes: Sequence[Change]) -> None:
        values = dict(self.values)  # copy on write: readers keep a consistent dict
        changed = []
        for c in changes:
            if c.value is None:
                values.pop(c.key, None)
            else:
                try:
                    values[c.key] = orjson.loads(c.value)
                except orjson.JSONDecodeError:
                    log.error("%s: undecodable value for %s at offset %d", self.name, c.key, c.offset)
                    continue
            changed.append(c.key)
        with self._lock:
            self.values = values
            self._position = max(self._position, max(c.offset for c in changes) + 1)
        self.on_applied(changed)
        for listener in self._listeners:
            listener(changed)

    def on_applied(self, keys: list[str]) -> None:
        """Subclasses rebuild their derived views here."""

    def mark_caught_up(self, at_ms: int) -> None:
        pass

    def settle(self) -> bool:
        return False


def read_to_end(
    bootstrap: str, topic: str, target: KeyedState, consumer_extra: dict | None = None, timeout: float = 60.0
) -> None:
    """Applies ``topic`` to ``target`` until partition EOF (start-up, before serving)."""
    reader = TailReader(bootstrap, topic, {"group.id": "hub-state-reader", **(consumer_extra or {})})
    try:
        reader.read(target.positions(), target.apply, timeout)
    finally:
        reader.close()
