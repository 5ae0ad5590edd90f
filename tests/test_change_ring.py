"""The change ring never hands a subscriber changes past a gap: a position the ring dropped is read
from Kafka instead (hub.flows.changefeed), whenever the drop happened."""

from __future__ import annotations

import asyncio

from hub.cache.changes import ChangeRing
from hub.flows.changefeed import ChangeStream
from hub.records.change import Change


def _changes(partition: int, offsets: range) -> list[Change]:
    return [Change(f"k{partition}-{o}", b"{}", partition, o, 0) for o in offsets]


def test_a_position_the_ring_dropped_reads_nothing_from_the_ring() -> None:
    ring = ChangeRing(2, [0, 0], capacity=20)  # 10 per partition, trimmed past 15
    ring.append(_changes(0, range(0, 16)) + _changes(1, range(0, 3)))
    assert ring.behind([0, 0]) == [0]
    read = ring.read([0, 0], 100)
    assert [(c.partition, c.offset) for c in read] == [(1, 0), (1, 1), (1, 2)]  # not partition 0's tail
    assert [c.offset for c in ring.read([6, 3], 100)] == list(range(6, 16))  # held: read as before


class _Reader:
    """Stands in for Kafka: every change of partition 0 from the position asked for."""

    def __init__(self) -> None:
        self.positions: dict[int, int] = {}

    def assign(self, positions: dict[int, int]) -> None:
        self.positions = dict(positions)

    def fetch(self, limit: int, timeout: float) -> list[Change]:
        return _changes(0, range(self.positions.get(0, 16), 16))[:limit]

    def close(self) -> None:
        pass


def test_changes_that_arrive_and_are_dropped_while_a_stream_waits_come_from_kafka() -> None:
    async def run() -> list[int]:
        ring = ChangeRing(1, [0], capacity=10)  # trimmed past 15
        ring.attach(asyncio.get_running_loop())
        stream = ChangeStream(ring, [0], _Reader)
        waiting = asyncio.create_task(stream.next_batch(wait_s=30))
        await asyncio.sleep(0)  # the stream reads nothing and waits on the ring
        ring.append(_changes(0, range(0, 16)))  # a burst the ring trims before the stream wakes
        delivered = []
        for batch in [await waiting, await stream.next_batch(wait_s=0)]:
            for change in batch:
                stream.advance(change)
                delivered.append(change.offset)
        return delivered

    assert asyncio.run(run()) == list(range(16))
