"""What passes between the connector runtime's steps (:mod:`hub.connect.runtime`).

An :class:`Entry` is one source record on its way to the hub; a :class:`Batch` is the entries cut
from one poll, in source order, sent as one Publish call; a :class:`Call` is one Publish call's
records; a :class:`ToRetry` is what the publisher hands the retry queue when the hub answered that
some records must go again. :class:`RunStats` counts what happened to them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from hub.connect.source import SourceRecord


@dataclass
class RunStats:
    read: int = 0
    published: int = 0
    dead_lettered: int = 0
    retried: int = 0
    calls: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        return self.published / self.elapsed if self.elapsed > 0 else 0.0


@dataclass(slots=True, eq=False)  # compared and hashed by identity: one record may carry the same values twice
class Entry:
    """One source record. ``done`` once the hub acknowledged it, it went to the dead letter, or it
    needs no publishing (a control record): only then may a stored offset cover it."""

    source: SourceRecord
    key: str = ""  # set for a delete; an upsert's key is in its record
    payload: bytes | None = None  # the mapped record as JSON, for an upsert
    record: dict[str, Any] | None = None
    delete: bool = False
    done: bool = False
    published: bool = False  # acknowledged by the hub (not dead-lettered)
    internal_failures: int = 0  # calls of this record alone that the hub failed with INTERNAL


@dataclass(slots=True, eq=False)
class Batch:
    """Entries cut from one poll. ``seq`` numbers batches in source order: offsets commit in it."""

    seq: int
    entries: list[Entry]
    remaining: int = 0  # entries sent or to send that are not done yet
    attempts: int = 0  # retries scheduled so far: the backoff grows with them

    @property
    def settled(self) -> bool:
        """Every entry is done: the batch's offsets may be stored (once those before them are)."""
        return self.remaining == 0 and all(e.done for e in self.entries)

    def resolve(self, entry: Entry) -> None:
        """``entry`` (one that was sent) is acknowledged or dead-lettered."""
        entry.done = True
        self.remaining -= 1

    def resolve_all(self, entries: tuple[Entry, ...]) -> None:
        """Every one of ``entries`` (sent, none of them done yet) is acknowledged by the hub."""
        for entry in entries:
            entry.published = entry.done = True
        self.remaining -= len(entries)

    def offsets(self) -> dict[str, Any]:
        """Source partition → the offset after this batch's last record in it."""
        out: dict[str, Any] = {}
        for e in self.entries:
            out[e.source.partition] = e.source.offset
        return out


@dataclass(frozen=True, slots=True)
class Call:
    """One Publish call: entries of ``batch``, then ``resend``, records of the same keys that were
    acknowledged after them and must be written after them again (see :mod:`hub.connect.retries`)."""

    batch: Batch
    entries: tuple[Entry, ...]
    resend: tuple[Entry, ...] = ()


@dataclass(frozen=True, slots=True)
class ToRetry:
    """Records of ``batch`` the hub asked to have again. ``retry_after``: the hub's own advice, in
    seconds; ``one_per_call``: send each entry alone (the hub failed on the call, perhaps on one)."""

    batch: Batch
    entries: tuple[Entry, ...]
    resend: tuple[Entry, ...] = ()
    retry_after: float | None = None
    one_per_call: bool = False
