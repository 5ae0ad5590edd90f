"""The access policy decided without a broker: catalogue and grants applied as the feeder would, then
each rule of deny-by-default checked exactly, with the messages a refused caller reads. These are the
tests the mutation run (``make mutation``) judges hub/governance/policy.py by."""

from __future__ import annotations

import time
from dataclasses import asdict, replace

import orjson
import pytest

from hub.cache.table import Change
from hub.catalogue.model import ResourceSpec, load_builtin
from hub.errors import InvalidArgument, PermissionDenied
from hub.governance.catalogue import CatalogueStore, entry, resource_key
from hub.governance.identity import Caller
from hub.governance.policy import AccessPolicy, purpose_name
from hub.governance.state import PURPOSES, GovernanceState, Grant

BUILTIN = load_builtin()
RESIDENT = BUILTIN.resource("population.resident")  # conditional; provider public_security
ENTITY = BUILTIN.resource("market.entity")  # unconditional; provider market_regulation
HR = Caller("human_resources")
EVERYTHING = frozenset(f.name for f in RESIDENT.fields)
SENSITIVE = {f.name: f.mask for f in RESIDENT.fields if f.sensitive}
NOW = int(time.time() * 1000)
GRANT = Grant(
    id="g1",
    consumer="human_resources",
    subsystem="",
    resource="population.resident",
    fields=("resident_id", "name", "district_code"),
    unmasked=(),
    purposes=("legal_basis",),
    granted_at_ms=NOW,
    granted_by="public_security",
)


def _policy(*grants: Grant, specs: tuple[ResourceSpec, ...] = (RESIDENT, ENTITY)) -> AccessPolicy:
    catalogue = CatalogueStore()
    catalogue.apply(
        [
            Change(resource_key(s.name), orjson.dumps(entry(s.model_dump(mode="json"), 1, "test")), 0, i)
            for i, s in enumerate(specs)
        ]
    )
    governance = GovernanceState()
    if grants:
        governance.apply([Change(f"grant:{g.id}", orjson.dumps(asdict(g)), 0, i) for i, g in enumerate(grants)])
    return AccessPolicy(catalogue, governance)


def _refusal(policy: AccessPolicy, caller: Caller, spec: ResourceSpec, method: str, purpose: str, fields) -> str:
    with pytest.raises(PermissionDenied) as refused:
        policy.read(caller, spec, method, purpose, fields)
    return refused.value.message


def test_the_provider_reads_everything_unmasked() -> None:
    access = _policy().read(Caller("public_security"), RESIDENT, "lookup", "data_check", ["address"])
    assert (access.fields, access.masks, access.basis) == (EVERYTHING, {}, "provider")


def test_a_conditional_resource_needs_a_grant_for_the_purpose_and_the_fields() -> None:
    assert _refusal(_policy(), HR, RESIDENT, "verify", "legal_basis", ["name"]) == (
        "human_resources holds no active grant for conditional resource population.resident; "
        "request one with Governance.RequestAccess"
    )
    policy = _policy(GRANT)
    assert _refusal(policy, HR, RESIDENT, "verify", "work_reference", ["name"]) == (
        "the grant of human_resources for population.resident (g1) does not cover purpose WORK_REFERENCE "
        "(it covers legal_basis)"
    )
    assert _refusal(policy, HR, RESIDENT, "verify", "legal_basis", ["name", "address", "birth_date"]) == (
        "the grant of human_resources for population.resident (g1) does not cover field(s) address, birth_date"
    )
    access = policy.read(HR, RESIDENT, "verify", "legal_basis", ["name"])
    assert access.fields == frozenset(GRANT.fields)
    assert access.masks == {"resident_id": SENSITIVE["resident_id"], "name": SENSITIVE["name"]}
    assert access.basis == "grant:g1" and access.valid_until_ms == 2**62


def test_a_grant_without_fields_covers_every_field_and_unmasks_what_it_lists() -> None:
    policy = _policy(replace(GRANT, fields=(), unmasked=("name",)))
    access = policy.read(HR, RESIDENT, "lookup", "legal_basis", ["address"])
    assert access.fields == EVERYTHING
    assert access.masks == {k: v for k, v in SENSITIVE.items() if k != "name"}


