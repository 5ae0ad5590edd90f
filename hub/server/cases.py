"""Cases: Submit, SubmitBatch and ListTypes."""

from __future__ import annotations

import time
import zlib

import orjson
from grpc import aio

from hub.errors import HubError, InvalidArgument, Unavailable
from hub.flows.cases import CaseOutcome, CaseRequest, CaseResolver
from hub.governance.audit import AuditEvent
from hub.governance.identity import current_caller
from hub.governance.policy import purpose_name
from hub.governance.receipts import Signed
from hub.server.convert import watermark_to_pb
from hub.server.deps import Deps
from hub.server.interceptors import note_access
from hub.server.receipts import receipt_for_case, stored
from hub.v1 import cases_pb2, cases_pb2_grpc

MAX_BATCH = 1000
_OUTCOMES = {
    "satisfied": cases_pb2.EVIDENCE_OUTCOME_SATISFIED,
    "not_satisfied": cases_pb2.EVIDENCE_OUTCOME_NOT_SATISFIED,
    "cannot_determine": cases_pb2.EVIDENCE_OUTCOME_CANNOT_DETERMINE,
}


def _request(pb: cases_pb2.SubmitRequest) -> CaseRequest:
    return CaseRequest(
        pb.case_number,
        pb.case_type,
        pb.applicant.strip().upper(),
        pb.date,
        dict(pb.params),
        purpose_name(pb.purpose),
        pb.proof_shown,
    )


def outcome_to_pb(outcome: CaseOutcome) -> cases_pb2.CaseResult:
    return cases_pb2.CaseResult(
        case_number=outcome.case_number,
        case_type=outcome.case_type.code,
        complete=outcome.complete,
        evidence=[
            cases_pb2.EvidenceResult(
                evidence=e.evidence.name,
                title=e.evidence.title,
                outcome=_OUTCOMES[e.outcome],
                reason=e.reason,
                resource=e.evidence.resource,
                disputed_fields=e.disputed,
                watermark=watermark_to_pb(e.watermark) if e.watermark else None,
            )
            for e in outcome.evidence
        ],
        restrictions=[
            cases_pb2.Restriction(
                credit_code=r.credit_code, measure=r.measure, entry_id=r.entry_id, listed_on=r.listed_on
            )
            for r in outcome.restrictions
        ],
    )


def _with_receipt(result: cases_pb2.CaseResult, receipt: Signed | None) -> cases_pb2.CaseResult:
    if receipt is not None:
        result.receipt.jws, result.receipt.salt = receipt.jws, receipt.salt
    return result


def _event(outcome: CaseOutcome, caller: str, request: CaseRequest, receipt: Signed | None) -> bytes:
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
    }
    if receipt is not None:  # stored with the case, so a reviewer can ask for it by case number
        event["receipt"] = stored(receipt)
    return orjson.dumps(event)


class CasesService(cases_pb2_grpc.CasesServicer):
    def __init__(self, deps: Deps, resolver: CaseResolver, partitions: int) -> None:
        self._deps = deps
        self._resolver = resolver
        self._partitions = partitions  # of the cases topic

    def _resolve(self, request: CaseRequest) -> CaseOutcome:
        caller = current_caller.get()
        started = time.perf_counter()
        outcome = self._resolver.resolve(caller, request)
        audit = self._deps.audit
        if audit is not None:  # every evidence check is audited under the case number
            latency = int((time.perf_counter() - started) * 1e6 / max(1, len(outcome.evidence)))
            for e in outcome.evidence:
                audit.record(
                    AuditEvent(
                        caller.department,
                        caller.subsystem,
                        "case.evidence",
                        e.evidence.resource,
                        (e.subject,),
                        [c.field for c in e.evidence.claims],
                        request.purpose,
                        request.case_number,
                        e.error_code,
                        latency,
                        e.evidence.name,
                    )
                )
        return outcome

    async def _publish(self, items: list[tuple[CaseOutcome, CaseRequest, Signed | None]]) -> None:
        caller = current_caller.get().department
        # A call's events go to one partition, as one record batch: a batch per partition per call made
        # the broker's partitions grow by three small batches a call. Nothing reads the topic by partition
        # (a case's events are found by scanning it), so the key need not choose it.
        partition = zlib.crc32(items[0][0].case_number.encode()) % self._partitions
        deliveries = await self._deps.producer.send(
            self._deps.topics.cases,
            [(o.case_number.encode(), _event(o, caller, r, s)) for o, r, s in items],
            [],
            partition_hint=partition,
        )
        if any(d.error is not None for d in deliveries):
            raise Unavailable("the case events were not acknowledged by Kafka; resubmit (it is idempotent)")

    async def Submit(self, request: cases_pb2.SubmitRequest, context: aio.ServicerContext) -> cases_pb2.SubmitResponse:
        note_access("case.submit", request.case_type, subjects=(request.applicant,), case_number=request.case_number)
        case = _request(request)
        outcome = self._resolve(case)
        receipt = receipt_for_case(self._deps, case, outcome) if request.receipt else None
        await self._publish([(outcome, case, receipt)])
        return cases_pb2.SubmitResponse(result=_with_receipt(outcome_to_pb(outcome), receipt))

    async def SubmitBatch(
        self, request: cases_pb2.SubmitBatchRequest, context: aio.ServicerContext
    ) -> cases_pb2.SubmitBatchResponse:
        if len(request.cases) > MAX_BATCH:
            raise InvalidArgument(f"cases: at most {MAX_BATCH} per call, got {len(request.cases)}", field="cases")
        note_access(
            "case.submit_batch", "", subjects=[c.applicant for c in request.cases], detail=f"{len(request.cases)} cases"
        )
        response = cases_pb2.SubmitBatchResponse()
        resolved = []
        for i, pb in enumerate(request.cases):
            try:
                case = _request(pb)
                outcome = self._resolve(case)
            except HubError as exc:
                response.results.add(
                    case_number=pb.case_number, case_type=pb.case_type, error=f"cases[{i}]: {exc.message}"
                )
                continue
            receipt = receipt_for_case(self._deps, case, outcome) if pb.receipt else None
            resolved.append((outcome, case, receipt))
            response.results.append(_with_receipt(outcome_to_pb(outcome), receipt))
        if resolved:
            await self._publish(resolved)
        return response

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
