"""The connector runtime's retry queue: failed records wait out their backoff and go again, oldest
batch first, without letting an older value of a key land on top of a newer one."""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from hub.connect.batches import Batch, Call, Entry, RunStats, ToRetry

log = logging.getLogger(__name__)


@dataclass(order=True, frozen=True, slots=True)
class Retry:
    """A queued retry. Ordered by the compared fields: the oldest batch first, then the earliest
    due, then the order they were queued (a batch split one record per call keeps its order)."""

    batch_seq: int
    due: float  # time.monotonic() at which it may go
    queued: int
    batch: Batch = field(compare=False)
    entries: tuple[Entry, ...] = field(compare=False)
    resend: tuple[Entry, ...] = field(compare=False)


class RetryQueue:
    """Holds retries until they are due, and gives them back one call at a time, oldest batch first.

    Contract:

    - called only on the runtime thread; never blocks;
    - :meth:`pop_due` must be called only when no Publish call is in flight: then nothing newer
      can overtake the retried records, and the call it returns carries after them the newest
      acknowledged record of each of their keys from later on, so the latest value is written last;
    - while the queue is not empty the runtime sends nothing new, and stores no offset at or past
      :meth:`oldest_batch` (its retry re-sends newer records);
    - the hub's ``retry-after`` holds back all sending, new work too, until :attr:`held_until`.
    """

    def __init__(
        self,
        connector: str,
        key_of: Callable[[Entry], str],
        stats: RunStats,
        backoff_initial_s: float,
        backoff_max_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connector = connector
        self._key_of = key_of
        self.stats = stats
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._clock = clock
        self._heap: list[Retry] = []
        self._queued = itertools.count()
        self.held_until = 0.0

    def __len__(self) -> int:
        return len(self._heap)

    def schedule(self, retry: ToRetry) -> float:
        """Queues ``retry`` after an exponential backoff with jitter, or the hub's advice if longer.
        Returns the delay."""
        batch = retry.batch
        batch.attempts += 1
        self.stats.retried += len(retry.entries)
        delay = min(self.backoff_max_s, self.backoff_initial_s * 2.0 ** (batch.attempts - 1))
        delay = max(delay * random.uniform(0.5, 1.0), retry.retry_after or 0.0)
        now = self._clock()
        if retry.retry_after:  # the hub is saturated: hold back all new work too, not just this batch
            self.held_until = max(self.held_until, now + retry.retry_after)
        log.warning(
            "%s: retrying %d records in %.1fs (attempt %d)", self.connector, len(retry.entries), delay, batch.attempts
        )
        parts = [(e,) for e in retry.entries] if retry.one_per_call else [retry.entries]
        for i, part in enumerate(parts):  # same due, in order: ``queued`` keeps the batch's order
            resend = retry.resend if i == 0 else ()
            heapq.heappush(self._heap, Retry(batch.seq, now + delay, next(self._queued), batch, part, resend))
        return delay

    def holding(self) -> bool:
        """The hub asked every sender to wait, and the time has not passed."""
        return self._clock() < self.held_until

    def oldest_batch(self) -> int | None:
        """The ``seq`` of the oldest batch with a retry queued: no offset may be stored from it on."""
        return self._heap[0].batch_seq if self._heap else None

    def next_due(self) -> float | None:
        """When the next retry may go (its due time or the hub's hold, whichever is later)."""
        return max(self._heap[0].due, self.held_until) if self._heap else None

    def pop_due(self, later: Iterable[Batch]) -> Call | None:
        """The oldest batch's retry as a call, if it is due. ``later``: the batches not yet
        committed, where the newer records of its keys are."""
        due = self.next_due()
        if due is None or self._clock() < due:
            return None
        retry = heapq.heappop(self._heap)
        newer = self._newer_of_same_keys(retry, later)
        return Call(retry.batch, retry.entries, tuple(dict.fromkeys((*retry.resend, *newer))))

    def _newer_of_same_keys(self, retry: Retry, later: Iterable[Batch]) -> list[Entry]:
        """For each key of the retried entries, the newest record of it that the hub has acknowledged
        after the last retried one (later in their batch, or in a later batch): it overtook the
        retried records, and must be written after them again."""
        batch = retry.batch
        position = {e: i for i, e in enumerate(batch.entries)}
        last_retried: dict[str, int] = {}
        for e in retry.entries:
            key = self._key_of(e)
            last_retried[key] = max(last_retried.get(key, -1), position[e])
        newest: dict[str, Entry] = {}
        for i, e in enumerate(batch.entries):
            if e.published and i > last_retried.get(key := self._key_of(e), len(batch.entries)):
                newest[key] = e
        for other in later:
            if other.seq > batch.seq:
                for e in other.entries:
                    if e.published and (key := self._key_of(e)) in last_retried:
                        newest[key] = e
        return list(newest.values())
