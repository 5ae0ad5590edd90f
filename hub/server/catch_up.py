"""Reading what other workers and replicas wrote: wait until a topic's ends, as of now, are applied here."""

from __future__ import annotations

import asyncio

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from hub.cache.replica import ReplicaCache
from hub.errors import Unavailable


class CatchUp:
    """Waits until this replica has applied everything ``topic`` held when the wait began.

    A check-then-write on state that any worker may write (a case number recorded once, a case's next
    step) must first read the other writers' acknowledged records. Waits that overlap share a round, one
    ListOffsets request and one wait on the feeder: a round serves every wait that began before it asked
    for the ends, so a busy replica asks once per round trip, not once per call.
    """

    def __init__(self, admin: AdminClient, cache: ReplicaCache, topic: str, partitions: int) -> None:
        self._admin = admin
        self._cache = cache
        self._topic = topic
        self._partitions = partitions
        self._next: asyncio.Future[None] | None = None  # the round not yet started, joined by new waits
        self._rounds: asyncio.Task[None] | None = None

    async def wait(self) -> None:
        """Returns once every record acknowledged before the call is applied; Unavailable if the broker
        cannot say where the topic ends, DeadlineExceeded if this replica does not get there in 30 s."""
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        joined = self._next
        if self._rounds is None:
            self._rounds = asyncio.create_task(self._run())
        await asyncio.shield(joined)

    async def _run(self) -> None:
        try:
            while self._next is not None:
                round_, self._next = self._next, None
                try:
                    await self._one_round()
                except Exception as exc:  # handed to every wait of the round
                    round_.set_exception(exc)
                else:
                    round_.set_result(None)
        finally:
            self._rounds = None

    async def _one_round(self) -> None:
        ends = await asyncio.to_thread(self._ends)
        # tansu reports a partition's end at its last batch's first record; a batch is applied whole.
        wanted = [(p, end - 1) for p, end in enumerate(ends) if end > 0]
        if wanted:
            await self._cache.reached(self._topic, wanted, 30)

    def _ends(self) -> list[int]:
        asked = {TopicPartition(self._topic, p): OffsetSpec.latest() for p in range(self._partitions)}
        try:
            futures = self._admin.list_offsets(asked, request_timeout=10)
            return [futures[tp].result(10).offset for tp in asked]
        except (KafkaException, TimeoutError) as exc:
            raise Unavailable(f"could not ask Kafka where {self._topic} ends ({exc}); retry") from exc
