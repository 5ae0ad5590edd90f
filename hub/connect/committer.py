"""The connector runtime's last step: store source offsets, in order, once the hub has everything before them."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hub.connect.batches import Batch
from hub.connect.state import DeadLetterFile, OffsetStore


@dataclass(frozen=True)
class CommitPolicy:
    """How often ready offsets are stored: once ``every_s`` seconds have passed since the last store,
    or once ``every_records`` records are ready, whichever comes first. Neither set (the default):
    as soon as any are ready. Fewer stores cost fewer fsyncs, and a crash repeats more rows (which
    is harmless, upserts being keyed)."""

    every_s: float | None = None
    every_records: int | None = None

    def __post_init__(self) -> None:
        if (self.every_s or 0) < 0 or (self.every_records is not None and self.every_records < 1):
            raise ValueError(f"every_s must be >= 0 and every_records >= 1, got {self}")

    def due(self, since_s: float, records: int) -> bool:
        """Whether to store now, ``since_s`` seconds after the last store with ``records`` ready."""
        if self.every_s is None and self.every_records is None:
            return True
        return (self.every_s is not None and since_s >= self.every_s) or (
            self.every_records is not None and records >= self.every_records
        )


class OffsetCommitter:
    """Tracks batches in source order and stores their offsets once they are settled.

    Contract:

    - called only on the runtime thread; :meth:`commit` blocks for the fsyncs of a store;
    - :meth:`track` receives every batch in source order, before any of its records is sent;
    - an offset is stored only when every entry of its batch and of every batch before it is done
      (acknowledged by the hub or dead-lettered), and never from the batch ``before`` on: a batch
      with a retry pending re-sends newer records of later batches, even once its own are done;
    - the dead letter is on disk before an offset past its rows is stored (a rejected row is handled
      only once its report is), and the source hears of the stored offsets (``on_commit``) after.
    """

    def __init__(
        self,
        store: OffsetStore,
        dead_letter: DeadLetterFile,
        on_commit: Callable[[Mapping[str, Any]], None],
        policy: CommitPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.dead_letter = dead_letter
        self._on_commit = on_commit
        self.policy = policy or CommitPolicy()
        self._clock = clock
        self.pending: deque[Batch] = deque()  # tracked, not yet settled (and those after them)
        self._ready: dict[str, Any] = {}  # settled, not yet stored
        self._ready_records = 0
        self._last_store = clock()

    def track(self, batch: Batch) -> None:
        self.pending.append(batch)

    def commit(self, before: int | None = None, force: bool = False) -> None:
        """Takes settled batches from the front up to (not including) batch ``before``, and stores
        their offsets if the policy says so, or ``force``."""
        pending = self.pending
        while pending and (before is None or pending[0].seq < before) and pending[0].settled:
            batch = pending.popleft()
            self._ready.update(batch.offsets())
            self._ready_records += len(batch.entries)
        now = self._clock()
        if self._ready and (force or self.policy.due(now - self._last_store, self._ready_records)):
            offsets, self._ready, self._ready_records, self._last_store = self._ready, {}, 0, now
            self.dead_letter.sync()
            self.store.commit(offsets)
            self._on_commit(offsets)