def test_only_active_grants_for_the_callers_subsystem_count() -> None:
    expired = replace(GRANT, id="old", expires_at_ms=NOW - 1)
    revoked = replace(GRANT, id="rev", revoked_at_ms=NOW - 1)
    other = replace(GRANT, id="sub", subsystem="payroll")
    for grant in (expired, revoked, other):
        assert "holds no active grant" in _refusal(_policy(grant), HR, RESIDENT, "verify", "legal_basis", ["name"])
    assert _policy(other).read(Caller("human_resources", "payroll"), RESIDENT, "verify", "legal_basis", ["name"])
    later = NOW + 3_600_000
    assert (
        _policy(replace(GRANT, expires_at_ms=later))
        .read(HR, RESIDENT, "verify", "legal_basis", ["name"])
        .valid_until_ms
        == later
    )


def test_sharing_methods_and_classes() -> None:
    assert _refusal(_policy(GRANT), HR, RESIDENT, "bulk", "legal_basis", ["name"]) == (
        f"population.resident is not shared by bulk (its sharing methods: {', '.join(RESIDENT.sharing_methods)})"
    )
    hidden = RESIDENT.model_copy(update={"sharing_class": "not_shared"})
    message = _refusal(_policy(GRANT, specs=(hidden,)), HR, hidden, "verify", "legal_basis", ["name"])
    assert message.startswith("population.resident is not shared (不予共享) under ")
    assert message.endswith("; only its provider public_security may read it")
    entity_sensitive = {f.name: f.mask for f in ENTITY.fields if f.sensitive}
    open_access = _policy().read(HR, ENTITY, "bulk", "data_check", ["name"])
    assert (open_access.fields, open_access.masks, open_access.basis) == (
        frozenset(f.name for f in ENTITY.fields),
        entity_sensitive,
        "unconditional",
    )


def test_an_unconditional_resource_unmasks_what_a_usable_grant_lists() -> None:
    sensitive = [f.name for f in ENTITY.fields if f.sensitive]
    assert sensitive, "market.entity has no sensitive field to unmask"
    grant = replace(GRANT, id="e1", resource="market.entity", fields=(), unmasked=(sensitive[0],))
    policy = _policy(grant)
    assert sensitive[0] not in policy.read(HR, ENTITY, "verify", "legal_basis", []).masks
    assert sensitive[0] in policy.read(HR, ENTITY, "verify", "data_check", []).masks  # not for this purpose


def test_context_purpose_publish_and_disputes() -> None:
    policy = _policy(GRANT)
    assert [purpose_name(n) for n in range(1, 5)] == list(PURPOSES)
    for bad in (0, 5):
        with pytest.raises(InvalidArgument, match=r"context\.purpose: required"):
            purpose_name(bad)
    assert policy.check_context(1, "DY-1") == "legal_basis"
    with pytest.raises(InvalidArgument, match=r"context\.case_number: required"):
        policy.check_context(1, "  ")
    policy.publish(Caller("public_security"), RESIDENT)
    with pytest.raises(
        PermissionDenied, match=r"only the provider public_security may publish to population\.resident"
    ):
        policy.publish(HR, RESIDENT)
    policy.check_may_read_field(HR, RESIDENT, "name")
    with pytest.raises(PermissionDenied, match="may dispute only what it may read"):
        policy.check_may_read_field(HR, RESIDENT, "address")


def test_a_decision_follows_a_change_of_grants() -> None:
    policy = _policy()
    with pytest.raises(PermissionDenied):
        policy.read(HR, RESIDENT, "verify", "legal_basis", ["name"])
    policy._governance.apply([Change("grant:g1", orjson.dumps(asdict(GRANT)), 0, 9)])
    assert policy.read(HR, RESIDENT, "verify", "legal_basis", ["name"]).basis == "grant:g1"
    assert policy.read(HR, RESIDENT, "verify", "legal_basis", ["name"]).basis == "grant:g1"  # cached
