"""The server interceptor: caller identity, typed errors → gRPC status, and the audit entry.

For every call except health and reflection:

1. the caller is resolved from its certificate (or, in insecure development mode, a header) and
   made available to the servicer as :data:`hub.governance.identity.current_caller`;
2. the servicer notes what the call accesses with :func:`note_access`;
3. whatever the outcome, including refusals, an audit entry with the status and the latency is
   recorded when the call ends, and the answer is released only once Kafka acknowledged it (an
   answered access is always on the trail; if the entry cannot be written the caller gets
   UNAVAILABLE instead of the answer). A servicer that itself audits every access the call makes,
   one entry each, and awaits them says so with :func:`accesses_audited`: a successful call's own
   entry then follows without holding the answer back, as it records no access those do not;
4. :class:`hub.errors.HubError` becomes its status and message; anything else becomes INTERNAL
   with a log line, so a bug never shows a stack trace to a caller;
5. the call is counted in the metrics, and at debug level logged as one JSON line, also before the
   answer is released (a scrape right after an answer counts it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc import aio

from hub.errors import HubError, InvalidArgument, ResourceExhausted, Unavailable
from hub.governance.audit import AuditEvent, AuditLog
from hub.governance.identity import IdentityResolver, current_caller
from hub.records.codec import clip

log = logging.getLogger(__name__)

_UNGOVERNED = ("/grpc.health", "/grpc.reflection")


@dataclass(slots=True)
class AccessNote:
    action: str
    resource: str
    subjects: Sequence[str] = ()
    fields: Sequence[str] = ()
    purpose: str = ""
    case_number: str = ""
    detail: str = ""
    audited: bool = False  # every access already has its own acknowledged entry


_note: ContextVar[AccessNote | None] = ContextVar("access_note", default=None)


def note_access(
    action: str,
    resource: str,
    subjects: Sequence[str] = (),
    fields: Sequence[str] = (),
    purpose: str = "",
    case_number: str = "",
    detail: str = "",
) -> None:
    """Servicers call this once they know what the call touches; the entry is written at the end."""
    _note.set(AccessNote(action, resource, subjects, fields, purpose, case_number, detail))


def accesses_audited() -> None:
    """Servicers call this once Kafka acknowledged an entry of their own for every access the call
    made (each evidence check of a case, under its case number), after :func:`note_access`. The
    call's entry, a summary of those, is then recorded without waiting if the call succeeds."""
    note = _note.get()
    if note is not None:
        note.audited = True


def _clip(text: str, limit: int = 1000) -> str:
    """Messages echo what the caller sent; a status travels in headers, which gRPC caps (16 KB)."""
    return clip(text, limit)


async def _abort(context: aio.ServicerContext, exc: BaseException, method: str) -> None:
    if isinstance(exc, HubError):
        trailers: list[tuple[str, str | bytes]] = []
        message = _clip(exc.message)
        if exc.retriable and hasattr(exc, "retry_after_s"):
            trailers.append(("retry-after-ms", str(int(exc.retry_after_s * 1000))))
        if isinstance(exc, InvalidArgument) and exc.violations:
            shown = exc.violations[:20]
            bad = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=_clip(f, 200), description=_clip(d, 200))
                    for f, d in shown
                ]
            )
            detail = any_pb2.Any()
            detail.Pack(bad)
            status = status_pb2.Status(code=exc.code.value[0], message=message, details=[detail])
            trailers.append(("grpc-status-details-bin", status.SerializeToString()))
        await context.abort(exc.code, message, trailing_metadata=tuple(trailers))
    log.exception("unexpected error in %s", method)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method}: {type(exc).__name__}")


