"""The supervision parts one hub process holds, built from its settings."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import pyarrow as pa

from hub.governance.workdays import WorkCalendar
from hub.settings import HubSettings
from hub.supervision.alerts import AlertEngine, AnswerStore, SupervisionAlert, status
from hub.supervision.casebook import CaseBook
from hub.supervision.publicity import PublicityFeed, Retention
from hub.supervision.report import ALERT_SCHEMA

log = logging.getLogger(__name__)
STEP_PARTITIONS = 3


@dataclass
class SupervisionPlatform:
    calendar: WorkCalendar
    answers: AnswerStore
    feed: PublicityFeed
    book: CaseBook
    supervising_office: str
    sweep_s: float

    @classmethod
    def build(
        cls, settings: HubSettings, on_alert: Callable[[SupervisionAlert], None] | None = None
    ) -> SupervisionPlatform:
        """``on_alert(alert)`` runs for each alert raised (on the feeding thread), after it is logged."""
        calendar = WorkCalendar(settings.holidays)
        feed = PublicityFeed(
            calendar, Retention(settings.publicity_retention_days, settings.publicity_natural_person_days)
        )
        engine = AlertEngine(calendar, settings.supervision_answer_days)
        book = CaseBook(STEP_PARTITIONS, engine, feed, on_alert=partial(_log_alert, then=on_alert))
        return cls(calendar, AnswerStore(), feed, book, settings.supervising_office, settings.supervision_sweep_s)

    def alerts_table(self) -> pa.Table:
        alerts = self.book.alerts()
        return pa.table(
            {
                **{name: [getattr(a, name) for a in alerts] for name in ALERT_SCHEMA.names if name != "answered"},
                "answered": [self.answers.answer(a.id) is not None for a in alerts],
            },
            schema=ALERT_SCHEMA,
        )

    async def sweep_forever(self) -> None:
        """Deadlines passed with no step reported become alerts; unanswered alerts past their answer
        deadline are escalated (ListAlerts shows them so; the log says so once each)."""
        escalated: set[str] = set()
        while True:
            await asyncio.sleep(self.sweep_s)
            await asyncio.to_thread(self.book.sweep)
            now = int(time.time() * 1000)
            fresh = [
                a
                for a in self.book.alerts()
                if a.id not in escalated and status(a, self.answers.answer(a.id), now) == "escalated"
            ]
            if fresh:  # one line a sweep: a backlog of old cases escalates thousands at once
                escalated.update(a.id for a in fresh)
                named = ", ".join(f"{a.id} of {a.department}" for a in fresh[:3])
                more = f" and {len(fresh) - 3} more" if len(fresh) > 3 else ""
                log.warning(
                    "%d supervision alert(s) unanswered past their deadline escalated to %s: %s%s",
                    len(fresh),
                    self.supervising_office,
                    named,
                    more,
                )


def _log_alert(alert: SupervisionAlert, then: Callable[[SupervisionAlert], None] | None) -> None:
    log.debug("supervision alert %s (%s) for %s", alert.id, alert.level, alert.department)
    if then is not None:
        then(alert)
