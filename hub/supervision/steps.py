"""Case steps: the event each reported step becomes, a case's state, and the rules a step must pass.

A step is refused (and nothing is written) when it comes out of the item's order, when the case is
closed, or when it is a major decision with no legal review before it; the officer's certificate is
checked by :mod:`hub.officers`. Everything a later reader needs is in the event itself
(limits, working days taken, deadlines), so a case's full record replays from its events alone and
the monthly report is a group-by over them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hub.errors import FailedPrecondition, InvalidArgument
from hub.governance.workdays import WorkCalendar
from hub.supervision.powers import DECIDE, LEGAL_REVIEW, PUBLISH, PUBLISHED_CATEGORIES, REVOKE, PowerItem

Outcome = Literal["", "approved", "refused", "penalised", "dismissed"]
OUTCOMES = ("approved", "refused", "penalised", "dismissed")
TargetKind = Literal["", "natural", "legal"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StepReport:
    """What a department's system reports: one step of one case."""

    case_number: str
    item_code: str
    step: str
    officer_certificate: str
    at_ms: int
    division: str = "510600"
    outcome: str = ""
    reason: str = ""
    major: bool = False
    target_name: str = ""
    target_id: str = ""
    target_kind: str = ""
    decision: str = ""


@dataclass(slots=True, kw_only=True)
class StepEvent:
    """One step on the steps topic, keyed by case number: the case's full record is its events.

    Never changed once made; not ``frozen`` only because a frozen dataclass's ``__init__`` costs
    three times as much, and every replica decodes thousands of these a second."""

    case_number: str
    item_code: str
    category: str
    department: str
    division: str
    step: str
    seq: int
    officer: str
    at_ms: int
    reported_at_ms: int
    accepted_at_ms: int
    step_index: int = -1  # in the item's process (-1: publish, revoke)
    prev_at_ms: int = 0
    step_limit_days: int = 0
    step_days: int = 0
    case_days: int = 0
    promised_days: int = 0
    closes: bool = False
    next_step: str = ""
    next_due_ms: int = 0  # the next required step is overdue after this
    case_due_ms: int = 0
    outcome: str = ""
    reason: str = ""
    major: bool = False
    target_name: str = ""
    target_id: str = ""
    target_kind: str = ""
    decision: str = ""


@dataclass(slots=True)
class CaseState:
    """A case as its events so far leave it (held by :class:`hub.supervision.casebook.CaseBook`)."""

    case_number: str
    item_code: str
    category: str
    department: str
    division: str
    accepted_at_ms: int
    case_due_ms: int
    last_step: str = ""
    last_index: int = -1
    last_at_ms: int = 0
    seq: int = 0
    next_step: str = ""
    next_due_ms: int = 0
    reviewed: bool = False
    decided_at_ms: int = 0
    outcome: str = ""
    target_name: str = ""
    target_id: str = ""
    target_kind: str = ""
    decision: str = ""
    published_at_ms: int = 0
    revoked: bool = False
    closed: bool = False
    last_reported: tuple[str, int] = ("", 0)  # (step, at_ms) of the latest event, publish and revoke too

    @classmethod
    def opened(cls, e: StepEvent) -> CaseState:
        return cls(e.case_number, e.item_code, e.category, e.department, e.division, e.at_ms, e.case_due_ms)

    def advance(self, e: StepEvent) -> None:
        self.seq = e.seq + 1
        self.last_reported = (e.step, e.at_ms)
        if e.step == PUBLISH:
            self.published_at_ms = e.at_ms
            return
        if e.step == REVOKE:
            self.revoked = True
            return
        self.last_step, self.last_index, self.last_at_ms = e.step, e.step_index, e.at_ms
        self.next_step, self.next_due_ms = e.next_step, e.next_due_ms
        self.closed = self.closed or e.closes
        if e.step == LEGAL_REVIEW:
            self.reviewed = True
        elif e.step == DECIDE:
            self.decided_at_ms, self.outcome, self.decision = e.at_ms, e.outcome, e.decision
            self.target_name, self.target_id, self.target_kind = e.target_name, e.target_id, e.target_kind


def check_report(r: StepReport) -> None:
    """Field-level checks that need no state; raises InvalidArgument naming the field."""
    for name in ("case_number", "item_code", "step", "officer_certificate"):
        if not getattr(r, name).strip():
            raise InvalidArgument(f"{name}: required", field=name)
    if r.at_ms <= 0:
        raise InvalidArgument("at_ms: required (when the step happened)", field="at_ms")
    if r.outcome and r.outcome not in OUTCOMES:
        raise InvalidArgument(f"outcome: {r.outcome!r} is not one of {', '.join(OUTCOMES)}", field="outcome")
    if r.target_kind not in ("", "natural", "legal"):
        raise InvalidArgument(f"target_kind: {r.target_kind!r} is not natural or legal", field="target_kind")
    if r.step == DECIDE:
        if not r.outcome:
            raise InvalidArgument("outcome: required on a decide step", field="outcome")
        if not r.target_name or not r.target_kind:
            raise InvalidArgument("target_name, target_kind: required on a decide step", field="target_name")


