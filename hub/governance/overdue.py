"""Overdue access requests are reported (logged once each) as well as listed by Governance.ListOverdue."""

from __future__ import annotations

import asyncio
import logging

from hub.governance.catalogue import CatalogueStore
from hub.governance.state import GovernanceState

log = logging.getLogger(__name__)


class OverdueReporter:
    def __init__(self, governance: GovernanceState, catalogue: CatalogueStore) -> None:
        self._governance = governance
        self._catalogue = catalogue
        self._reported: set[str] = set()

    def report(self) -> None:
        """Logs each overdue request not reported before."""
        for r in self._governance.overdue():
            if r.id in self._reported:
                continue
            self._reported.add(r.id)
            provider = (
                self._catalogue.resource(r.resource).provider if r.resource in self._catalogue else "its provider"
            )
            log.warning(
                "access request %s from %s for %s is past its deadline; %s must decide",
                r.id,
                r.consumer,
                r.resource,
                provider,
            )

    async def run(self, every_s: float = 60.0) -> None:
        while True:
            self.report()
            await asyncio.sleep(every_s)
