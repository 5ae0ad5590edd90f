"""Electronic supervision (电子监察): alerts computed from the step events as they arrive.

- yellow ``step_overrun``: a step came after its limit, or its limit passed with no step;
- red ``case_overrun``: the case passed its promised limit;
- red ``refusal_without_reason``: a decision refused with no reason given;
- yellow ``late_publication``: a licence or penalty decision not published within 7 working days.

An alert goes to its department and to the supervising office, and must be answered within
``answer_days`` working days; an unanswered alert past that is escalated. Alerts follow from the
events alone (an alert's id and content are the same on every replica, and a sweep raises a missed
deadline as of the deadline), so only answers are written: to the supervision state topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hub.governance.workdays import WorkCalendar
from hub.kafka.keyed_state import KeyedState
from hub.supervision.powers import DECIDE, PUBLISH, PUBLISHED_CATEGORIES
from hub.supervision.steps import CaseState, StepEvent

AlertKind = Literal["step_overrun", "case_overrun", "refusal_without_reason", "late_publication"]
LEVELS: dict[str, str] = {
    "step_overrun": "yellow",
    "case_overrun": "red",
    "refusal_without_reason": "red",
    "late_publication": "yellow",
}
PUBLISH_WITHIN_DAYS = 7


@dataclass(frozen=True, slots=True, kw_only=True)
class SupervisionAlert:
    id: str  # <case number>:<step>:<kind>
    kind: str
    level: str
    case_number: str
    item_code: str
    department: str
    division: str
    step: str
    raised_at_ms: int
    answer_due_ms: int
    detail: str
    event_reported_at_ms: int = 0  # the step event that raised it (0: raised by a deadline passing)


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertAnswer:
    alert_id: str
    answered_by: str
    answered_at_ms: int
    answer: str


class AnswerStore(KeyedState):
    """Answers to alerts (``answer:<alert id>``) on the supervision state topic."""

    def __init__(self) -> None:
        super().__init__("supervision")

    def answer(self, alert_id: str) -> AlertAnswer | None:
        value = self.values.get(f"answer:{alert_id}")
        return None if value is None else AlertAnswer(**value)


def status(alert: SupervisionAlert, answer: AlertAnswer | None, now_ms: int) -> str:
    if answer is not None:
        return "answered"
    return "escalated" if now_ms > alert.answer_due_ms else "open"


class AlertEngine:
    """Raises alerts for one replica's cases; ``raised`` is called for each new one."""

    def __init__(self, calendar: WorkCalendar, answer_days: int, publish_days: int = PUBLISH_WITHIN_DAYS) -> None:
        self.calendar = calendar
        self.answer_days = answer_days
        self.publish_days = publish_days
        self.alerts: dict[str, SupervisionAlert] = {}

    def on_event(self, case: CaseState, e: StepEvent) -> list[SupervisionAlert]:
        """The alerts this event raises (``case`` is already advanced past it)."""
        found = []
        if e.step_limit_days and e.step_days > e.step_limit_days:
            found.append(
                self._raise(
                    case,
                    e.step,
                    "step_overrun",
                    e.at_ms,
                    e.reported_at_ms,
                    f"{e.step} took {e.step_days} working days, the limit is {e.step_limit_days}",
                )
            )
        if e.case_due_ms and e.at_ms > e.case_due_ms:
            found.append(
                self._raise(
                    case,
                    "",
                    "case_overrun",
                    e.at_ms,
                    e.reported_at_ms,
                    f"{e.case_days} working days at {e.step}, promised {e.promised_days}",
                )
            )
        if e.step == DECIDE and e.outcome == "refused" and not e.reason.strip():
            found.append(
                self._raise(
                    case, e.step, "refusal_without_reason", e.at_ms, e.reported_at_ms, "refused, no reason given"
                )
            )
        if e.step == PUBLISH and e.at_ms > self._publish_due(case):
            days = self.calendar.between(case.decided_at_ms, e.at_ms)
            found.append(
                self._raise(
                    case,
                    PUBLISH,
                    "late_publication",
                    e.at_ms,
                    e.reported_at_ms,
                    f"published {days} working days after the decision, within {self.publish_days} required",
                )
            )
        return [a for a in found if a is not None]

    def on_deadlines(self, case: CaseState, now_ms: int) -> list[SupervisionAlert]:
        """Deadlines of an open case that passed with nothing reported, raised as of the deadline."""
        found = []
        if not case.closed and case.next_due_ms and now_ms > case.next_due_ms:
            found.append(
                self._raise(
                    case,
                    case.next_step,
                    "step_overrun",
                    case.next_due_ms,
                    0,
                    f"no {case.next_step} within its limit after {case.last_step}",
                )
            )
        if not case.closed and now_ms > case.case_due_ms:
            found.append(self._raise(case, "", "case_overrun", case.case_due_ms, 0, "open past the promised limit"))
        if self._unpublished(case) and now_ms > self._publish_due(case):
            found.append(
                self._raise(
                    case,
                    PUBLISH,
                    "late_publication",
                    self._publish_due(case),
                    0,
                    f"decision not published within {self.publish_days} working days",
                )
            )
        return [a for a in found if a is not None]

    def waiting(self, case: CaseState) -> bool:
        """Whether a deadline of this case can still pass."""
        return not case.closed or self._unpublished(case)

    def _unpublished(self, case: CaseState) -> bool:
        return (
            case.category in PUBLISHED_CATEGORIES
            and bool(case.decided_at_ms)
            and not case.published_at_ms
            and not case.revoked
        )

    def _publish_due(self, case: CaseState) -> int:
        return self.calendar.add(case.decided_at_ms, self.publish_days)

    def _raise(
        self, case: CaseState, step: str, kind: str, at_ms: int, reported_at_ms: int, detail: str
    ) -> SupervisionAlert | None:
        ident = f"{case.case_number}:{step}:{kind}"
        if ident in self.alerts:
            return None
        alert = SupervisionAlert(
            id=ident,
            kind=kind,
            level=LEVELS[kind],
            case_number=case.case_number,
            item_code=case.item_code,
            department=case.department,
            division=case.division,
            step=step,
            raised_at_ms=at_ms,
            answer_due_ms=self.calendar.add(at_ms, self.answer_days),
            detail=detail,
            event_reported_at_ms=reported_at_ms,
        )
        self.alerts[ident] = alert
        return alert
