"""A Locust user that calls the hub over gRPC, and the interceptor that reports its calls.

gRPC is patched for gevent here, before any channel exists, so many users share one Locust process
the way HTTP users do. Each user opens its own channel as its department: with a certificate from
``--pki`` (mutual TLS), or in the hub's insecure development mode by naming it in a header.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import grpc
import grpc.experimental.gevent as grpc_gevent
from locust import User
from locust.env import Environment

from hub.client import open_channel, starting_at

grpc_gevent.init_gevent()


def short_name(method: str) -> str:
    """``/hub.v1.Verification/Verify`` → ``Verification/Verify``."""
    service, _, name = method.rpartition("/")
    return f"{service.rpartition('.')[2]}/{name}"


class LocustInterceptor(grpc.UnaryUnaryClientInterceptor):
    """Fires a Locust request event per unary call: its latency, size and failure.

    A call the user expects to fail (``GrpcUser.expect``) is reported under its own name, e.g.
    ``Verification/Verify [INVALID_ARGUMENT]``, and counts as a failure only if it did not fail so.
    """

    def __init__(self, environment: Environment, user: GrpcUser) -> None:
        self._events = environment.events
        self._user = user

    def intercept_unary_unary(self, continuation, client_call_details, request):
        expected = self._user.expected_code
        name = short_name(client_call_details.method)
        if expected is not None:
            name += f" [{expected.name}]"
        started = time.perf_counter()
        call = continuation(client_call_details, request)
        exception: BaseException | None = None
        length = 0
        try:
            length = call.result().ByteSize()
            if expected is not None:
                exception = AssertionError(f"expected {expected.name}, the call succeeded")
        except grpc.RpcError as err:
            if err.code() != expected:
                exception = err
        self._events.request.fire(
            request_type="grpc",
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=length,
            exception=exception,
            context={"department": self._user.department},
        )
        return call


_TURNS: dict[type, itertools.count] = {}


class GrpcUser(User):
    """Subclasses set :attr:`department`; ``self.channel`` is theirs once started."""

    abstract = True
    department: ClassVar[str] = ""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.expected_code: grpc.StatusCode | None = None
        self.channel: grpc.Channel | None = None

    def on_start(self) -> None:
        options: Any = getattr(self.environment, "parsed_options", None)
        pki = getattr(options, "pki", None)
        # Given a target of the workers' own ports, users of a class take one worker each in turn.
        turn = next(_TURNS.setdefault(type(self), itertools.count()))
        self.channel = grpc.intercept_channel(
            open_channel(
                starting_at(self.host, turn),
                department=self.department,
                tls=_credentials(Path(pki), self.department) if pki else None,
                lb_policy="pick_first",
            ),
            LocustInterceptor(self.environment, self),
        )

    def on_stop(self) -> None:
        if self.channel is not None:
            self.channel.close()

    @contextlib.contextmanager
    def expect(self, code: grpc.StatusCode) -> Iterator[None]:
        """Calls in this block should fail with ``code`` (e.g. deliberately invalid input)."""
        self.expected_code = code
        try:
            yield
        except grpc.RpcError as err:
            if err.code() != code:
                raise
        finally:
            self.expected_code = None


def _credentials(pki: Path, department: str) -> tuple[Path, Path, Path]:
    """The department's certificate from a ``hub certs init`` directory (issued on first use)."""
    from hub.governance.pki import CertificateAuthority

    ca = CertificateAuthority(pki)
    issued = next((c for c in ca.list() if c.department == department and c.status() == "valid"), None)
    if issued is None:
        issued = ca.issue(department)
    return ca.ca_cert_path, Path(issued.cert_path), Path(issued.key_path)
