"""Supervision: case steps reported, alerts listed and answered, the monthly report, decisions for ledgers."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from dataclasses import asdict

import orjson
import pyarrow as pa
from grpc import aio

from hub import officers
from hub.errors import FailedPrecondition, HubError, InvalidArgument, NotFound, PermissionDenied, Unavailable
from hub.governance.audit import AuditEvent
from hub.governance.identity import HUB_ADMIN, current_caller
from hub.server.deps import Deps
from hub.server.interceptors import note_access
from hub.supervision.alerts import AlertAnswer, SupervisionAlert, status
from hub.supervision.platform import SupervisionPlatform
from hub.supervision.powers import PowerItem
from hub.supervision.registry import CachedPowerList
from hub.supervision.report import month_bounds, monthly_report
from hub.supervision.steps import CaseState, StepEvent, StepReport, check_report, next_event
from hub.v1 import supervision_pb2, supervision_pb2_grpc

MAX_STEPS = 1000
_TARGET_KINDS = {
    supervision_pb2.TARGET_KIND_UNSPECIFIED: "",
    supervision_pb2.TARGET_KIND_NATURAL: "natural",
    supervision_pb2.TARGET_KIND_LEGAL: "legal",
}
_LEVELS = {"yellow": supervision_pb2.ALERT_LEVEL_YELLOW, "red": supervision_pb2.ALERT_LEVEL_RED}
_STATUSES = {
    "open": supervision_pb2.ALERT_STATUS_OPEN,
    "answered": supervision_pb2.ALERT_STATUS_ANSWERED,
    "escalated": supervision_pb2.ALERT_STATUS_ESCALATED,
}


def _report(pb: supervision_pb2.ReportStepRequest) -> StepReport:
    if pb.target_kind not in _TARGET_KINDS:
        raise InvalidArgument(f"target_kind: {pb.target_kind} is not a TargetKind", field="target_kind")
    return StepReport(
        case_number=pb.case_number.strip(),
        item_code=pb.item_code.strip(),
        step=pb.step.strip(),
        officer_certificate=pb.officer_certificate.strip(),
        at_ms=pb.at_ms,
        division=pb.division or "510600",
        outcome=pb.outcome,
        reason=pb.reason,
        major=pb.major,
        target_name=pb.target_name,
        target_id=pb.target_id,
        target_kind=_TARGET_KINDS[pb.target_kind],
        decision=pb.decision,
    )


class SupervisionService(supervision_pb2_grpc.SupervisionServicer):
    def __init__(self, deps: Deps, platform: SupervisionPlatform) -> None:
        self._deps = deps
        self._platform = platform
        self._powers = CachedPowerList(deps.cache)

    async def _caught_up(self) -> None:
        """Steps written through other workers and replicas applied here too: a case's state as of now."""
        await self._deps.caught_up(self._deps.topics.steps)

    def _oversees(self, department: str) -> bool:
        caller = current_caller.get().department
        return caller in (HUB_ADMIN, self._platform.supervising_office) or caller == department

    def _admit(self, report: StepReport, department: str) -> PowerItem:
        """The step's item, after the checks that need no case state; raises HubError."""
        check_report(report)
        item = self._powers.item(report.item_code)
        if item is None:
            raise NotFound(f"item_code: {report.item_code!r} is not on the power list", field="item_code")
        if item.department != department:
            raise PermissionDenied(f"item_code: {item.code} is an item of {item.department}, not {department}")
        if item.status != "active":
            raise FailedPrecondition(f"item_code: {item.code} is {item.status}", field="item_code")
        on = self._platform.calendar.date(report.at_ms)
        registry = self._deps.cache.version(officers.RESOURCE)
        problem = officers.acting_problem(registry, report.officer_certificate, department, on)
        if problem is not None:
            raise FailedPrecondition(f"officer_certificate: {problem}", field="officer_certificate")
        return item

    async def _write(self, events: list[StepEvent]) -> list[tuple[int, int]]:
        """Writes the events and waits until this replica's case book has them; (partition, offset) each."""
        deps = self._deps
        deliveries = await deps.producer.send(
            deps.topics.steps, [(e.case_number.encode(), orjson.dumps(e)) for e in events], []
        )
        failed = next((d.error for d in deliveries if d.error is not None), None)
        if failed is not None:
            raise Unavailable(f"the steps were not acknowledged by Kafka ({failed.str()}); report them again")
        try:
            await self._caught_up()  # reads them back at once, not at the feeder's next poll
        except Unavailable as exc:
            raise Unavailable(
                f"the steps were written (Kafka acknowledged them), but this replica could not read them back: "
                f"{exc.message}"
            ) from exc
        return [(d.partition, d.offset) for d in deliveries]

    async def ReportStep(
        self, request: supervision_pb2.ReportStepRequest, context: aio.ServicerContext
    ) -> supervision_pb2.ReportStepResponse:
        # Noted first: a refused attempt is audited with its status like any call.
        note_access(
            "supervision.step",
            request.item_code,
            subjects=(request.case_number,),
            case_number=request.case_number,
            detail=f"{request.step} by {request.officer_certificate}",
        )
        report = _report(request)
        item = self._admit(report, current_caller.get().department)
        book = self._platform.book
        async with self._deps.exclusive(f"case:{report.case_number}"):
            await self._caught_up()
            case = book.case(report.case_number)
            if case is not None and case.last_reported == (report.step, report.at_ms):
                return _response(case.seq - 1, -1, -1, case)  # a retry of the step last written
            event = next_event(item, case, report, self._platform.calendar, int(time.time() * 1000))
            [(partition, offset)] = await self._write([event])
            case = book.case(report.case_number)
        assert case is not None
        return _response(event.seq, partition, offset, case)

    async def ReportSteps(
        self, request: supervision_pb2.ReportStepsRequest, context: aio.ServicerContext
    ) -> supervision_pb2.ReportStepsResponse:
        if len(request.steps) > MAX_STEPS:
            raise InvalidArgument(f"steps: at most {MAX_STEPS} per call, got {len(request.steps)}", field="steps")
        note_access(
            "supervision.steps",
            "",
            subjects=[s.case_number for s in request.steps],
            detail=f"{len(request.steps)} steps",
        )
        caller = current_caller.get()
        book, calendar, now = self._platform.book, self._platform.calendar, int(time.time() * 1000)
        results: list[supervision_pb2.StepResult] = []
        events: list[StepEvent] = []
        async with contextlib.AsyncExitStack() as locks:
            for number in sorted({s.case_number.strip() for s in request.steps}):  # sorted: no deadlock
                await locks.enter_async_context(self._deps.exclusive(f"case:{number}"))
            await self._caught_up()
            ahead: dict[str, CaseState] = {}  # the cases as this call's earlier steps leave them
            for i, pb in enumerate(request.steps):
                try:
                    report = _report(pb)
                    item = self._admit(report, caller.department)
                    case = ahead.get(report.case_number) or book.case(report.case_number)
                    if case is not None and case.last_reported == (report.step, report.at_ms):
                        results.append(supervision_pb2.StepResult(seq=case.seq - 1, code="OK"))
                        continue
                    event = next_event(item, case, report, calendar, now)
                except HubError as exc:
                    results.append(supervision_pb2.StepResult(code=exc.code.name, error=f"steps[{i}]: {exc.message}"))
                    self._audit_refusal(pb, exc)
                    continue
                following = copy.copy(case) if case is not None else CaseState.opened(event)
                following.advance(event)
                ahead[report.case_number] = following
                events.append(event)
                results.append(supervision_pb2.StepResult(seq=event.seq, code="OK"))
            if events:
                await self._write(events)
        return supervision_pb2.ReportStepsResponse(results=results)

    def _audit_refusal(self, pb: supervision_pb2.ReportStepRequest, exc: HubError) -> None:
        """A refused step of a batch, audited as a refused ReportStep call is."""
        audit = self._deps.audit
        if audit is not None:
            caller = current_caller.get()
            audit.record(
                AuditEvent(
                    caller.department, caller.subsystem, "supervision.step", pb.item_code, (pb.case_number,), (),
                    "", pb.case_number, exc.code.name, 0, f"{pb.step} by {pb.officer_certificate}",
                )
            )  # fmt: skip

    async def ListAlerts(
        self, request: supervision_pb2.SupervisionListAlertsRequest, context: aio.ServicerContext
    ) -> supervision_pb2.SupervisionListAlertsResponse:
        if request.status not in _STATUSES.values() and request.status:
            raise InvalidArgument(f"status: {request.status} is not an AlertStatus", field="status")
        caller = current_caller.get().department
        wanted = request.department or ("" if self._oversees("") else caller)
        if wanted and not self._oversees(wanted):
            raise PermissionDenied(f"department: {caller} may list only its own alerts")
        note_access("supervision.alerts", "", detail=wanted or "all")
        now = int(time.time() * 1000)
        out = []
        for alert in self._platform.book.alerts():
            if wanted and alert.department != wanted:
                continue
            pb = self._alert_pb(alert, now)
            if request.status and pb.status != request.status:
                continue
            out.append(pb)
        return supervision_pb2.SupervisionListAlertsResponse(alerts=out)

    async def AnswerAlert(
        self, request: supervision_pb2.AnswerAlertRequest, context: aio.ServicerContext
    ) -> supervision_pb2.AnswerAlertResponse:
        note_access("supervision.answer", "", detail=request.alert_id)
        if not request.answer.strip():
            raise InvalidArgument("answer: required", field="answer")
        platform = self._platform
        alert = platform.book.engine.alerts.get(request.alert_id)
        if alert is None:
            raise NotFound(f"alert_id: no alert {request.alert_id!r}", field="alert_id")
        caller = current_caller.get()
        if alert.department != caller.department:
            raise PermissionDenied(f"alert {alert.id} is for {alert.department} to answer")
        async with self._deps.exclusive(f"answer:{alert.id}"):
            if platform.answers.answer(alert.id) is not None:
                raise FailedPrecondition(f"alert_id: {alert.id} is already answered", field="alert_id")
            answer = AlertAnswer(
                alert_id=alert.id,
                answered_by=caller.label,
                answered_at_ms=int(time.time() * 1000),
                answer=request.answer,
            )
            await self._deps.write_state(self._deps.topics.supervision, f"answer:{alert.id}", asdict(answer))
        return supervision_pb2.AnswerAlertResponse(alert=self._alert_pb(alert, answer.answered_at_ms))

    async def MonthlyReport(
        self, request: supervision_pb2.MonthlyReportRequest, context: aio.ServicerContext
    ) -> supervision_pb2.MonthlyReportResponse:
        note_access("supervision.report", "", detail=request.month)
        try:
            month_bounds(request.month)
        except ValueError as exc:
            raise InvalidArgument(str(exc), field="month") from None
        platform = self._platform
        items = self._powers.items()
        codes = pa.table({"code": [i.code for i in items], "department": [i.department for i in items]})
        started = time.perf_counter()
        report = await asyncio.to_thread(
            monthly_report, platform.book.events(), platform.alerts_table(), codes, request.month
        )
        return supervision_pb2.MonthlyReportResponse(
            rows=[supervision_pb2.ReportRow(**row) for row in report.rows.to_pylist()],
            unused_items=report.unused,
            seconds=time.perf_counter() - started,
            steps=[supervision_pb2.StepAverage(**row) for row in report.steps.to_pylist()],
        )

    async def ListDecisions(
        self, request: supervision_pb2.ListDecisionsRequest, context: aio.ServicerContext
    ) -> supervision_pb2.ListDecisionsResponse:
        department = request.department or current_caller.get().department
        if not self._oversees(department):
            raise PermissionDenied(f"department: only {department} or the supervising office may list its decisions")
        note_access("supervision.decisions", "", detail=department)
        calendar = self._platform.calendar
        return supervision_pb2.ListDecisionsResponse(
            decisions=[
                supervision_pb2.CaseDecision(
                    case_number=c.case_number,
                    item_code=c.item_code,
                    outcome=c.outcome,
                    decision=c.decision,
                    decided_on=calendar.date(c.decided_at_ms).isoformat(),
                    target_id=c.target_id,
                )
                for c in list(self._platform.book.cases.values())
                if c.department == department and c.decided_at_ms
            ]
        )

    def _alert_pb(self, alert: SupervisionAlert, now_ms: int) -> supervision_pb2.SupervisionAlert:
        answer = self._platform.answers.answer(alert.id)
        return supervision_pb2.SupervisionAlert(
            id=alert.id,
            kind=alert.kind,
            level=_LEVELS[alert.level],
            case_number=alert.case_number,
            item_code=alert.item_code,
            department=alert.department,
            division=alert.division,
            step=alert.step,
            raised_at_ms=alert.raised_at_ms,
            answer_due_ms=alert.answer_due_ms,
            detail=alert.detail,
            status=_STATUSES[status(alert, answer, now_ms)],
            answer=answer.answer if answer else "",
            answered_by=answer.answered_by if answer else "",
            answered_at_ms=answer.answered_at_ms if answer else 0,
        )


def _response(seq: int, partition: int, offset: int, case) -> supervision_pb2.ReportStepResponse:
    return supervision_pb2.ReportStepResponse(
        seq=seq,
        partition=partition,
        offset=offset,
        next_step="" if case.closed else case.next_step,
        next_due_ms=0 if case.closed else case.next_due_ms,
        case_due_ms=case.case_due_ms,
        closed=case.closed,
    )
