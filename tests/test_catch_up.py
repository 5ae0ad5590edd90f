"""How a catch-up schedules its rounds: which waits a round serves, and how many rounds read at once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping

import pytest
from confluent_kafka import KafkaError, KafkaException

from hub.errors import Unavailable
from hub.kafka.tail import Read
from hub.server.catch_up import CatchUp


class _Reads:
    """Readers whose every read blocks until the test releases it; ``released`` holds one event per read
    begun, in the order they began."""

    def __init__(self, fail: bool = False, fail_to_start: bool = False) -> None:
        self.released: list[threading.Event] = []
        self.started: list[str] = []  # the thread of each read's start
        self.abandoned = 0
        self.closed = 0
        self.more: list[object] = []  # what each read was given to name more partitions
        self._lock = threading.Lock()
        self._fail = fail
        self.fail_to_start = fail_to_start

    def reader(self) -> _Reader:
        return _Reader(self)

    def read(self) -> None:
        release = threading.Event()
        with self._lock:
            self.released.append(release)
        release.wait(30)
        if self._fail:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))

    async def begun(self, count: int) -> None:
        while len(self.released) < count:
            await asyncio.sleep(0)


class _Reader:
    topic = "t"

    def __init__(self, reads: _Reads) -> None:
        self._reads = reads

    def start(self, positions) -> Read:
        self._reads.started.append(threading.current_thread().name)
        if self._reads.fail_to_start:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))
        at = dict(positions) if isinstance(positions, Mapping) else dict(enumerate(positions))
        return Read(at, None, set(at))

    def finish(self, read: Read, apply: Callable, timeout: float, more: object = None) -> None:
        self._reads.more.append(more)
        self._reads.read()

    def abandon(self, read: Read) -> None:
        self._reads.abandoned += 1

    def close(self) -> None:
        self._reads.closed += 1


class _Cache:
    def positions(self, topic: str) -> tuple[int, ...]:
        return (0,)

    def apply_read(self, topic: str, changes) -> None:
        pass


def _run(test) -> None:
    asyncio.run(asyncio.wait_for(test, 60))  # a guard: a round that never starts fails, not hangs


async def _first_read_served(reads: _Reads, wait: asyncio.Future) -> None:
    """The first read begins and is released; ``wait``, which it serves, is then done."""
    await reads.begun(1)
    reads.released[0].set()
    await wait


def _catch_up(reads: _Reads, readers: int) -> CatchUp:
    return CatchUp([reads.reader() for _ in range(readers)], _Cache())  # type: ignore[arg-type]


async def _two_rounds_reading(reads: _Reads, catch_up: CatchUp) -> tuple[asyncio.Future, asyncio.Future]:
    """Two waits, the second begun while the first one's round reads (it may have fetched already)."""
    first = catch_up.begin()
    await reads.begun(1)
    second = catch_up.begin()
    await reads.begun(2)
    return first, second


def test_a_round_assigns_on_the_loop_so_its_fetch_goes_out_at_once() -> None:
    async def run() -> None:
        reads = _Reads()
        wait = _catch_up(reads, 1).begin()
        assert reads.started == [threading.current_thread().name]  # before begin returned, on this thread
        await _first_read_served(reads, wait)

    _run(run())


def test_a_round_that_cannot_start_fails_its_waits_and_frees_its_reader() -> None:
    async def run() -> None:
        reads = _Reads(fail_to_start=True)
        catch_up = _catch_up(reads, 1)
        with pytest.raises(Unavailable, match="could not read t to its end"):
            await catch_up.begin()
        reads.fail_to_start = False
        wait = catch_up.begin()
        await _first_read_served(reads, wait)

    _run(run())


def test_a_wait_during_a_round_starts_its_own_on_a_free_reader() -> None:
    async def run() -> None:
        reads = _Reads()
        first, second = await _two_rounds_reading(reads, _catch_up(reads, 2))
        reads.released[1].set()
        await second  # served by its own round, not after the first
        assert not first.done()
        reads.released[0].set()
        await first

    _run(run())


