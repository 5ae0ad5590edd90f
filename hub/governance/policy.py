"""Access decisions: deny by default, sharing classes, grants, purposes, fields and masking.

For every read (verify, lookup, subscribe) the caller must state a purpose and a case number.
Then:

- the provider reads its own resource freely;
- the resource must be shared by that method (its catalogue entry lists verification, lookup,
  subscription or bulk);
- a "not shared" resource is served to no one else;
- an unconditional resource is open to every registered department;
- a conditional resource needs an active grant for the caller that covers the purpose and every
  field the call touches.

Sensitive fields are masked unless a grant lists them as unmasked. Refusals are PERMISSION_DENIED
and name what is missing. Decisions are cached until the catalogue or the grants change, or a
grant used by the decision expires.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from hub.catalogue.model import ResourceSpec
from hub.errors import InvalidArgument, PermissionDenied
from hub.governance.catalogue import CatalogueStore, resource_key
from hub.governance.identity import Caller
from hub.governance.state import PURPOSES, GovernanceState

METHODS = {"verify": "verification", "lookup": "lookup", "subscribe": "subscription", "bulk": "bulk"}
_FOREVER = 2**62


@dataclass(frozen=True, slots=True)
class Access:
    """What a call may do with a resource."""

    resource: str
    fields: frozenset[str]
    masks: dict[str, str]  # field → mask style
    basis: str  # "provider", "unconditional" or "grant:<id>,..."
    valid_until_ms: int


def purpose_name(purpose: int) -> str:
    """From the hub.v1.Purpose number (1-4)."""
    if not 1 <= purpose <= len(PURPOSES):
        raise InvalidArgument(
            f"context.purpose: required, one of {', '.join(p.upper() for p in PURPOSES)}", field="context.purpose"
        )
    return PURPOSES[purpose - 1]


class AccessPolicy:
    def __init__(self, catalogue: CatalogueStore, governance: GovernanceState) -> None:
        self._catalogue = catalogue
        self._governance = governance
        self._cache: dict[tuple, tuple[int, int, Access]] = {}

    def check_context(self, purpose: int, case_number: str) -> str:
        name = purpose_name(purpose)
        if not case_number.strip():
            raise InvalidArgument(
                "context.case_number: required: the case (办件) this call serves", field="context.case_number"
            )
        return name

    def publish(self, caller: Caller, spec: ResourceSpec) -> None:
        if caller.department != spec.provider:
            raise PermissionDenied(
                f"only the provider {spec.provider} may publish to {spec.name}; the caller is {caller.label}"
            )

    def read(self, caller: Caller, spec: ResourceSpec, method: str, purpose: str, fields: Iterable[str]) -> Access:
        wanted = frozenset(fields)
        key = (caller.department, caller.subsystem, spec.name, method, purpose, wanted)
        generation = (self._governance.generation, self._catalogue.version(resource_key(spec.name)))
        hit = self._cache.get(key)
        now = int(time.time() * 1000)
        if hit is not None and hit[0] == generation[0] and hit[1] == generation[1] and now < hit[2].valid_until_ms:
            return hit[2]
        access = self._decide(caller, spec, method, purpose, wanted, now)
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[key] = (generation[0], generation[1], access)
        return access

    def check_may_read_field(self, caller: Caller, spec: ResourceSpec, field: str) -> None:
        """Whether any method and purpose lets the caller read ``field`` (disputing it needs as much)."""
        refusal: PermissionDenied | None = None
        for method in METHODS:
            for purpose in PURPOSES:
                try:
                    self.read(caller, spec, method, purpose, (field,))
                    return
                except PermissionDenied as exc:
                    refusal = refusal or exc
        raise PermissionDenied(f"{caller.label} may dispute only what it may read: {refusal}")

    def _decide(
        self, caller: Caller, spec: ResourceSpec, method: str, purpose: str, wanted: frozenset[str], now: int
    ) -> Access:
        everything = frozenset(f.name for f in spec.fields)
        if caller.department == spec.provider:
            return Access(spec.name, everything, {}, "provider", _FOREVER)
        if METHODS[method] not in spec.sharing_methods:
            raise PermissionDenied(
                f"{spec.name} is not shared by {METHODS[method]} "
                f"(its sharing methods: {', '.join(spec.sharing_methods)})"
            )
        if spec.sharing_class == "not_shared":
            raise PermissionDenied(
                f"{spec.name} is not shared (不予共享) under {spec.legal_basis}; "
                f"only its provider {spec.provider} may read it"
            )
        grants = [
            g
            for g in self._governance.grants_for(caller.department, spec.name)
            if g.applies_to(caller.department, caller.subsystem) and g.active(now)
        ]
        usable = [g for g in grants if purpose in g.purposes]
        sensitive = {f.name: f.mask for f in spec.fields if f.sensitive}
        if spec.sharing_class == "unconditional":
            unmasked = {n for g in usable for n in g.unmasked}
            until = min((g.expires_at_ms for g in usable if g.expires_at_ms), default=_FOREVER)
            return Access(
                spec.name, everything, {f: m for f, m in sensitive.items() if f not in unmasked}, "unconditional", until
            )
        if not grants:
            raise PermissionDenied(
                f"{caller.label} holds no active grant for conditional resource {spec.name}; "
                "request one with Governance.RequestAccess"
            )
        if not usable:
            covered = sorted({p for g in grants for p in g.purposes})
            raise PermissionDenied(
                f"the grant of {caller.label} for {spec.name} ({', '.join(g.id for g in grants)}) "
                f"does not cover purpose {purpose.upper()} (it covers {', '.join(covered)})"
            )
        allowed = frozenset(n for g in usable for n in (g.fields or everything))
        missing = sorted(wanted - allowed)
        if missing:
            raise PermissionDenied(
                f"the grant of {caller.label} for {spec.name} ({', '.join(g.id for g in usable)}) "
                f"does not cover field(s) {', '.join(missing)}"
            )
        unmasked = {n for g in usable for n in g.unmasked}
        until = min((g.expires_at_ms for g in usable if g.expires_at_ms), default=_FOREVER)
        return Access(
            spec.name,
            allowed,
            {f: m for f, m in sensitive.items() if f in allowed and f not in unmasked},
            "grant:" + ",".join(g.id for g in usable),
            until,
        )
