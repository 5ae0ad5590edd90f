"""Recorded cases as the servicers read them: where a case number's event is, and the event itself."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from hub.flows.case_events import CaseEvents
from hub.flows.stores import CaseLedger, Recorded
from hub.server.deps import Deps


class CaseRecords:
    """The ledger's position of a case number, and the event at it read back from the cases topic: the one
    reader of case records (a resubmission's recorded result, a case's receipt)."""

    def __init__(self, deps: Deps, ledger: CaseLedger, events: CaseEvents) -> None:
        self._deps = deps
        self.ledger = ledger
        self._events = events

    async def caught_up(self) -> None:
        """Waits until the ledger holds every case event acknowledged before the call, by any worker."""
        await self.catching_up()

    def catching_up(self) -> asyncio.Future[None]:
        """:meth:`caught_up` started now, awaited later."""
        return self._deps.catching_up(self._deps.topics.cases)

    async def find(self, case_number: str) -> Recorded | None:
        """The number's record; one this replica has not seen is looked up again once caught up."""
        recorded = self.ledger.get(case_number)
        if recorded is None:
            await self.caught_up()
            recorded = self.ledger.get(case_number)
        return recorded

    async def events(self, recorded: Sequence[Recorded]) -> list[dict]:
        """The recorded events, in order, read from Kafka (Unavailable if it cannot be read)."""
        return await asyncio.to_thread(self._events.read, [(r.partition, r.offset) for r in recorded])
