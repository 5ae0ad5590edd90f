"""Cases: Submit, SubmitBatch and ListTypes, and the shards' parts of a case (CheckEvidence, FindRestrictions)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import Awaitable
from dataclasses import dataclass

import orjson
from grpc import aio

from hub.errors import AlreadyExists, HubError, InvalidArgument, Unavailable
from hub.flows.cases import CaseOutcome, CaseRequest, CaseResolver, EvidenceResult, restricted_subject
from hub.flows.restrictions import CREDIT_LIST, LISTING_FIELDS
from hub.flows.stores import Recorded
from hub.governance.audit import AuditEvent
from hub.governance.identity import current_caller
from hub.governance.receipts import Signed
from hub.kafka.directory import AnnouncedPartition
from hub.server.case_records import CaseRecords
from hub.server.case_shards import Case, ShardedCases, answer_restrictions
from hub.server.convert import case_from_pb, watermark_to_pb
from hub.server.deps import Deps
from hub.server.interceptors import accesses_audited, note_access
from hub.server.receipts import receipt_for_case, stored
from hub.v1 import cases_pb2, cases_pb2_grpc

MAX_BATCH = 1000
_OUTCOMES = {
    "satisfied": cases_pb2.EVIDENCE_OUTCOME_SATISFIED,
    "not_satisfied": cases_pb2.EVIDENCE_OUTCOME_NOT_SATISFIED,
    "cannot_determine": cases_pb2.EVIDENCE_OUTCOME_CANNOT_DETERMINE,
}


class EvidenceMessages:
    """The EvidenceResult messages of one call's answers. The cases of a batch repeat a few (an item
    with its outcome and reason against one cache version), and protobuf's Python constructor makes
    one in about 3 µs where copying one already made costs a third of that. Keyed by the identity of
    the item and the watermark, which the call's outcomes hold while it lasts: use one per call."""

    def __init__(self) -> None:
        self._made: dict[tuple, cases_pb2.EvidenceResult] = {}

    def __call__(self, e: EvidenceResult) -> cases_pb2.EvidenceResult:
        key = (id(e.evidence), e.outcome, e.reason, tuple(e.disputed), id(e.watermark))
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = cases_pb2.EvidenceResult(
                evidence=e.evidence.name,
                title=e.evidence.title,
                outcome=_OUTCOMES[e.outcome],
                reason=e.reason,
                resource=e.evidence.resource,
                disputed_fields=e.disputed,
                watermark=watermark_to_pb(e.watermark) if e.watermark else None,
            )
        return made


def outcome_to_pb(outcome: CaseOutcome, evidence: EvidenceMessages) -> cases_pb2.CaseResult:
    return cases_pb2.CaseResult(
        case_number=outcome.case_number,
        case_type=outcome.case_type.code,
        complete=outcome.complete,
        evidence=[evidence(e) for e in outcome.evidence],
        restrictions=[
            cases_pb2.Restriction(
                credit_code=r.credit_code, measure=r.measure, entry_id=r.entry_id, listed_on=r.listed_on
            )
            for r in outcome.restrictions
        ],
    )


def _digest(caller: str, request: CaseRequest) -> str:
    """What makes a submission the same case: who submitted what (not when)."""
    parts = (caller, request.case_type, request.applicant, request.date, sorted(request.params.items()))
    content = orjson.dumps([*parts, request.purpose, request.proof_shown])
    return hashlib.blake2b(content, digest_size=16).hexdigest()


def _retrieved(done: asyncio.Future[None]) -> None:
    if not done.cancelled():
        done.exception()


def _with_receipt(result: cases_pb2.CaseResult, receipt: Signed | None) -> cases_pb2.CaseResult:
    if receipt is not None:
        result.receipt.jws, result.receipt.salt = receipt.jws, receipt.salt
    return result


def _event(
    outcome: CaseOutcome, caller: str, request: CaseRequest, receipt: Signed | None, digest: str, result: bytes
) -> bytes:
    event = {
        "case_number": outcome.case_number,
        "case_type": outcome.case_type.code,
        "department": caller,
        "date": request.date,
        "purpose": request.purpose,
        "complete": outcome.complete,
        "evidence": {e.evidence.name: e.outcome for e in outcome.evidence},
        "restrictions": [r.measure for r in outcome.restrictions],
        "at_ms": int(time.time() * 1000),
        "request_digest": digest,
        "result": base64.b64encode(result).decode(),
    }
    if receipt is not None:  # stored with the case, so a reviewer can ask for it by case number
        event["receipt"] = stored(receipt)
    return orjson.dumps(event)


