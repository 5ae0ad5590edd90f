"""Reading what other workers and replicas wrote: a topic's records, as of now, applied here."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

from confluent_kafka import KafkaException

from hub.cache.replica import ReplicaCache
from hub.errors import Unavailable
from hub.kafka.tail import Read, TailReader


class ReadPlan(Protocol):
    """Which partitions a round names, when not all of them (a topic with a directory, hub.kafka.directory).
    Any thread."""

    def read_plan(self) -> tuple[Mapping[int, int], int]:
        """The partitions a round beginning now reads, from their next offsets; and a token for
        :meth:`read_done`."""

    def announced(self, named: Collection[int]) -> Mapping[int, int]:
        """Partitions to read as well, given those named so far, after records were applied."""

    def read_done(self, began_at: int) -> None:
        """The round that began with this token read every partition it named to its end."""


def _unavailable(topic: str, exc: Exception) -> Unavailable:
    return Unavailable(f"could not read {topic} to its end ({exc}); retry")


def _failed(loop: asyncio.AbstractEventLoop, exc: BaseException) -> asyncio.Future[int]:
    failed: asyncio.Future[int] = loop.create_future()
    failed.set_exception(exc)
    return failed


def _stopping() -> Unavailable:
    return Unavailable("this hub process is stopping; retry (another worker or replica answers)")


class CatchUp:
    """Applies, before a call goes on, every record that ``topic`` held when the call began.

    A check-then-write on state that any worker may write (a case number recorded once, a case's next
    step) must first read the other writers' acknowledged records. The call reads them itself, from
    where this replica's store stands to each partition's end (hub.kafka.tail), rather than asking
    Kafka for the ends and waiting for the feeder: one fetch that returns at once, and on tansu a
    partition with nothing new costs the same however long its log (ListOffsets lists every batch).
    The topic must be one the cache shares (``shared`` or ``on_demand``), so each record is applied once.

    A topic with a directory (hub.kafka.directory) is read with its ``plan``: a round names only the
    partitions the plan gives, adds those it announces as the round reads, and reports a finished round.

    Waits that overlap share a round: a round serves every wait that began before it started reading.
    Up to ``len(readers)`` rounds read at once, so a wait that begins while a round is reading starts
    the next on a free reader instead of waiting that round out first. Overlapping rounds may read
    the same records; the cache applies each once.
    """

    def __init__(self, readers: Sequence[TailReader], cache: ReplicaCache, plan: ReadPlan | None = None) -> None:
        self._readers = tuple(readers)
        self._free = list(readers)
        self._topic = readers[0].topic
        self._cache = cache
        self._plan = plan
        self._next: asyncio.Future[None] | None = None  # the round not yet started, joined by new waits
        self._closed = False
        # What a round costs the broker grows with the partitions it names (hub.kafka.directory): for operators.
        self.rounds = 0
        self.partitions_named = 0

    def begin(self) -> asyncio.Future[None]:
        """Starts catching up now (on a thread) and returns what to await: done once every record
        acknowledged before the call is applied; Unavailable if the topic cannot be read to its end
        within 30 s, or once closing. Call from the event loop; a caller may do other work before awaiting."""
        if self._closed:
            raise _stopping()
        loop = asyncio.get_running_loop()
        if self._next is None:
            self._next = loop.create_future()
        joined = self._next
        if self._free:
            self._start_round(loop)
        return asyncio.shield(joined)

    def _start_round(self, loop: asyncio.AbstractEventLoop) -> None:
        round_, self._next = self._next, None
        assert round_ is not None
        reader = self._free.pop()
        self._round_on(loop, reader).add_done_callback(lambda done: self._finished(loop, reader, round_, done))

    def _round_on(self, loop: asyncio.AbstractEventLoop, reader: TailReader) -> asyncio.Future[int]:
        """The round's read on ``reader``, running; or a future already failed, with no read left on ``reader``."""
        if self._closed:  # waits that began before close(): their round never starts
            return _failed(loop, _stopping())
        try:
            # Assigned here, not on the thread: the fetch goes out now rather than once a thread gets
            # the GIL from a loop busy resolving the call (about 3 ms under load).
            if self._plan is None:
                read, began_at = reader.start(self._cache.positions(self._topic)), 0
            else:
                positions, began_at = self._plan.read_plan()
                read = reader.start(positions)
        except Exception as exc:
            return _failed(loop, _unavailable(self._topic, exc) if isinstance(exc, KafkaException) else exc)
        try:
            return loop.run_in_executor(None, self._finish_round, reader, read, began_at)
        except RuntimeError:  # the loop's executor has shut down: the process is stopping
            with contextlib.suppress(KafkaException):
                reader.abandon(read)
            return _failed(loop, _stopping())

    def _finished(
        self, loop: asyncio.AbstractEventLoop, reader: TailReader, round_: asyncio.Future[None], done: asyncio.Future
    ) -> None:
        self._free.append(reader)
        exc = asyncio.CancelledError() if done.cancelled() else done.exception()
        if exc is not None:  # handed to every wait of the round
            round_.set_exception(exc)
        else:
            self.rounds += 1
            self.partitions_named += done.result()
            round_.set_result(None)
        if self._next is not None:  # waits that began while every reader was busy
            self._start_round(loop)

    def _finish_round(self, reader: TailReader, read: Read, began_at: int) -> int:
        """Reads the round to its end; returns how many partitions it named."""
        more = None if self._plan is None else self._plan.announced
        try:
            reader.finish(read, lambda c: self._cache.apply_read(self._topic, c), 30, more)
        except (TimeoutError, KafkaException) as exc:  # the broker away, or too far behind to catch up
            raise _unavailable(self._topic, exc) from exc
        if self._plan is not None:
            self._plan.read_done(began_at)
        return len(read.named)

    async def close(self) -> None:
        """Refuses new waits and fails those not yet in a round (on the loop, so no round starts after);
        then closes each reader once its round, if any, is done."""
        self._closed = True
        for reader in self._readers:
            await asyncio.to_thread(reader.close)
