"""Conversions between the public contract (``hub.v1``) and domain objects."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar, cast

from hub.cache.claims import Claim, Op
from hub.cache.table import Watermark
from hub.catalogue.model import Department, ResourceSpec
from hub.errors import InvalidArgument
from hub.flows.cases import CaseRequest
from hub.flows.model import Alert, CorrectionRequest, CorrectionState, FeedbackKind, Notice, NoticeState
from hub.governance.policy import purpose_name
from hub.governance.state import PURPOSES, AccessRequest, Grant
from hub.v1 import cases_pb2, catalog_pb2, common_pb2, corrections_pb2, governance_pb2, notices_pb2, verification_pb2

_OPS = {
    verification_pb2.CLAIM_OP_UNSPECIFIED: Op.EQUALS,
    verification_pb2.CLAIM_OP_EQUALS: Op.EQUALS,
    verification_pb2.CLAIM_OP_NOT_EQUALS: Op.NOT_EQUALS,
    verification_pb2.CLAIM_OP_IN: Op.IN,
    verification_pb2.CLAIM_OP_PREFIX: Op.PREFIX,
    verification_pb2.CLAIM_OP_CONTAINS: Op.CONTAINS,
    verification_pb2.CLAIM_OP_AT_MOST: Op.AT_MOST,
    verification_pb2.CLAIM_OP_AT_LEAST: Op.AT_LEAST,
    verification_pb2.CLAIM_OP_BEFORE: Op.BEFORE,
    verification_pb2.CLAIM_OP_AFTER: Op.AFTER,
    verification_pb2.CLAIM_OP_UNSET: Op.UNSET,
}
# Each claim costs a column of results per key: 32 is many more than any question needs.
MAX_CLAIMS = 32
_SHARING = {
    "unconditional": catalog_pb2.SHARING_CLASS_UNCONDITIONAL,
    "conditional": catalog_pb2.SHARING_CLASS_CONDITIONAL,
    "not_shared": catalog_pb2.SHARING_CLASS_NOT_SHARED,
}


def claims_from_pb(claims: Iterable) -> list[Claim]:
    """From ``Claim`` or ``ClaimColumn`` messages; at most MAX_CLAIMS, with known operators only."""
    out = []
    for i, c in enumerate(claims):
        if i == MAX_CLAIMS:
            raise InvalidArgument(f"claims: at most {MAX_CLAIMS} per call", field="claims")
        op = _OPS.get(c.op)
        if op is None:
            raise InvalidArgument(f"claims[{i}].op: {c.op} is not a ClaimOp", field=f"claims[{i}].op")
        out.append(Claim(c.field, op, tuple(c.values), c.or_unset))
    return out


def watermark_to_pb(wm: Watermark) -> common_pb2.Watermark:
    return common_pb2.Watermark(
        offsets=wm.offsets, caught_up_at_ms=wm.caught_up_at_ms, last_record_at_ms=wm.last_record_at_ms
    )


def watermark_from_pb(pb: common_pb2.Watermark) -> Watermark:
    return Watermark(tuple(pb.offsets), pb.caught_up_at_ms, pb.last_record_at_ms)


def case_from_pb(pb: cases_pb2.SubmitRequest) -> CaseRequest:
    return CaseRequest(
        pb.case_number,
        pb.case_type,
        pb.applicant.strip().upper(),
        pb.date,
        dict(pb.params),
        purpose_name(pb.purpose),
        pb.proof_shown,
    )


def wanted_offsets(consistency: common_pb2.Consistency) -> list[tuple[int, int]]:
    return [(p.partition, p.offset) for p in consistency.min_offsets]


_SHARING_NAMES = {v: k for k, v in _SHARING.items()}


def purposes_from_pb(values, field: str) -> tuple[str, ...]:
    out = []
    for i, p in enumerate(values):
        if not 1 <= p <= len(PURPOSES):
            raise InvalidArgument(f"{field}[{i}]: not a purpose", field=f"{field}[{i}]")
        out.append(PURPOSES[p - 1])
    return tuple(out)


def purposes_to_pb(names: Iterable[str]) -> list[common_pb2.Purpose]:
    # Value() is typed int, the fields the enum (an int at run time)
    return [cast(common_pb2.Purpose, common_pb2.Purpose.Value(f"PURPOSE_{n.upper()}")) for n in names]


def request_to_pb(r: AccessRequest) -> governance_pb2.AccessRequest:
    return governance_pb2.AccessRequest(
        id=r.id,
        consumer=r.consumer,
        subsystem=r.subsystem,
        resource=r.resource,
        fields=r.fields,
        purposes=purposes_to_pb(r.purposes),
        legal_basis=r.legal_basis,
        filed_at_ms=r.filed_at_ms,
        deadline_ms=r.deadline_ms,
        state=r.state,
        decided_at_ms=r.decided_at_ms,
        decided_by=r.decided_by,
        reason=r.reason,
        grant_id=r.grant_id,
        overdue=r.overdue(),
    )


def grant_to_pb(g: Grant) -> governance_pb2.Grant:
    return governance_pb2.Grant(
        id=g.id,
        consumer=g.consumer,
        subsystem=g.subsystem,
        resource=g.resource,
        fields=g.fields,
        unmasked_fields=g.unmasked,
        purposes=purposes_to_pb(g.purposes),
        granted_at_ms=g.granted_at_ms,
        granted_by=g.granted_by,
        request_id=g.request_id,
        expires_at_ms=g.expires_at_ms,
        revoked_at_ms=g.revoked_at_ms,
        revoked_reason=g.revoked_reason,
        active=g.active(),
    )


def department_to_pb(d: Department) -> catalog_pb2.DepartmentDescriptor:
    return catalog_pb2.DepartmentDescriptor(code=d.code, name=d.name, title=d.title)


def resource_from_pb(pb: catalog_pb2.ResourceDescriptor) -> dict:
    """A catalogue entry (to validate as ResourceSpec) from a descriptor."""
    entry = {
        "name": pb.name,
        "code": pb.code,
        "title": pb.title,
        "provider": pb.provider,
        "summary": pb.summary,
        "key": pb.key,
        "sharing_class": _SHARING_NAMES.get(pb.sharing_class, "unspecified"),
        "sharing_methods": list(pb.sharing_methods) or ["verification"],
        "conditions": pb.conditions,
        "legal_basis": pb.legal_basis,
        "open_data": pb.open_data,
        "update_frequency": pb.update_frequency or "realtime",
        "published_on": pb.published_on,
        "related": list(pb.related),
        "partitions": pb.partitions or 3,
        "schema_version": pb.schema_version or 1,
        "fields": [
            {
                k: v
                for k, v in {
                    "name": f.name,
                    "type": f.type,
                    "title": f.title or f.name,
                    "required": f.required,
                    "sensitive": f.sensitive,
                    "mask": f.mask,
                    "allowed": list(f.allowed),
                    "format": f.format,
                    "indexed": f.indexed,
                }.items()
                if v not in ("", [], False)
            }
            for f in pb.fields
        ],
    }
    return entry


def resource_to_pb(spec: ResourceSpec, topic: str, partitions: int, version: int = 0) -> catalog_pb2.ResourceDescriptor:
    import orjson

    return catalog_pb2.ResourceDescriptor(
        version=version,
        name=spec.name,
        code=spec.code,
        title=spec.title,
        provider=spec.provider,
        summary=spec.summary,
        key=spec.key,
        fields=[
            catalog_pb2.FieldDescriptor(
                name=f.name,
                type=f.type,
                title=f.title,
                required=f.required,
                sensitive=f.sensitive,
                allowed=f.allowed,
                format=f.format,
                indexed=f.indexed,
                mask=f.mask,
            )
            for f in spec.fields
        ],
        sharing_class=_SHARING[spec.sharing_class],
        sharing_methods=spec.sharing_methods,
        conditions=spec.conditions,
        legal_basis=spec.legal_basis,
        open_data=spec.open_data,
        update_frequency=spec.update_frequency,
        published_on=spec.published_on.isoformat(),
        related=spec.related,
        topic=topic,
        partitions=partitions,
        schema_version=spec.schema_version,
        json_schema=orjson.dumps(spec.json_schema()).decode(),
    )


N = TypeVar("N", bound=str)
P = TypeVar("P", bound=int)


class EnumTable(Generic[N, P]):
    """The domain's names for a proto enum's values: one table, read both ways."""

    def __init__(self, unspecified: P, values: dict[N, P]) -> None:
        self._unspecified = unspecified
        self._values: dict[str, P] = {k: v for k, v in values.items()}
        self._names: dict[int, N] = {v: k for k, v in values.items()}

    def to_pb(self, name: str) -> P:
        """UNSPECIFIED for a name not in the table (e.g. no feedback yet)."""
        return self._values.get(name, self._unspecified)

    def from_pb(self, value: int) -> N | None:
        """None for UNSPECIFIED and for values this hub does not know."""
        return self._names.get(value)


NOTICE_STATES: EnumTable[NoticeState, notices_pb2.NoticeState] = EnumTable(
    notices_pb2.NOTICE_STATE_UNSPECIFIED,
    {
        "open": notices_pb2.NOTICE_STATE_OPEN,
        "claimed": notices_pb2.NOTICE_STATE_CLAIMED,
        "done": notices_pb2.NOTICE_STATE_DONE,
    },
)
FEEDBACK_KINDS: EnumTable[FeedbackKind, notices_pb2.FeedbackKind] = EnumTable(
    notices_pb2.FEEDBACK_KIND_UNSPECIFIED,
    {
        "permit_issued": notices_pb2.FEEDBACK_KIND_PERMIT_ISSUED,
        "inspected": notices_pb2.FEEDBACK_KIND_INSPECTED,
        "not_applicable": notices_pb2.FEEDBACK_KIND_NOT_APPLICABLE,
        "other": notices_pb2.FEEDBACK_KIND_OTHER,
    },
)
CORRECTION_STATES: EnumTable[CorrectionState, corrections_pb2.CorrectionState] = EnumTable(
    corrections_pb2.CORRECTION_STATE_UNSPECIFIED,
    {
        "open": corrections_pb2.CORRECTION_STATE_OPEN,
        "corrected": corrections_pb2.CORRECTION_STATE_CORRECTED,
        "confirmed": corrections_pb2.CORRECTION_STATE_CONFIRMED,
    },
)


def notice_to_pb(n: Notice) -> notices_pb2.Notice:
    return notices_pb2.Notice(
        id=n.id,
        department=n.department,
        credit_code=n.credit_code,
        entity_name=n.entity_name,
        scope_item=n.scope_item,
        reason=n.reason,
        state=NOTICE_STATES.to_pb(n.state),
        created_at_ms=n.created_at_ms,
        claimed_at_ms=n.claimed_at_ms,
        claimed_by=n.claimed_by,
        feedback_at_ms=n.feedback_at_ms,
        feedback=FEEDBACK_KINDS.to_pb(n.feedback),
        feedback_note=n.feedback_note,
        claim_due_ms=n.claim_due_ms,
        feedback_due_ms=n.feedback_due_ms,
        registered_at_ms=n.registered_at_ms,
    )


def alert_to_pb(a: Alert) -> notices_pb2.Alert:
    return notices_pb2.Alert(
        id=a.id,
        notice_id=a.notice_id,
        department=a.department,
        kind=a.kind,
        raised_at_ms=a.raised_at_ms,
        due_ms=a.due_ms,
    )


def correction_to_pb(c: CorrectionRequest) -> corrections_pb2.CorrectionRequest:
    return corrections_pb2.CorrectionRequest(
        id=c.id,
        resource=c.resource,
        key=c.key,
        field=c.field,
        proposed_value=c.proposed_value,
        evidence_ref=c.evidence_ref,
        filed_by=c.filed_by,
        filed_at_ms=c.filed_at_ms,
        due_ms=c.due_ms,
        state=CORRECTION_STATES.to_pb(c.state),
        resolved_by=c.resolved_by,
        resolved_at_ms=c.resolved_at_ms,
        note=c.note,
        overdue=c.overdue(),
    )
