"""Kafka's default partitioner (murmur2), in Python: which partition a key is produced to.

The producer uses librdkafka's ``murmur2_random`` (``hub.kafka.clients.PARTITIONER``), the
Java client's algorithm; the sharded hub and its routing client must place a key exactly where the
producer did, so they compute the same hash here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

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


def partitions_for(keys: Sequence[str], partitions: int) -> np.ndarray:
    """:func:`partition_for` of many keys at once, vectorised over keys of equal length (a batch of
    resident IDs is one NumPy pass instead of a Python loop per key)."""
    out = np.empty(len(keys), dtype=np.int64)
    encoded = [k.encode() for k in keys]
    by_length: dict[int, list[int]] = {}
    for i, data in enumerate(encoded):
        by_length.setdefault(len(data), []).append(i)
    for length, indices in by_length.items():
        rows = np.frombuffer(b"".join(encoded[i] for i in indices), dtype=np.uint8).reshape(len(indices), length)
        out[indices] = (_murmur2_rows(rows, length) & 0x7FFFFFFF) % partitions
    return out


def _murmur2_rows(rows: np.ndarray, length: int) -> np.ndarray:
    m = np.uint32(_M)
    with np.errstate(over="ignore"):  # uint32 arithmetic wraps, as the hash intends
        h = np.full(len(rows), (_SEED ^ length) & _MASK, dtype=np.uint32)
        end = length & ~3
        if end:
            words = np.ascontiguousarray(rows[:, :end]).view("<u4")
            for j in range(words.shape[1]):
                k = words[:, j] * m
                k ^= k >> np.uint32(24)
                k = k * m
                h = (h * m) ^ k
        rest = length & 3
        if rest == 3:
            h ^= rows[:, end + 2].astype(np.uint32) << np.uint32(16)
        if rest >= 2:
            h ^= rows[:, end + 1].astype(np.uint32) << np.uint32(8)
        if rest >= 1:
            h ^= rows[:, end].astype(np.uint32)
            h = h * m
        h ^= h >> np.uint32(13)
        h = h * m
        h ^= h >> np.uint32(15)
    return h.astype(np.int64)
