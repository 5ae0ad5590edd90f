"""Enforcement publicity (行政执法公示): the published licence and penalty decisions.

An entry carries the enforcing body, the target (a natural person's name and ID masked: the
feed never holds them in clear), the category, the decision and its date. A revoked decision is
withdrawn; an entry leaves the feed after its retention (shorter for natural persons).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from hub.governance.workdays import WorkCalendar
from hub.records.masking import mask_value
from hub.supervision.powers import PUBLISH, REVOKE
from hub.supervision.steps import CaseState, StepEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishedDecision:
    case_number: str
    item_code: str
    category: str
    department: str
    target: str
    target_id: str
    target_kind: str
    outcome: str
    decision: str
    decided_on: str
    published_on: str
    expires_on: str


@dataclass(frozen=True)
class Retention:
    days: int = 5 * 365 + 1
    natural_person_days: int = 183


class PublicityFeed:
    def __init__(self, calendar: WorkCalendar, retention: Retention) -> None:
        self._calendar = calendar
        self._retention = retention
        self._entries: dict[str, PublishedDecision] = {}
        self.withdrawn: dict[str, str] = {}  # case number -> date withdrawn

    def on_event(self, case: CaseState, e: StepEvent) -> None:
        if e.step == PUBLISH:
            self._entries[case.case_number] = self._entry(case, e)
        elif e.step == REVOKE and case.case_number in self._entries:
            del self._entries[case.case_number]
            self.withdrawn[case.case_number] = self._calendar.date(e.at_ms).isoformat()

    def _entry(self, case: CaseState, e: StepEvent) -> PublishedDecision:
        natural = case.target_kind == "natural"
        decided = self._calendar.date(case.decided_at_ms)
        keep = self._retention.natural_person_days if natural else self._retention.days
        return PublishedDecision(
            case_number=case.case_number,
            item_code=case.item_code,
            category=case.category,
            department=case.department,
            target=str(mask_value("name", case.target_name)) if natural else case.target_name,
            target_id=str(mask_value("id", case.target_id)) if natural and case.target_id else case.target_id,
            target_kind=case.target_kind,
            outcome=case.outcome,
            decision=case.decision,
            decided_on=decided.isoformat(),
            published_on=self._calendar.date(e.at_ms).isoformat(),
            expires_on=(decided + dt.timedelta(days=keep)).isoformat(),
        )

    def current(self, today: dt.date) -> list[PublishedDecision]:
        """The entries on the feed today, newest decision first."""
        live = [d for d in list(self._entries.values()) if d.expires_on > today.isoformat()]
        return sorted(live, key=lambda d: (d.decided_on, d.case_number), reverse=True)