class CallInterceptor(aio.ServerInterceptor):
    """Identity, errors and audit around every governed method. Wrapped handlers are cached per method."""

    def __init__(
        self,
        identity: IdentityResolver | None = None,
        audit: AuditLog | None = None,
        audit_backlog_limit: int = 200_000,
        observe: Callable[[str, str, float], None] | None = None,
        outage: Callable[[], HubError | None] | None = None,
    ) -> None:
        self._identity = identity
        self._audit = audit
        self._limit = audit_backlog_limit
        self._observe = observe  # metrics: (method, status, seconds); must not block
        self._outage = outage  # what to refuse every call with while Kafka is out
        self._cache: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        cached = self._cache.get(method)
        if cached is not None:
            return cached
        handler = await continuation(handler_call_details)
        if handler is None or method.startswith(_UNGOVERNED):
            return handler
        if handler.unary_unary is not None:
            wrapped = grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, method), handler.request_deserializer, handler.response_serializer
            )
        elif handler.unary_stream is not None:
            wrapped = grpc.unary_stream_rpc_method_handler(
                self._stream(handler.unary_stream, method), handler.request_deserializer, handler.response_serializer
            )
        else:
            wrapped = handler
        self._cache[method] = wrapped
        return wrapped

    def _enter(self, context: aio.ServicerContext) -> None:
        refusal = self._outage() if self._outage is not None else None
        if refusal is not None:
            raise refusal
        if self._audit is not None and self._audit.backlog >= self._limit:
            raise ResourceExhausted("the audit trail is behind; retry shortly", retry_after_s=1.0)
        if self._identity is not None:
            current_caller.set(self._identity.resolve(context))

    def _event(self, method: str, outcome: str, seconds: float) -> AuditEvent | None:
        note = _note.get()
        if log.isEnabledFor(logging.DEBUG):
            caller = current_caller.get()
            log.debug(
                "%s %s %.2fms",
                method,
                outcome,
                seconds * 1000,
                extra={
                    "method": method,
                    "code": outcome,
                    "ms": round(seconds * 1000, 3),
                    "department": caller.department,
                    "resource": note.resource if note else "",
                    "case_number": note.case_number if note else "",
                },
            )
        if note is None or self._audit is None:
            return None
        caller = current_caller.get()
        return AuditEvent(
            caller.department,
            caller.subsystem,
            note.action,
            note.resource,
            note.subjects,
            note.fields,
            note.purpose,
            note.case_number,
            outcome,
            int(seconds * 1e6),
            note.detail,
        )

    async def _finish(self, method: str, started: float, outcome: str) -> Unavailable | None:
        """Everything that must happen before the answer is released: the audit entry, acknowledged
        by Kafka, then the metrics (so a scrape after the answer counts the call). Returns the error
        to answer with instead if the entry could not be written."""
        event = self._event(method, outcome, time.perf_counter() - started)
        failed = None
        if event is not None and self._audit is not None:
            note = _note.get()
            if outcome == "OK" and note is not None and note.audited:
                self._audit.record(event)
            else:
                try:
                    await self._audit.write(event)
                except Unavailable as exc:
                    failed, outcome = exc, exc.code.name
        if self._observe is not None:
            self._observe(method, outcome, time.perf_counter() - started)
        return failed

    def _abandoned(self, method: str, started: float) -> None:
        """A cancelled call: no answer leaves, so the entry is recorded without waiting for it."""
        seconds = time.perf_counter() - started
        event = self._event(method, "CANCELLED", seconds)
        if event is not None and self._audit is not None:
            self._audit.record(event)
        if self._observe is not None:
            self._observe(method, "CANCELLED", seconds)

    async def _refuse(self, context: aio.ServicerContext, exc: Exception, method: str, started: float) -> None:
        # A refusal answers nothing, so it is given even if its own entry could not be written.
        await self._finish(method, started, exc.code.name if isinstance(exc, HubError) else "INTERNAL")
        await _abort(context, exc, method)

    def _unary(self, behavior: Callable, method: str) -> Callable:
        async def handler(request, context):
            started = time.perf_counter()
            try:
                self._enter(context)
                answer = await behavior(request, context)
            except aio.AbortError:  # the servicer aborted the call itself
                await self._finish(method, started, "ABORTED")
                raise
            except Exception as exc:
                await self._refuse(context, exc, method, started)
            except BaseException:
                self._abandoned(method, started)
                raise
            failed = await self._finish(method, started, "OK")
            if failed is not None:
                await _abort(context, failed, method)
            return answer

        return handler

    def _stream(self, behavior: Callable, method: str) -> Callable:
        async def handler(request, context):
            started = time.perf_counter()
            try:
                self._enter(context)
                async for item in behavior(request, context):
                    yield item
            except aio.AbortError:
                await self._finish(method, started, "ABORTED")
                raise
            except Exception as exc:
                await self._refuse(context, exc, method, started)
            except BaseException:
                self._abandoned(method, started)
                raise
            else:  # the stream's end (its status) waits for the entry
                failed = await self._finish(method, started, "OK")
                if failed is not None:
                    await _abort(context, failed, method)

        return handler
