"""Overdue notices become alerts, the risk points of supervision. Deterministic (see
:func:`~hub.flows.notices.overdue_alerts`), so any replica may run this loop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict

from hub.flows.notices import overdue_alerts
from hub.flows.stores import NoticeStore

log = logging.getLogger(__name__)


def alert_interval(claim_limit_s: float, feedback_limit_s: float) -> float:
    """A quarter of the shortest limit (at most 30 s, at least 0.2 s): an alert is late by that at most."""
    return max(0.2, min(claim_limit_s, feedback_limit_s, 120.0) / 4)


async def raise_alerts(
    notices: NoticeStore, write: Callable[[list[tuple[str, dict]]], Awaitable[None]], *, every_s: float
) -> None:
    """Every ``every_s``, writes the alerts now due (``write([(key, value), ...])`` to the notices topic)."""
    while True:
        await asyncio.sleep(every_s)
        alerts = overdue_alerts(notices, int(time.time() * 1000))
        for alert in alerts:
            log.warning("notice %s for %s: %s", alert.notice_id, alert.department, alert.kind)
        await write([(f"alert:{a.id}", asdict(a)) for a in alerts])
