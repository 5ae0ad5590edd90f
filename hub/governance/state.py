"""Access requests, grants and the revocation list, replicated through a compacted topic.

Keys: ``request:<id>``, ``grant:<id>`` and ``crl``. Each value is the whole current state of the
object, so the topic's latest value per key is the truth on every replica.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

from hub.kafka.keyed_state import KeyedState

PURPOSES = ("legal_basis", "work_reference", "data_check", "business_collaboration")
REQUEST_STATES = ("pending", "approved", "refused", "withdrawn")


@dataclass(frozen=True)
class AccessRequest:
    id: str
    consumer: str
    subsystem: str
    resource: str
    fields: tuple[str, ...]
    purposes: tuple[str, ...]
    legal_basis: str
    filed_at_ms: int
    deadline_ms: int
    state: str = "pending"  # one of REQUEST_STATES
    decided_at_ms: int = 0
    decided_by: str = ""
    reason: str = ""
    grant_id: str = ""

    def overdue(self, now_ms: int | None = None) -> bool:
        return self.state == "pending" and (now_ms or int(time.time() * 1000)) > self.deadline_ms


@dataclass(frozen=True)
class Grant:
    id: str
    consumer: str
    subsystem: str  # empty: every subsystem of the consumer
    resource: str
    fields: tuple[str, ...]
    unmasked: tuple[str, ...]
    purposes: tuple[str, ...]
    granted_at_ms: int
    granted_by: str
    request_id: str = ""
    expires_at_ms: int = 0  # 0: no expiry
    revoked_at_ms: int = 0
    revoked_reason: str = ""

    def active(self, now_ms: int | None = None) -> bool:
        now = now_ms or int(time.time() * 1000)
        return not self.revoked_at_ms and (not self.expires_at_ms or now < self.expires_at_ms)

    def applies_to(self, department: str, subsystem: str) -> bool:
        return self.consumer == department and (not self.subsystem or self.subsystem == subsystem)


def _tuple(d: dict, key: str) -> tuple:
    return tuple(d.get(key) or ())


@dataclass
class _Views:
    requests: dict[str, AccessRequest] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    by_pair: dict[tuple[str, str], tuple[Grant, ...]] = field(default_factory=dict)


class GovernanceState(KeyedState):
    def __init__(self, on_crl=None) -> None:
        super().__init__("governance")
        self._views = _Views()
        self._on_crl = on_crl
        self.generation = 0  # bumped on every change: cached access decisions compare it

    def on_applied(self, keys: list[str]) -> None:
        views = self._views
        requests, grants = dict(views.requests), dict(views.grants)
        for key in keys:
            value = self.values.get(key)
            kind, _, ident = key.partition(":")
            if kind == "crl" and value is not None and self._on_crl is not None:
                self._on_crl(value["pem"].encode())
            elif kind == "request":
                if value is None:
                    requests.pop(ident, None)
                else:
                    requests[ident] = AccessRequest(
                        **{**value, "fields": _tuple(value, "fields"), "purposes": _tuple(value, "purposes")}
                    )
            elif kind == "grant":
                if value is None:
                    grants.pop(ident, None)
                else:
                    grants[ident] = Grant(
                        **{
                            **value,
                            "fields": _tuple(value, "fields"),
                            "unmasked": _tuple(value, "unmasked"),
                            "purposes": _tuple(value, "purposes"),
                        }
                    )
        by_pair: dict[tuple[str, str], list[Grant]] = {}
        for g in grants.values():
            by_pair.setdefault((g.consumer, g.resource), []).append(g)
        self._views = _Views(requests, grants, {k: tuple(v) for k, v in by_pair.items()})
        self.generation += 1

    def request(self, ident: str) -> AccessRequest | None:
        return self._views.requests.get(ident)

    def requests(self) -> list[AccessRequest]:
        return sorted(self._views.requests.values(), key=lambda r: r.filed_at_ms)

    def grant(self, ident: str) -> Grant | None:
        return self._views.grants.get(ident)

    def grants(self) -> list[Grant]:
        return sorted(self._views.grants.values(), key=lambda g: g.granted_at_ms)

    def grants_for(self, department: str, resource: str) -> tuple[Grant, ...]:
        return self._views.by_pair.get((department, resource), ())

    def overdue(self, now: dt.datetime | None = None) -> list[AccessRequest]:
        now_ms = int((now or dt.datetime.now(dt.UTC)).timestamp() * 1000)
        return [r for r in self.requests() if r.overdue(now_ms)]
