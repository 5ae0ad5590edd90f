"""Kafka's default partitioner (murmur2), in Python: which partition a key is produced to.

The producer uses librdkafka's ``murmur2_random`` (``hub.kafka.clients.PARTITIONER``), the
Java client's algorithm; the sharded hub and its routing client must place a key exactly where the
producer did, so they compute the same hash here.
"""

from __future__ import annotations

_M = 0x5BD1E995
_SEED = 0x9747B28C
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """The 32-bit murmur2 hash of ``data`` as Kafka computes it (unsigned)."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    end = length & ~3
    for i in range(0, end, 4):
        k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length & 3
    if rest == 3:
        h ^= data[end + 2] << 16
    if rest >= 2:
        h ^= data[end + 1] << 8
    if rest >= 1:
        h ^= data[end]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_for(key: str, partitions: int) -> int:
    """The partition a keyed record lands on (Java's ``toPositive(murmur2(key)) % partitions``)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions
