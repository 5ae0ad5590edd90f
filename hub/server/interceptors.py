"""Server interceptors: typed domain errors → gRPC status codes.

Servicers raise :class:`hub.errors.HubError`; this interceptor aborts the RPC
with the error's status and message. Unexpected exceptions become INTERNAL
with a log line, so a bug never shows a stack trace to a caller.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc import aio

from hub.errors import HubError, InvalidArgument

log = logging.getLogger(__name__)


async def _abort(context: aio.ServicerContext, exc: BaseException, method: str) -> None:
    if isinstance(exc, HubError):
        trailers = []
        if exc.retriable and hasattr(exc, "retry_after_s"):
            trailers.append(("retry-after-ms", str(int(exc.retry_after_s * 1000))))
        if isinstance(exc, InvalidArgument) and exc.violations:
            bad = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in exc.violations
                ]
            )
            detail = any_pb2.Any()
            detail.Pack(bad)
            status = status_pb2.Status(code=exc.code.value[0], message=exc.message, details=[detail])
            trailers.append(("grpc-status-details-bin", status.SerializeToString()))
        await context.abort(exc.code, exc.message, trailing_metadata=tuple(trailers))
    log.exception("unexpected error in %s", method)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method}: {type(exc).__name__}")


def _wrap_unary(behavior: Callable[..., Awaitable], method: str) -> Callable[..., Awaitable]:
    async def handler(request, context):
        try:
            return await behavior(request, context)
        except (HubError, Exception) as exc:
            if isinstance(exc, aio.AbortError):
                raise
            await _abort(context, exc, method)

    return handler


def _wrap_stream(behavior, method: str):
    async def handler(request, context):
        try:
            async for item in behavior(request, context):
                yield item
        except (HubError, Exception) as exc:
            if isinstance(exc, aio.AbortError):
                raise
            await _abort(context, exc, method)

    return handler


class ErrorInterceptor(aio.ServerInterceptor):
    """Maps exceptions to statuses. Wrapped handlers are cached per method."""

    def __init__(self) -> None:
        self._cache: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        cached = self._cache.get(method)
        if cached is not None:
            return cached
        handler = await continuation(handler_call_details)
        if handler is None or method.startswith(("/grpc.health", "/grpc.reflection")):
            return handler
        if handler.unary_unary is not None:
            wrapped = grpc.unary_unary_rpc_method_handler(
                _wrap_unary(handler.unary_unary, method), handler.request_deserializer, handler.response_serializer
            )
        elif handler.unary_stream is not None:
            wrapped = grpc.unary_stream_rpc_method_handler(
                _wrap_stream(handler.unary_stream, method), handler.request_deserializer, handler.response_serializer
            )
        else:
            wrapped = handler
        self._cache[method] = wrapped
        return wrapped
