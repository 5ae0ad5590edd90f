"""Where the shards are: replicas announce themselves on a compacted topic, read whole by every replica.

Each replica of a sharded hub writes its address and assignment under its address when it serves,
and a tombstone when it stops cleanly (``<prefix>_shards``). Like the catalogue, every replica reads
the topic whole, so the hub needs no clustering of its own. A replica that crashed stays listed;
callers find it unreachable and try the shard's other replicas.
"""

from __future__ import annotations

from hub.kafka.keyed_state import KeyedState
from hub.records.shards import ShardAssignment


class ShardRegistry(KeyedState):
    """Announced replicas: address → assignment."""

    def __init__(self) -> None:
        super().__init__("shards")

    def replicas(self, count: int) -> dict[int, list[str]]:
        """The addresses of each shard of a ``count``-shard layout, by shard index."""
        by_shard: dict[int, list[str]] = {}
        for address, value in sorted(self.values.items()):
            if value.get("count") == count and isinstance(value.get("index"), int):
                by_shard.setdefault(value["index"], []).append(address)
        return by_shard


def announcement(shard: ShardAssignment) -> dict[str, int]:
    return {"index": shard.index, "count": shard.count}
