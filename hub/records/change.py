"""A record as read back from its topic: the unit the cache, the hub's state stores and the change
feeds all consume, so it lives below them."""

from __future__ import annotations

from typing import NamedTuple


class Change(NamedTuple):  # one per record read, on every replica: a third of a frozen dataclass's cost to make
    """One record from the topic: an upsert (value) or a delete (value None)."""

    key: str
    value: bytes | None
    partition: int
    offset: int
    timestamp_ms: int = 0
