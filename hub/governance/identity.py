"""Who is calling: a registered department (or a subsystem of one), from its client certificate.

mTLS mode: the server requires a client certificate issued by the hub's CA. Python gRPC can only
require-and-verify client certificates, so a caller with no certificate, one from another CA, or
an expired one is refused in the TLS handshake and never reaches the hub (its client reports
UNAVAILABLE and the hub's gRPC core logs the handshake failure). What does reach the hub is checked
on every call, and refused with UNAUTHENTICATED: a revoked certificate (the CRL is reloaded while the
hub runs, so revocation needs no restart), a certificate that expired during a long-lived
connection, and a department the hub does not know.

Insecure development mode: no TLS; the department comes from the ``x-hub-department`` metadata
header. For demos only; the hub says so loudly at start-up.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal, cast

from grpc import aio

from hub.errors import Unauthenticated
from hub.governance.pki import REPLICA_DEPARTMENT, REPLICA_SUBSYSTEM, peer_identity, revoked_serials
from hub.headers import DEPARTMENT_HEADER, FORWARDED_HEADER, SUBSYSTEM_HEADER

log = logging.getLogger(__name__)

HUB_ADMIN = "hub_admin"


@dataclass(frozen=True, slots=True)
class Caller:
    department: str
    subsystem: str = ""
    serial: int | None = None
    # Called for by another replica of a sharded hub (see _forwarded_caller), not by the department itself.
    forwarded: bool = False

    @property
    def label(self) -> str:
        return self.department + (f".{self.subsystem}" if self.subsystem else "")


SYSTEM = Caller("hub", "internal")
current_caller: ContextVar[Caller] = ContextVar("current_caller", default=SYSTEM)

Mode = Literal["mtls", "insecure"]


class IdentityResolver:
    """Resolves and checks the caller of each RPC."""

    def __init__(self, mode: Mode, is_registered: Callable[[str], bool], ca_pem: bytes | None = None) -> None:
        self.mode = mode
        self._is_registered = is_registered
        self._ca_pem = ca_pem
        self._revoked: frozenset[int] = frozenset()
        self._crl_pem: bytes | None = None
        self._peers: dict[bytes, tuple[str, str, int, dt.datetime]] = {}
        self._lock = threading.Lock()

    @property
    def revoked(self) -> frozenset[int]:
        return self._revoked

    def load_crl(self, pem: bytes) -> bool:
        """Replaces the revocation list if ``pem`` is a CRL signed by the CA. Returns whether it changed."""
        if self._ca_pem is None or pem == self._crl_pem:
            return False
        try:
            serials = revoked_serials(pem, self._ca_pem)
        except ValueError as exc:
            log.error("ignoring CRL: %s", exc)
            return False
        with self._lock:
            self._crl_pem, self._revoked = pem, serials
        log.info("certificate revocation list loaded: %d revoked", len(serials))
        return True

    def resolve(self, context: aio.ServicerContext) -> Caller:
        if self.mode == "insecure":
            department, subsystem = _header_identity(context)
            if not department:
                raise Unauthenticated(
                    f"no identity: this hub runs in insecure development mode and reads the "
                    f"caller's department from the {DEPARTMENT_HEADER!r} header"
                )
            forwarded = any(k == FORWARDED_HEADER for k, _ in context.invocation_metadata() or ())
            caller = Caller(department, subsystem, forwarded=forwarded)
        else:
            pems = context.auth_context().get("x509_pem_cert")
            if not pems:
                raise Unauthenticated("no client certificate")
            pem = next(iter(pems))
            parsed = self._peers.get(pem)
            if parsed is None:
                parsed = peer_identity(pem)
                if len(self._peers) > 10000:
                    self._peers.clear()
                self._peers[pem] = parsed
            department, subsystem, serial, not_after = parsed
            if serial in self._revoked:
                raise Unauthenticated(f"certificate {serial:x} of {department} has been revoked")
            if not_after < dt.datetime.now(dt.UTC):
                raise Unauthenticated(f"certificate {serial:x} of {department} expired at {not_after:%Y-%m-%d %H:%M}")
            caller = Caller(department, subsystem, serial)
            if (department, subsystem) == (REPLICA_DEPARTMENT, REPLICA_SUBSYSTEM):
                caller = _forwarded_caller(context)
        if not self._is_registered(caller.department):
            raise Unauthenticated(f"department {caller.department!r} is not registered with the hub")
        return caller


def _header_identity(context: aio.ServicerContext) -> tuple[str, str]:
    department = subsystem = ""
    for key, value in context.invocation_metadata() or ():
        # str values: only -bin headers carry bytes
        if key == DEPARTMENT_HEADER:
            department = cast(str, value)
        elif key == SUBSYSTEM_HEADER:
            subsystem = cast(str, value)
    return department, subsystem


def _forwarded_caller(context: aio.ServicerContext) -> Caller:
    """The caller a replica forwards a call for (a sharded hub): the forwarding replica checked its
    certificate and names it in the identity headers."""
    department, subsystem = _header_identity(context)
    if not department:
        raise Unauthenticated(f"a hub replica calls only on a caller's behalf, named in {DEPARTMENT_HEADER!r}")
    return Caller(department, subsystem, forwarded=True)