def test_waits_while_every_reader_reads_share_the_next_round() -> None:
    async def run() -> None:
        reads = _Reads()
        catch_up = _catch_up(reads, 2)
        a, b = await _two_rounds_reading(reads, catch_up)
        c, d = catch_up.begin(), catch_up.begin()  # no reader free: one round for both, once one is
        reads.released[0].set()
        await a
        await reads.begun(3)
        assert not c.done() and not d.done()
        reads.released[2].set()
        await asyncio.gather(c, d)
        assert len(reads.released) == 3
        reads.released[1].set()
        await b
        assert (catch_up.rounds, catch_up.partitions_named) == (3, 3)  # for operators: one partition each

    _run(run())


def test_a_failed_round_fails_each_of_its_waits() -> None:
    async def run() -> None:
        reads = _Reads(fail=True)
        catch_up = _catch_up(reads, 1)
        first = catch_up.begin()
        await reads.begun(1)
        second, third = catch_up.begin(), catch_up.begin()
        reads.released[0].set()
        with pytest.raises(Unavailable, match="could not read t to its end"):
            await first
        assert catch_up.rounds == 0  # only finished rounds count
        await reads.begun(2)
        reads.released[1].set()
        for wait in (second, third):
            with pytest.raises(Unavailable):
                await wait

    _run(run())


def test_closing_refuses_new_waits_and_fails_those_no_round_has_taken() -> None:
    async def run() -> None:
        reads = _Reads()
        catch_up = _catch_up(reads, 1)
        reading = catch_up.begin()
        await reads.begun(1)
        queued = catch_up.begin()  # the only reader is busy: waits for the next round
        closing = asyncio.ensure_future(catch_up.close())
        await asyncio.sleep(0)
        with pytest.raises(Unavailable, match="stopping"):
            catch_up.begin()
        reads.released[0].set()
        await reading  # the round already reading ends as it would have
        with pytest.raises(Unavailable, match="stopping"):
            await queued
        await closing
        assert len(reads.released) == 1 and reads.closed == 1

    _run(run())


def test_a_round_the_stopped_executor_cannot_run_fails_its_waits_and_ends_its_read() -> None:
    async def run() -> None:
        reads = _Reads()
        catch_up = _catch_up(reads, 1)
        await asyncio.get_running_loop().shutdown_default_executor()
        with pytest.raises(Unavailable, match="stopping"):
            await catch_up.begin()
        assert reads.started and reads.abandoned == 1

    _run(run())


def test_a_round_whose_start_fails_unexpectedly_fails_its_waits_and_frees_its_reader() -> None:
    class _Broken(_Cache):
        calls = 0

        def positions(self, topic: str) -> tuple[int, ...]:
            self.calls += 1
            if self.calls == 1:
                raise ValueError("a bug")
            return (0,)

    async def run() -> None:
        reads = _Reads()
        catch_up = CatchUp([reads.reader()], _Broken())  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="a bug"):
            await catch_up.begin()
        wait = catch_up.begin()
        await _first_read_served(reads, wait)

    _run(run())


class _Plan:
    """A topic with a directory: the positions a round names, and which rounds were reported done."""

    def __init__(self) -> None:
        self.begun = 0
        self.done: list[int] = []

    def read_plan(self) -> tuple[dict[int, int], int]:
        self.begun += 1
        return {0: 0, 5: 3}, self.begun

    def announced(self, named) -> dict[int, int]:
        return {}

    def read_done(self, began_at: int) -> None:
        self.done.append(began_at)


def test_a_round_with_a_plan_names_its_partitions_and_reports_only_a_finished_read() -> None:
    async def run() -> None:
        plan = _Plan()
        reads = _Reads()
        catch_up = CatchUp([reads.reader()], _Cache(), plan)  # type: ignore[arg-type]
        await _first_read_served(reads, catch_up.begin())
        assert plan.done == [1] and reads.more == [plan.announced]
        failing = _Reads(fail=True)
        catch_up = CatchUp([failing.reader()], _Cache(), plan)  # type: ignore[arg-type]
        wait = catch_up.begin()
        await failing.begun(1)
        failing.released[0].set()
        with pytest.raises(Unavailable):
            await wait
        assert plan.done == [1]  # the failed round (token 2) is not reported done

    _run(run())
