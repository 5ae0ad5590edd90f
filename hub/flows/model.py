"""The flows' records: notices, the alerts on them, and correction requests.

Each is the whole current value of one key of a compacted topic (see :mod:`hub.flows.stores`),
written as JSON with exactly these field names, so a topic written before these types existed still
reads. ``Record(**value)`` reads a value back (an unknown field is a ``TypeError``; a field added
later has a default, so an older value reads too) and :func:`dataclasses.asdict` gives the value to
write. States and kinds are the names on the topic; :mod:`hub.server.convert` maps them to the proto
enums.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Literal

NoticeState = Literal["open", "claimed", "done"]
NoticeReason = Literal["registered", "scope_changed"]
FeedbackKind = Literal["permit_issued", "inspected", "not_applicable", "other"]
AlertKind = Literal["claim_overdue", "feedback_overdue"]
ResolvedState = Literal["corrected", "confirmed"]
CorrectionState = Literal["open", ResolvedState]


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice:
    """A department must act on a market entity's regulated scope item: claim it, then feed back."""

    id: str  # see hub.flows.notices.notice_id
    department: str
    credit_code: str
    entity_name: str
    scope_item: str
    permit: str
    reason: NoticeReason
    state: NoticeState
    created_at_ms: int
    registered_at_ms: int = 0  # 0 in notices written before it was recorded
    claim_due_ms: int
    claimed_at_ms: int = 0
    claimed_by: str = ""
    feedback_due_ms: int = 0
    feedback_at_ms: int = 0
    feedback: FeedbackKind | Literal[""] = ""
    feedback_note: str = ""

    def claimed(self, by: str, now_ms: int, feedback_limit_ms: int) -> Notice:
        return replace(
            self, state="claimed", claimed_at_ms=now_ms, claimed_by=by, feedback_due_ms=now_ms + feedback_limit_ms
        )

    def overdue(self, now_ms: int) -> tuple[AlertKind, int] | None:
        """The limit this notice is past at ``now_ms`` and when it fell due: unclaimed past the claim
        limit, or claimed with no feedback past the feedback limit."""
        if self.state == "open" and self.claim_due_ms and self.claim_due_ms < now_ms:
            return "claim_overdue", self.claim_due_ms
        if self.state == "claimed" and self.feedback_due_ms and self.feedback_due_ms < now_ms:
            return "feedback_overdue", self.feedback_due_ms
        return None

    def done(self, feedback: FeedbackKind, note: str, now_ms: int) -> Notice:
        return replace(self, state="done", feedback_at_ms=now_ms, feedback=feedback, feedback_note=note)


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """A notice not claimed, or not fed back, in time. Its id and content follow from the notice."""

    id: str  # <notice id>:<kind>
    notice_id: str
    department: str
    kind: AlertKind
    raised_at_ms: int
    due_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CorrectionRequest:
    """A consumer disputes one field of one record; the provider corrects or confirms it by ``due_ms``."""

    id: str
    resource: str
    key: str
    field: str
    proposed_value: str
    evidence_ref: str
    filed_by: str  # the caller's label, <department>.<subsystem>
    filed_at_ms: int
    due_ms: int
    state: CorrectionState = "open"
    resolved_by: str = ""
    resolved_at_ms: int = 0
    note: str = ""

    def overdue(self, now_ms: int | None = None) -> bool:
        return self.state == "open" and self.due_ms < (now_ms or int(time.time() * 1000))

    def resolved(self, state: ResolvedState, by: str, note: str, now_ms: int) -> CorrectionRequest:
        return replace(self, state=state, resolved_by=by, resolved_at_ms=now_ms, note=note)
