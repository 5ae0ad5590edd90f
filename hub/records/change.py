"""A record as read back from its topic: the unit the cache, the hub's state stores and the change
feeds all consume, so it lives below them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Change:
    """One record from the topic: an upsert (value) or a delete (value None)."""

    key: str
    value: bytes | None
    partition: int
    offset: int
    timestamp_ms: int = 0
