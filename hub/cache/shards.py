"""Where the shards are: replicas announce themselves on a compacted topic, read whole by every replica.

Each replica of a sharded hub writes its address and assignment under its address when it serves,
renews it (a lease) every third of ``shard_lease_s``, and writes a tombstone when it stops cleanly
(``<prefix>_shards``). Like the catalogue, every replica reads the topic whole, so the hub needs no
clustering of its own. A replica that was killed writes no tombstone: its lease lapses and it drops
out of the map, so callers stop trying it.
"""

from __future__ import annotations

import time

from hub.kafka.keyed_state import KeyedState
from hub.records.shards import ShardAssignment


class ShardRegistry(KeyedState):
    """Announced replicas: address → assignment."""

    def __init__(self) -> None:
        super().__init__("shards")

    def replicas(self, count: int, lease_s: float) -> dict[int, list[str]]:
        """The addresses of each shard of a ``count``-shard layout, by shard index: the replicas whose
        announcement is less than ``lease_s`` old."""
        live_since = time.time() * 1000 - lease_s * 1000
        by_shard: dict[int, list[str]] = {}
        for address, value in sorted(self.values.items()):
            if (
                value.get("count") == count
                and isinstance(value.get("index"), int)
                and isinstance(value.get("at_ms"), int)
                and value["at_ms"] >= live_since
            ):
                by_shard.setdefault(value["index"], []).append(address)
        return by_shard


def announcement(shard: ShardAssignment) -> dict[str, int]:
    """A replica's entry in the shard map, stamped now: its lease runs from here."""
    return {"index": shard.index, "count": shard.count, "at_ms": int(time.time() * 1000)}
