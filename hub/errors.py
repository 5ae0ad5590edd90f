"""The hub's typed error tree, and how each maps to a gRPC status.

Domain code raises these; the error interceptor (:mod:`hub.server.interceptors`)
turns them into the status and message the caller sees. Messages name the
record, the field and the reason, because the caller is usually an integration
engineer reading a log.
"""

from __future__ import annotations

import grpc


class HubError(Exception):
    """Base class. ``code`` is the gRPC status the caller receives."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    retriable: bool = False

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidArgument(HubError):
    """Malformed input: a bad check digit, a missing field, a wrong type.

    ``violations`` are ``(field path, reason)`` pairs sent to the caller as
    google.rpc.BadRequest details, e.g. ``("records[3].resident_id", "...")``.
    """

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, message: str, *, field: str = "", violations: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message, field=field)
        self.violations = violations or []


class UnknownResource(HubError):
    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, name: str) -> None:
        super().__init__(f"resource {name!r} is not in the catalogue", field="resource")
        self.name = name


class NotFound(HubError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(HubError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(HubError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Unauthenticated(HubError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(HubError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unavailable(HubError):
    """A dependency (Kafka) did not answer in time. Safe to retry."""

    code = grpc.StatusCode.UNAVAILABLE
    retriable = True

    def __init__(self, message: str, *, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ResourceExhausted(Unavailable):
    """Backpressure: the hub is saturated; retry after ``retry_after_s``."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class DeadlineExceeded(HubError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    retriable = True