def next_event(
    item: PowerItem, case: CaseState | None, r: StepReport, calendar: WorkCalendar, now_ms: int
) -> StepEvent:
    """The event for ``r`` after the order and legal-review rules; raises FailedPrecondition if refused."""
    if case is not None and case.item_code != item.code:
        raise InvalidArgument(
            f"item_code: case {r.case_number} is a case of {case.item_code}, not {item.code}", field="item_code"
        )
    if r.step in (PUBLISH, REVOKE):
        return _outside_process(item, case, r, now_ms)
    index = item.index(r.step)
    if index < 0:
        names = ", ".join(s.name for s in item.steps)
        raise InvalidArgument(f"step: {r.step!r} is not a step of {item.code} ({names}, publish, revoke)", field="step")
    if case is None:
        if index != 0:
            raise FailedPrecondition(
                f"step: case {r.case_number} has no steps yet; it starts with {item.steps[0].name!r}, not {r.step!r}",
                field="step",
            )
        accepted, prev, last = r.at_ms, 0, -1
    else:
        if case.closed:
            raise FailedPrecondition(f"step: case {r.case_number} is closed ({case.last_step})", field="step")
        skipped = [s.name for s in item.steps[case.last_index + 1 : index] if not s.optional]
        if index <= case.last_index or skipped:
            expected = skipped[0] if skipped else _next_required(item, case.last_index)
            raise FailedPrecondition(
                f"step: {r.step!r} out of order for case {r.case_number}: after {case.last_step!r} comes {expected!r}",
                field="step",
            )
        if r.at_ms < case.last_at_ms:
            raise InvalidArgument(f"at_ms: before the case's previous step ({case.last_step})", field="at_ms")
        accepted, prev, last = case.accepted_at_ms, case.last_at_ms, case.last_index
    if r.step == DECIDE and (item.major or r.major) and not (case is not None and case.reviewed):
        raise FailedPrecondition(
            f"step: decide on case {r.case_number} is a major decision and needs a {LEGAL_REVIEW!r} step first "
            "(重大执法决定法制审核)",
            field="step",
        )
    step = item.steps[index]
    closes = index >= item.final
    following = None if closes else _next_required_index(item, index)
    return StepEvent(
        case_number=r.case_number,
        item_code=item.code,
        category=item.category,
        department=item.department,
        division=r.division,
        step=r.step,
        seq=0 if case is None else case.seq,
        officer=r.officer_certificate,
        at_ms=r.at_ms,
        reported_at_ms=now_ms,
        accepted_at_ms=accepted,
        step_index=index,
        prev_at_ms=prev,
        step_limit_days=step.limit_days if last >= 0 else 0,
        step_days=calendar.between(prev, r.at_ms) if last >= 0 else 0,
        case_days=calendar.between(accepted, r.at_ms),
        promised_days=item.promised_days,
        closes=closes,
        next_step="" if following is None else item.steps[following].name,
        next_due_ms=0 if following is None else calendar.add(r.at_ms, item.steps[following].limit_days),
        case_due_ms=calendar.add(accepted, item.promised_days),
        outcome=r.outcome,
        reason=r.reason,
        major=item.major or r.major,
        target_name=r.target_name,
        target_id=r.target_id,
        target_kind=r.target_kind,
        decision=r.decision,
    )


def _outside_process(item: PowerItem, case: CaseState | None, r: StepReport, now_ms: int) -> StepEvent:
    if case is None or not case.decided_at_ms:
        raise FailedPrecondition(f"step: {r.step} needs a decided case; {r.case_number} has no decision", field="step")
    if r.step == PUBLISH:
        if item.category not in PUBLISHED_CATEGORIES:
            raise FailedPrecondition(f"step: {item.category} decisions are not published", field="step")
        if case.published_at_ms:
            raise FailedPrecondition(f"step: the decision of {r.case_number} is already published", field="step")
    elif case.revoked:
        raise FailedPrecondition(f"step: the decision of {r.case_number} is already revoked", field="step")
    if r.at_ms < case.decided_at_ms:
        raise InvalidArgument(f"at_ms: before the decision ({r.step})", field="at_ms")
    return StepEvent(
        case_number=r.case_number,
        item_code=item.code,
        category=item.category,
        department=item.department,
        division=case.division,
        step=r.step,
        seq=case.seq,
        officer=r.officer_certificate,
        at_ms=r.at_ms,
        reported_at_ms=now_ms,
        accepted_at_ms=case.accepted_at_ms,
        prev_at_ms=case.decided_at_ms,
        promised_days=item.promised_days,
        reason=r.reason,
    )


def _next_required_index(item: PowerItem, after: int) -> int:
    return next(i for i in range(after + 1, len(item.steps)) if not item.steps[i].optional)


def _next_required(item: PowerItem, after: int) -> str:
    return item.steps[_next_required_index(item, after)].name