@dataclass(frozen=True)
class _Resolved:
    """A case resolved now, with its receipt if asked for: what its event and its answer carry."""

    outcome: CaseOutcome
    request: CaseRequest
    receipt: Signed | None
    digest: str
    result: cases_pb2.CaseResult


class CasesService(cases_pb2_grpc.CasesServicer):
    """A case number is recorded once: a resubmission with the same content (a client retrying after
    a lost answer) gets the recorded result and writes no second event; different content under a
    recorded number is ALREADY_EXISTS. A number this replica has not seen is looked up again once the
    replica has read the cases topic to its current end, so this holds across workers and replicas: a
    retry sent elsewhere after the first attempt's event was acknowledged finds that event. The recorded
    result is read back from that event (the ledger keeps where it is, not the result)."""

    def __init__(
        self, deps: Deps, resolver: CaseResolver, records: CaseRecords, partitions: AnnouncedPartition
    ) -> None:
        self._deps = deps
        self._resolver = resolver
        self._records = records
        self._ledger = records.ledger
        self._partitions = partitions
        self._sharded = ShardedCases(deps, resolver)

    async def _resolve(self, cases: list[Case], context: aio.ServicerContext) -> list[CaseOutcome | HubError]:
        """Each case resolved, or why it was refused as a whole; nothing recorded yet."""
        if self._deps.shards.sharded:  # evidence spans resources and keys of every shard
            return await self._sharded.resolve(cases, context)
        caller = current_caller.get()
        outcomes: list[CaseOutcome | HubError] = []
        for _, case in cases:
            try:
                outcomes.append(self._resolver.resolve(caller, case))
            except HubError as exc:
                outcomes.append(exc)
        return outcomes

    def _audit_accesses(
        self, cases: list[Case], outcomes: list[CaseOutcome | HubError], seconds: float
    ) -> asyncio.Future[None] | None:
        """Every evidence check of the resolved cases, and every look at an entity's joint restrictions,
        audited under its case number: what to await for Kafka's acknowledgement of them all (None if
        there was nothing to audit)."""
        audit = self._deps.audit
        resolved = [(case, o) for (_, case), o in zip(cases, outcomes, strict=True) if isinstance(o, CaseOutcome)]
        if audit is None or not resolved:
            return None
        caller = current_caller.get()
        latency = int(seconds * 1e6 / max(1, sum(len(o.evidence) for _, o in resolved)))
        entries = [
            AuditEvent(
                caller.department,
                caller.subsystem,
                "case.evidence",
                e.evidence.resource,
                (e.subject,),
                [c.field for c in e.evidence.claims],
                case.purpose,
                case.case_number,
                e.error_code,
                latency,
                e.evidence.name,
            )
            for case, outcome in resolved
            for e in outcome.evidence
        ]
        entries += [
            AuditEvent(
                caller.department,
                caller.subsystem,
                "case.restrictions",
                CREDIT_LIST,
                (entity,),
                LISTING_FIELDS,
                case.purpose,
                case.case_number,
                "OK",
                latency,
                outcome.case_type.restricted_context,
            )
            for case, outcome in resolved
            if outcome.case_type.restricted_context and (entity := restricted_subject(case, outcome.case_type))
        ]
        written = audit.writing(entries)
        written.add_done_callback(_retrieved)  # a refusal may leave it unawaited: no "never retrieved" noise
        return written

    async def _write(self, items: list[_Resolved], audited: asyncio.Future[None] | None, read_back: bool) -> None:
        """Publishes the new cases' events while Kafka acknowledges their evidence checks' entries. Once
        both are done every access of the call is on the trail, so the answer need not wait for the call's
        own entry too (hub.server.interceptors.accesses_audited), unless it carries a recorded result read
        back: that disclosure is recorded by the call's entry only."""
        steps: list[Awaitable[None]] = [self._publish(items)] if items else []
        if audited is not None:
            steps.append(audited)
        for result in await asyncio.gather(*steps, return_exceptions=True):
            if isinstance(result, BaseException):
                raise result
        if audited is not None and not read_back:
            accesses_audited()

    @staticmethod
    def _same(request: CaseRequest, digest: str, recorded: Recorded | None) -> Recorded | None:
        """The record of a resubmission of the same case; ALREADY_EXISTS if it records different content."""
        if recorded is not None and recorded.digest != digest:
            raise AlreadyExists(
                f"case_number: {request.case_number} is already recorded with different content "
                "(department, type, applicant, date, params, purpose or proof); use a new case number",
                field="case_number",
            )
        return recorded

    async def _read_back(self, recorded: list[Recorded]) -> list[cases_pb2.CaseResult]:
        """The recorded results, read from their events (Unavailable if Kafka cannot be read)."""
        if not recorded:
            return []
        events = await self._records.events(recorded)
        return [cases_pb2.CaseResult.FromString(base64.b64decode(e["result"])) for e in events]

    async def _publish(self, items: list[_Resolved]) -> None:
        caller = current_caller.get().department
        events = [(i.outcome.case_number, i.digest, i.result.SerializeToString()) for i in items]
        # A call's events go to one partition (a batch per partition per call made the broker's partitions
        # grow by three small batches a call), the same for a run of calls, announced to the other
        # replicas' catch-ups first. A case's event is found where the ledger saw it, never by its key's
        # partition, so the key need not choose it.
        deliveries = await self._partitions.send(
            [
                (number.encode(), _event(i.outcome, caller, i.request, i.receipt, digest, result))
                for i, (number, digest, result) in zip(items, events, strict=True)
            ]
        )
        # What Kafka acknowledged is recorded even if the rest failed: the resubmission finds it.
        self._ledger.record(
            [
                (number, Recorded(digest, d.partition, d.offset))
                for (number, digest, _), d in zip(events, deliveries, strict=True)
                if d.error is None
            ]
        )
        if any(d.error is not None for d in deliveries):
            raise Unavailable("the case events were not acknowledged by Kafka; resubmit (it is idempotent)")

    async def Submit(self, request: cases_pb2.SubmitRequest, context: aio.ServicerContext) -> cases_pb2.SubmitResponse:
        note_access("case.submit", request.case_type, subjects=(request.applicant,), case_number=request.case_number)
        case = case_from_pb(request)
        digest = _digest(current_caller.get().department, case)
        # Shielded: a caller's deadline that cancels the call must not cut between producing the event
        # and recording it, or the caller's retry would resolve the case again.
        result = await asyncio.shield(self._submit_once(request, case, digest, context))
        return cases_pb2.SubmitResponse(result=result)

    async def _submit_once(
        self, pb: cases_pb2.SubmitRequest, case: CaseRequest, digest: str, context: aio.ServicerContext
    ) -> cases_pb2.CaseResult:
        async with self._deps.exclusive(f"case:{case.case_number}"):  # two clicks on Submit: one event
            # A retry whose first attempt another worker or replica recorded is found once caught up.
            recorded = self._same(case, digest, await self._records.find(case.case_number))
            if recorded is not None:
                [result] = await self._read_back([recorded])
                return result
            started = time.perf_counter()
            [outcome] = await self._resolve([(pb, case)], context)
            if isinstance(outcome, HubError):
                raise outcome
            audited = self._audit_accesses([(pb, case)], [outcome], time.perf_counter() - started)
            resolved = self._resolved(case, digest, pb.receipt, outcome, EvidenceMessages())
            await self._write([resolved], audited, read_back=False)
        return resolved.result

    def _resolved(
        self, case: CaseRequest, digest: str, receipt: bool, outcome: CaseOutcome, evidence: EvidenceMessages
    ) -> _Resolved:
        signed = receipt_for_case(self._deps, case, outcome) if receipt else None
        return _Resolved(outcome, case, signed, digest, _with_receipt(outcome_to_pb(outcome, evidence), signed))

    async def SubmitBatch(
        self, request: cases_pb2.SubmitBatchRequest, context: aio.ServicerContext
    ) -> cases_pb2.SubmitBatchResponse:
        if len(request.cases) > MAX_BATCH:
            raise InvalidArgument(f"cases: at most {MAX_BATCH} per call, got {len(request.cases)}", field="cases")
        note_access(
            "case.submit_batch", "", subjects=[c.applicant for c in request.cases], detail=f"{len(request.cases)} cases"
        )
        department = current_caller.get().department
        # A number this replica has not seen is looked up again once the cases topic is read to its end
        # (another worker or replica may have recorded it). The batch is resolved while that read waits
        # on Kafka; only what is still unrecorded after it is audited and written.
        unseen = any(c.case_number not in self._ledger for c in request.cases)
        catching_up = self._records.catching_up() if unseen else None
        answers: list[cases_pb2.CaseResult | Recorded | HubError | None] = []  # None: resolved below
        candidates: list[tuple[int, Case, str]] = []  # position, case, digest
        first: dict[str, tuple[str, int]] = {}  # a number's digest and first position in the batch
        repeats: list[tuple[int, int]] = []  # a number sent again with the same content: its first position
        for i, pb in enumerate(request.cases):
            try:
                case = case_from_pb(pb)
                digest = _digest(department, case)
                earlier = first.get(case.case_number)
                if earlier is not None:
                    if earlier[0] != digest:
                        raise AlreadyExists(f"case_number: {case.case_number} appears twice with different content")
                    repeats.append((i, earlier[1]))
                else:
                    candidates.append((i, (pb, case), digest))
                    first[case.case_number] = (digest, i)
                answers.append(None)
            except HubError as exc:
                answers.append(exc)
        started = time.perf_counter()
        try:
            outcomes = await self._resolve([case for _, case, _ in candidates], context)
        finally:
            if catching_up is not None:
                await catching_up
        fresh: list[tuple[int, Case, str]] = []
        resolved_fresh: list[CaseOutcome | HubError] = []
        for (i, (pb, case), digest), outcome in zip(candidates, outcomes, strict=True):
            try:
                recorded = self._same(case, digest, self._ledger.get(case.case_number))
            except HubError as exc:
                answers[i] = exc
                continue
            if recorded is not None:
                answers[i] = recorded
            else:
                fresh.append((i, (pb, case), digest))
                resolved_fresh.append(outcome)
        # Read before auditing and publishing: a batch that fails on Kafka's read fails before its
        # evidence checks are recorded and before it has written.
        recorded_at = {i: a for i, a in enumerate(answers) if isinstance(a, Recorded)}
        for i, result in zip(recorded_at, await self._read_back(list(recorded_at.values())), strict=True):
            answers[i] = result
        audited = self._audit_accesses([case for _, case, _ in fresh], resolved_fresh, time.perf_counter() - started)
        resolved: list[_Resolved] = []
        evidence = EvidenceMessages()
        for (i, (pb, case), digest), outcome in zip(fresh, resolved_fresh, strict=True):
            if isinstance(outcome, HubError):
                answers[i] = outcome
                continue
            try:
                resolved.append(self._resolved(case, digest, pb.receipt, outcome, evidence))
            except HubError as exc:  # its receipt could not be signed
                answers[i] = exc
                continue
            answers[i] = resolved[-1].result
        for i, j in repeats:
            answers[i] = answers[j]
        response = cases_pb2.SubmitBatchResponse()
        for i, (pb, answer) in enumerate(zip(request.cases, answers, strict=True)):
            if isinstance(answer, cases_pb2.CaseResult):
                response.results.append(answer)
            else:
                assert isinstance(answer, HubError)  # every position is answered by now
                response.results.add(
                    case_number=pb.case_number, case_type=pb.case_type, error=f"cases[{i}]: {answer.message}"
                )
        await self._write(resolved, audited, read_back=bool(recorded_at))
        return response

    async def CheckEvidence(
        self, request: cases_pb2.CheckEvidenceRequest, context: aio.ServicerContext
    ) -> cases_pb2.CheckEvidenceResponse:
        return await self._sharded.answer(request, context)

    async def FindRestrictions(
        self, request: cases_pb2.FindRestrictionsRequest, context: aio.ServicerContext
    ) -> cases_pb2.FindRestrictionsResponse:
        return answer_restrictions(self._deps, request)

    async def ListTypes(
        self, request: cases_pb2.ListTypesRequest, context: aio.ServicerContext
    ) -> cases_pb2.ListTypesResponse:
        return cases_pb2.ListTypesResponse(
            types=[
                cases_pb2.CaseType(
                    code=t.code,
                    title=t.title,
                    params=t.params,
                    evidence=[e.name for e in t.evidence],
                    restricted_context=t.restricted_context,
                )
                for t in self._resolver.types.values()
            ]
        )
