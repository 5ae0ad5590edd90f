"""Sharding by Kafka partition: which partitions a shard holds, and which shard holds a key.

Shard ``i`` of ``n`` (numbered from 0) holds partition ``p`` of every resource topic exactly when
``p % n == i``. Keys land on partitions by Kafka's murmur2 partitioner (:mod:`hub.records.partitioner`),
so a key's shard follows from the key, the topic's partition count and ``n``: the hub's replicas
and its routing client agree without coordinating.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hub.records.partitioner import partition_for, partitions_for

FORM = r"^\d+/\d+$"


@dataclass(frozen=True, slots=True)
class ShardAssignment:
    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> ShardAssignment:
        """``"I/N"``: shard I of N, numbered from 0 (``0/2`` and ``1/2`` are the two halves)."""
        if re.match(FORM, text.strip()) is None:
            raise ValueError(f"shard: {text!r} is not I/N (shard I of N, numbered from 0, e.g. 0/4)")
        index, count = (int(part) for part in text.strip().split("/"))
        if count < 1 or not 0 <= index < count:
            raise ValueError(f"shard: {text!r} has no shard {index} (shards are numbered 0 to N-1)")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, partition: int) -> bool:
        return partition % self.count == self.index

    def partitions(self, total: int) -> tuple[int, ...]:
        """The partitions of a ``total``-partition topic this shard holds (none if total <= index)."""
        return tuple(range(self.index, total, self.count))


WHOLE = ShardAssignment(0, 1)
"""An unsharded replica: the one shard that holds every partition."""


def shard_of(key: str, partitions: int, count: int) -> int:
    """The shard (of ``count``) holding ``key`` of a topic with ``partitions`` partitions."""
    return partition_for(key, partitions) % count


def shards_of(keys: Sequence[str], partitions: int, count: int) -> np.ndarray:
    """:func:`shard_of` for many keys, vectorised."""
    return partitions_for(keys, partitions) % count
