"""Receipts: the signing keys (GetKeys), a case's receipts (GetCaseReceipts), and the receipts the
Verification and Cases servicers attach to their answers when asked."""

from __future__ import annotations

import orjson
from grpc import aio

from hub.cache.claims import Claim, Compiled
from hub.cache.table import Watermark
from hub.cache.verify import BatchOutcome, Outcome
from hub.errors import InvalidArgument, NotFound, PermissionDenied
from hub.flows.cases import CaseOutcome, CaseRequest
from hub.governance.identity import HUB_ADMIN, current_caller
from hub.governance.policy import purpose_name
from hub.governance.receipts import EvidenceStatement, ReceiptSigner, Signed
from hub.proofs.receipt_format import b64u, unb64u
from hub.server.case_records import CaseRecords
from hub.server.deps import Deps
from hub.server.interceptors import note_access
from hub.v1 import receipts_pb2, receipts_pb2_grpc, verification_pb2


def _signer(deps: Deps) -> ReceiptSigner:
    assert deps.receipts is not None, "the hub starts with a receipt signer"
    return deps.receipts


def receipt_for_verify(
    deps: Deps,
    request: verification_pb2.VerifyRequest,
    key_field: str,
    claims: list[Claim],
    outcome: Outcome,
    watermark: Watermark,
) -> receipts_pb2.Receipt:
    ctx = request.context
    signed = _signer(deps).verify(
        current_caller.get(),
        purpose_name(ctx.purpose),
        ctx.case_number,
        request.resource,
        key_field,
        request.key,
        claims,
        outcome,
        watermark,
    )
    return receipts_pb2.Receipt(jws=signed.jws, salt=signed.salt)


def receipt_for_batch(
    deps: Deps,
    request: verification_pb2.VerifyBatchRequest,
    key_field: str,
    claims: list[Claim],
    compiled: list[Compiled],
    outcome: BatchOutcome,
    watermark: Watermark,
) -> receipts_pb2.BatchReceipt:
    if not request.keys:
        raise InvalidArgument("keys: a receipt needs at least one key", field="keys")
    ctx = request.context
    signed = _signer(deps).verify_batch(
        current_caller.get(),
        purpose_name(ctx.purpose),
        ctx.case_number,
        request.resource,
        key_field,
        request.keys,
        claims,
        compiled,
        outcome,
        watermark,
    )
    return receipts_pb2.BatchReceipt(jws=signed.jws, salt=signed.salt, key_salts=signed.key_salts, tree=signed.tree)


def receipt_for_case(deps: Deps, request: CaseRequest, outcome: CaseOutcome) -> Signed:
    evidence = [
        EvidenceStatement(
            e.evidence.name,
            e.evidence.resource,
            e.evidence.key_field,
            e.evidence.subject,
            e.subject,
            e.claims,
            e.outcome,
            e.watermark,
        )
        for e in outcome.evidence
    ]
    return _signer(deps).case(
        current_caller.get(),
        request.purpose,
        outcome.case_number,
        outcome.case_type.code,
        request.date,
        outcome.complete,
        evidence,
        [r.measure for r in outcome.restrictions],
    )


def stored(signed: Signed) -> dict:
    """How a case event on the cases topic holds its receipt."""
    return {"jws": signed.jws, "salt": b64u(signed.salt)}


class ReceiptsService(receipts_pb2_grpc.ReceiptsServicer):
    def __init__(self, deps: Deps, records: CaseRecords) -> None:
        self._deps = deps
        self._records = records

    async def GetKeys(
        self, request: receipts_pb2.GetKeysRequest, context: aio.ServicerContext
    ) -> receipts_pb2.GetKeysResponse:
        return receipts_pb2.GetKeysResponse(jwks_json=orjson.dumps(_signer(self._deps).jwks()).decode())

    async def GetCaseReceipts(
        self, request: receipts_pb2.GetCaseReceiptsRequest, context: aio.ServicerContext
    ) -> receipts_pb2.GetCaseReceiptsResponse:
        number = request.case_number.strip()
        if not number:
            raise InvalidArgument("case_number: required", field="case_number")
        note_access("receipts.case", "", case_number=number)  # a reviewer's look at a case is audited too
        caller = current_caller.get()
        recorded = await self._records.find(number)
        event = (await self._records.events([recorded]))[0] if recorded is not None else {}
        if not event.get("receipt"):
            raise NotFound(f"case_number: no receipt is stored for case {number!r}", field="case_number")
        if caller.department not in (HUB_ADMIN, event.get("department")):
            raise PermissionDenied(
                f"case {number!r} was submitted by another department; only it and {HUB_ADMIN} may read its receipts"
            )
        receipt = event["receipt"]
        return receipts_pb2.GetCaseReceiptsResponse(
            receipts=[
                receipts_pb2.CaseReceipt(
                    case_number=number,
                    department=event["department"],
                    at_ms=event["at_ms"],
                    receipt=receipts_pb2.Receipt(jws=receipt["jws"], salt=unb64u(receipt["salt"])),
                )
            ]
        )
