"""The hub's typed error tree, and how each maps to a gRPC status.

Domain code raises these; the error interceptor (:mod:`hub.server.interceptors`)
turns them into the status and message the caller sees. Messages name the
record, the field and the reason, because the caller is usually an integration
engineer reading a log.
"""

from __future__ import annotations

from typing import ClassVar

import grpc

RETRIABLE: frozenset[grpc.StatusCode] = frozenset(
    {
        # The hub or Kafka behind it is down, restarting or changing leaders: it passes.
        grpc.StatusCode.UNAVAILABLE,
        # Backpressure: the hub is saturated and says when to come back (``retry-after-ms``).
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        # The call may or may not have taken effect. Safe to repeat: a Publish is keyed upserts
        # (a repeat has no further effect) and a stream resumes from its acknowledged cursor.
        grpc.StatusCode.DEADLINE_EXCEEDED,
        # A concurrency conflict: gRPC's own guidance is to retry the whole sequence.
        grpc.StatusCode.ABORTED,
    }
)
"""The one definition of the gRPC statuses a call may be retried on, unchanged, after a backoff.

Not in it, because the same call would only fail the same way: INVALID_ARGUMENT, FAILED_PRECONDITION,
OUT_OF_RANGE (the request is wrong), NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED, UNAUTHENTICATED
(the caller or the catalogue must change first), UNIMPLEMENTED. Nor INTERNAL: it is a hub bug, perhaps
on one record, so a blind retry can loop forever; the connector runtime instead retries each record
alone a bounded number of times (:mod:`hub.connect.publisher`). See :data:`RESUMABLE` for streams.
"""

RESUMABLE: frozenset[grpc.StatusCode] = RETRIABLE | {grpc.StatusCode.CANCELLED, grpc.StatusCode.INTERNAL}
"""The statuses on which a stream that resumes from its acknowledged cursor (a subscription) reopens.

Besides :data:`RETRIABLE`: a stream already open sees the hub going away as CANCELLED (a server
shutting down cancels its calls) and a connection reset as INTERNAL (RST_STREAM); reopening from the
cursor repeats nothing that was acknowledged.
"""


class HubError(Exception):
    """Base class. ``code`` is the gRPC status the caller receives; it is :attr:`retriable`
    exactly when ``code`` is in :data:`RETRIABLE`."""

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    @property
    def retriable(self) -> bool:
        return self.code in RETRIABLE


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

    def __init__(self, message: str, *, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ResourceExhausted(Unavailable):
    """Backpressure: the hub is saturated; retry after ``retry_after_s``."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class DeadlineExceeded(HubError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
