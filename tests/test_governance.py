"""Governance: identity over mutual TLS, sharing classes × grants × purposes, masking, deadlines,
tamper-evident audit, and the citizen's question."""

from __future__ import annotations

import datetime as dt
import itertools
import time
from pathlib import Path

import grpc
import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from hub.client import open_channel
from hub.datagen.city import credit_codes, resident_ids
from hub.governance.audit import subject_digest
from hub.governance.audit_verify import read_topic, verify_entries
from hub.governance.keys import audit_public_key, subject_key
from hub.governance.overdue import OverdueReporter
from hub.governance.pki import CertificateAuthority
from hub.governance.workdays import add_working_days
from hub.kafka.clients import consumer_config
from hub.records.reference import ENTITY_TYPES
from hub.v1 import (
    audit_pb2,
    catalog_pb2,
    catalog_pb2_grpc,
    common_pb2,
    governance_pb2,
    lookup_pb2,
    verification_pb2,
)
from tests.hubtest import CTX, RunningHub, resident, running_hub

RID = resident_ids(3, 1)[0]
CODE = credit_codes(3, 1)[0]


def _entity(code: str) -> dict:
    return {
        "credit_code": code,
        "name": "德阳鑫源食品有限公司",
        "entity_type": ENTITY_TYPES[code[:2]][0],
        "district_code": code[2:8],
        "established_on": "2015-03-02",
        "status": "active",
        "legal_rep_id": RID,
        "legal_rep_name": "王伟",
    }


def _ctx(purpose: int) -> common_pb2.CallContext:
    return common_pb2.CallContext(purpose=purpose, case_number="DY-2017-TEST-1")


# -- identity over mutual TLS ------------------------------------------------------------------------


@pytest.fixture
def pki(tmp_path: Path) -> CertificateAuthority:
    ca = CertificateAuthority(tmp_path / "pki")
    ca.init()
    return ca


def _call(address: str, ca_pem: Path, cert: Path | None, key: Path | None) -> grpc.StatusCode:
    credentials = grpc.ssl_channel_credentials(
        ca_pem.read_bytes(), key.read_bytes() if key else None, cert.read_bytes() if cert else None
    )
    with grpc.secure_channel(address, credentials) as channel:
        try:
            catalog_pb2_grpc.CatalogStub(channel).List(catalog_pb2.ListRequest(), timeout=5)
            return grpc.StatusCode.OK
        except grpc.RpcError as err:
            return err.code()


def test_mtls_identity(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, pki: CertificateAuthority) -> None:
    stranger_ca = CertificateAuthority(tmp_path / "other")
    stranger_ca.init()
    good = pki.issue("education")
    revoked = pki.issue("education", "enrolment")
    expired = pki.issue("education", days=1, not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
    unregistered = pki.issue("land_tax")
    stranger = stranger_ca.issue("education")
    with running_hub(kafka_bootstrap, topic_prefix, tmp_path / "hub", tls_dir=pki.dir) as hub:
        ca = pki.ca_cert_path

        def call(c):
            return _call(hub.address, ca, Path(c.cert_path), Path(c.key_path))

        assert call(good) == grpc.StatusCode.OK
        assert call(revoked) == grpc.StatusCode.OK
        # refused in the TLS handshake: another CA, an expired certificate, no certificate
        assert call(stranger) == grpc.StatusCode.UNAVAILABLE
        assert call(expired) == grpc.StatusCode.UNAVAILABLE
        assert _call(hub.address, ca, None, None) == grpc.StatusCode.UNAVAILABLE
        # a valid certificate of a department the hub does not know
        assert call(unregistered) == grpc.StatusCode.UNAUTHENTICATED
        hub.client("hub_admin").catalog.RegisterDepartment(
            catalog_pb2.RegisterDepartmentRequest(
                department=catalog_pb2.DepartmentDescriptor(code="land_tax", name="德阳市地方税务局")
            )
        )
        assert call(unregistered) == grpc.StatusCode.OK
        # revocation takes effect without a restart
        pki.revoke(revoked.serial, "key compromised")
        deadline = time.monotonic() + 60  # a guard only: the condition ends the wait
        while call(revoked) != grpc.StatusCode.UNAUTHENTICATED:
            assert time.monotonic() < deadline, "revocation was not applied"
            time.sleep(0.2)
        assert call(good) == grpc.StatusCode.OK


def test_insecure_mode_without_header_is_unauthenticated(hub: RunningHub) -> None:
    with open_channel(hub.address) as channel, pytest.raises(grpc.RpcError) as err:
        catalog_pb2_grpc.CatalogStub(channel).List(catalog_pb2.ListRequest())
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "x-hub-department" in err.value.details()


# -- sharing class × grant state × purpose -------------------------------------------------------------

NOT_SHARED = catalog_pb2.ResourceDescriptor(
    name="health.medical_record",
    code="510600-WJ-00009",
    title="病历 Medical records",
    provider="health",
    summary="Patients' medical records.",
    key="record_no",
    sharing_class=catalog_pb2.SHARING_CLASS_NOT_SHARED,
    legal_basis="《医疗机构病历管理规定》",
    sharing_methods=["verification", "lookup"],
    published_on="2017-01-01",
    partitions=1,
    fields=[
        catalog_pb2.FieldDescriptor(name="record_no", type="string", required=True),
        catalog_pb2.FieldDescriptor(name="patient_id", type="string", format="resident_id"),
    ],
)
RESOURCES = {  # sharing class → (resource, key, provider)
    "unconditional": ("market.entity", CODE, "market_regulation"),
    "conditional": ("population.resident", RID, "public_security"),
    "not_shared": ("health.medical_record", "MR-0001", "health"),
}
GRANT_STATES = ["none", "pending", "approved", "refused", "revoked", "expired"]
PURPOSES = [common_pb2.PURPOSE_LEGAL_BASIS, common_pb2.PURPOSE_WORK_REFERENCE]


def _setup_state(hub: RunningHub, consumer: str, resource: str, provider: str, state: str) -> None:
    if state == "none":
        return
    mine = hub.client(consumer).governance
    theirs = hub.client(provider).governance
    filed = mine.RequestAccess(
        governance_pb2.RequestAccessRequest(
            resource=resource, purposes=[common_pb2.PURPOSE_LEGAL_BASIS], legal_basis="test basis"
        )
    ).request
    if state == "pending":
        return
    if state == "refused":
        theirs.DecideAccess(
            governance_pb2.DecideAccessRequest(
                request_id=filed.id, decision=governance_pb2.DECISION_REFUSE, reason="not needed for this matter"
            )
        )
        return
    decide = governance_pb2.DecideAccessRequest(request_id=filed.id, decision=governance_pb2.DECISION_APPROVE)
    margin_ms = 500
    while True:  # a grant cannot be born expired: a slow call needs a later expiry
        if state == "expired":
            decide.expires_at_ms = int(time.time() * 1000) + margin_ms
        try:
            grant = theirs.DecideAccess(decide).grant
            break
        except grpc.RpcError as err:
            assert state == "expired" and err.code() == grpc.StatusCode.INVALID_ARGUMENT, err
            margin_ms *= 2
    while state == "expired" and time.time() * 1000 <= grant.expires_at_ms:  # then it expires
        time.sleep(0.05)
    if state == "revoked":
        theirs.RevokeGrant(governance_pb2.RevokeGrantRequest(grant_id=grant.id, reason="case closed"))


def _expected(sharing: str, state: str, purpose: int) -> bool:
    if sharing == "unconditional":
        return True
    if sharing == "not_shared":
        return False
    return state == "approved" and purpose == common_pb2.PURPOSE_LEGAL_BASIS


def test_sharing_class_grant_state_purpose_matrix(hub: RunningHub) -> None:
    hub.client("health").catalog.Register(catalog_pb2.RegisterRequest(resource=NOT_SHARED))
    written = {
        "market.entity": hub.publish("market.entity", [_entity(CODE)]),
        "population.resident": hub.publish("population.resident", [resident(RID)]),
        "health.medical_record": hub.publish("health.medical_record", [{"record_no": "MR-0001", "patient_id": RID}]),
    }
    # one consumer department per (sharing, state), so grants never mix
    consumers = iter(
        [
            "education",
            "transport",
            "emergency",
            "culture_tourism",
            "finance",
            "public_resources",
            "food_drug",
            "civil_affairs",
            "housing_fund",
            "human_resources",
            "natural_resources",
            "approval_bureau",
            "credit",
            "health",
            "market_regulation",
            "public_security",
            "citizen_portal",
            "hub_admin",
        ]
    )
    outcomes = []
    for sharing, state in itertools.product(RESOURCES, GRANT_STATES):
        resource, key, provider = RESOURCES[sharing]
        if sharing != "conditional" and state != "none":
            if sharing == "not_shared":
                with pytest.raises(grpc.RpcError) as err:  # access to a not-shared resource cannot be requested
                    _setup_state(hub, "education", resource, provider, state)
                assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            continue
        consumer = next(c for c in consumers if c != provider)
        _setup_state(hub, consumer, resource, provider, state)
        for purpose in PURPOSES:
            request = verification_pb2.VerifyRequest(
                resource=resource,
                key=key,
                context=_ctx(purpose),
                consistency=common_pb2.Consistency(min_offsets=written[resource].offsets),
            )
            try:
                answer = hub.client(consumer).verification.Verify(request)
                assert answer.found
                outcomes.append(((sharing, state, purpose), True, ""))
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.PERMISSION_DENIED, err.details()
                outcomes.append(((sharing, state, purpose), False, err.details()))
    for (sharing, state, purpose), allowed, message in outcomes:
        assert allowed == _expected(sharing, state, purpose), (sharing, state, purpose, message)
        if not allowed:
            assert resource_name(sharing) in message
    # the provider always reads its own resource, even a not-shared one
    assert (
        hub.client("health")
        .verification.Verify(
            verification_pb2.VerifyRequest(resource="health.medical_record", key="MR-0001", context=CTX)
        )
        .found
    )


def resource_name(sharing: str) -> str:
    return RESOURCES[sharing][0]


def test_purpose_and_case_are_required(hub: RunningHub) -> None:
    for context, field in (
        (common_pb2.CallContext(case_number="X"), "context.purpose"),
        (common_pb2.CallContext(purpose=common_pb2.PURPOSE_DATA_CHECK), "context.case_number"),
    ):
        with pytest.raises(grpc.RpcError) as err:
            hub.verification.Verify(
                verification_pb2.VerifyRequest(resource="population.resident", key=RID, context=context)
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details().startswith(field)


def test_only_the_provider_publishes(hub: RunningHub) -> None:
    with pytest.raises(grpc.RpcError) as err:
        hub.publish("population.resident", [resident(RID)], department="education")
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "only the provider public_security" in err.value.details()


def test_refusal_needs_a_reason_and_scope_cannot_widen(hub: RunningHub) -> None:
    filed = (
        hub.client("education")
        .governance.RequestAccess(
            governance_pb2.RequestAccessRequest(
                resource="population.resident",
                fields=["district_code"],
                purposes=[common_pb2.PURPOSE_LEGAL_BASIS],
                legal_basis="《义务教育法》",
            )
        )
        .request
    )
    provider = hub.client("public_security").governance
    for decide, field in (
        (governance_pb2.DecideAccessRequest(request_id=filed.id, decision=governance_pb2.DECISION_REFUSE), "reason"),
        (
            governance_pb2.DecideAccessRequest(
                request_id=filed.id, decision=governance_pb2.DECISION_APPROVE, fields=["district_code", "name"]
            ),
            "fields",
        ),
    ):
        with pytest.raises(grpc.RpcError) as err:
            provider.DecideAccess(decide)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and err.value.details().startswith(field)
    with pytest.raises(grpc.RpcError) as err:
        hub.client("education").governance.DecideAccess(
            governance_pb2.DecideAccessRequest(request_id=filed.id, decision=governance_pb2.DECISION_APPROVE)
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


# -- masking -------------------------------------------------------------------------------------------


def test_masking_follows_the_grant(hub: RunningHub) -> None:
    hub.verify("population.resident", RID, after=hub.publish("population.resident", [resident(RID, name="王小明")]))
    provider = hub.client("public_security").governance
    for consumer, unmasked in (("education", []), ("civil_affairs", ["name", "resident_id"])):
        filed = (
            hub.client(consumer)
            .governance.RequestAccess(
                governance_pb2.RequestAccessRequest(
                    resource="population.resident",
                    fields=["resident_id", "name", "address", "district_code"],
                    purposes=[common_pb2.PURPOSE_LEGAL_BASIS],
                    legal_basis="basis",
                )
            )
            .request
        )
        provider.DecideAccess(
            governance_pb2.DecideAccessRequest(
                request_id=filed.id, decision=governance_pb2.DECISION_APPROVE, unmasked_fields=unmasked
            )
        )
    got = hub.client("education").lookup.Get(
        lookup_pb2.GetRequest(resource="population.resident", key=RID, context=CTX)
    )
    record = orjson.loads(got.records[0])
    assert record == {
        "resident_id": RID[:6] + "********" + RID[-4:],
        "name": "王**",
        "address": "四川省德阳市旌阳区****",
        "district_code": "510603",
    }
    assert sorted(got.masked_fields) == ["address", "name", "resident_id"]
    got = hub.client("civil_affairs").lookup.Get(
        lookup_pb2.GetRequest(resource="population.resident", key=RID, context=CTX)
    )
    record = orjson.loads(got.records[0])
    assert record["name"] == "王小明" and record["resident_id"] == RID and record["address"].endswith("****")
    with pytest.raises(grpc.RpcError) as err:  # fields beyond the grant
        hub.client("education").lookup.Get(
            lookup_pb2.GetRequest(resource="population.resident", key=RID, fields=["birth_date"], context=CTX)
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and "birth_date" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:  # looking up by a field reads it, with or without a field list
        hub.client("education").lookup.Get(
            lookup_pb2.GetRequest(resource="population.resident", key="H1", key_field="household_id", context=CTX)
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and "household_id" in err.value.details()
    # an unconditional resource masks its sensitive fields for everyone but the provider
    hub.verify("market.entity", CODE, after=hub.publish("market.entity", [_entity(CODE)]))
    got = hub.client("education").lookup.Get(lookup_pb2.GetRequest(resource="market.entity", key=CODE, context=CTX))
    assert orjson.loads(got.records[0])["legal_rep_name"] == "王*"


def test_claims_on_fields_outside_the_grant_are_refused(hub: RunningHub) -> None:
    """Verify and VerifyBatch answer only claims on fields the grant covers: single claims, claim
    columns with one operand for every key, and columns with one operand per key."""
    people = resident_ids(6, 3)
    hub.verify(
        "population.resident", people[0], after=hub.publish("population.resident", [resident(p) for p in people])
    )
    filed = (
        hub.client("education")
        .governance.RequestAccess(
            governance_pb2.RequestAccessRequest(
                resource="population.resident",
                fields=["name", "district_code"],
                purposes=[common_pb2.PURPOSE_LEGAL_BASIS],
                legal_basis="basis",
            )
        )
        .request
    )
    hub.client("public_security").governance.DecideAccess(
        governance_pb2.DecideAccessRequest(request_id=filed.id, decision=governance_pb2.DECISION_APPROVE)
    )
    verification = hub.client("education").verification
    born = [f"{p[6:10]}-{p[10:12]}-{p[12:14]}" for p in people]
    inside = verification_pb2.ClaimColumn(field="district_code", values=["510603"])
    calls = {
        "Verify": lambda claims: verification.Verify(
            verification_pb2.VerifyRequest(
                resource="population.resident",
                key=people[0],
                claims=[verification_pb2.Claim(field=c.field, values=c.values[:1]) for c in claims],
                context=CTX,
            )
        ),
        "VerifyBatch": lambda claims: verification.VerifyBatch(
            verification_pb2.VerifyBatchRequest(resource="population.resident", keys=people, claims=claims, context=CTX)
        ),
    }
    outside = {
        "one operand": verification_pb2.ClaimColumn(field="birth_date", values=[born[0]]),
        "per-key operands": verification_pb2.ClaimColumn(field="birth_date", values=born),
    }
    for name, call in calls.items():
        assert call([inside])  # covered by the grant: answered
        for operands, column in outside.items():
            for claims in ([column], [inside, column]):
                with pytest.raises(grpc.RpcError) as err:
                    call(claims)
                assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, (name, operands)
                assert "does not cover field(s) birth_date" in err.value.details(), (name, operands)


def test_lookup_by_key_returns_the_key_the_grant_does_not_list(hub: RunningHub) -> None:
    """The caller supplied the key: getting it back tells nothing. By another field it would."""
    written = hub.publish("population.resident", [resident(RID, household_id="H1")])
    hub.verify("population.resident", RID, after=written)
    filed = (
        hub.client("education")
        .governance.RequestAccess(
            governance_pb2.RequestAccessRequest(
                resource="population.resident",
                fields=["name", "district_code", "household_id"],
                purposes=[common_pb2.PURPOSE_LEGAL_BASIS],
                legal_basis="basis",
            )
        )
        .request
    )
    hub.client("public_security").governance.DecideAccess(
        governance_pb2.DecideAccessRequest(request_id=filed.id, decision=governance_pb2.DECISION_APPROVE)
    )
    lookup = hub.client("education").lookup
    masked_key = RID[:6] + "********" + RID[-4:]
    for fields in (["resident_id", "name", "district_code"], []):
        got = lookup.Get(lookup_pb2.GetRequest(resource="population.resident", key=RID, fields=fields, context=CTX))
        record = orjson.loads(got.records[0])
        assert record["resident_id"] == masked_key and record["district_code"] == "510603", fields
        assert "resident_id" in got.masked_fields
    by_household = lookup_pb2.GetRequest(
        resource="population.resident", key="H1", key_field="household_id", fields=["resident_id", "name"], context=CTX
    )
    with pytest.raises(grpc.RpcError) as err:
        lookup.Get(by_household)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and "resident_id" in err.value.details()
    del by_household.fields[:]
    got = lookup.Get(by_household)
    assert "resident_id" not in orjson.loads(got.records[0])
    with pytest.raises(grpc.RpcError) as err:  # other fields beyond the grant, by key
        lookup.Get(lookup_pb2.GetRequest(resource="population.resident", key=RID, fields=["birth_date"], context=CTX))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and "birth_date" in err.value.details()


# -- deadlines -----------------------------------------------------------------------------------------


def test_working_day_deadline() -> None:
    national_day = [dt.date(2017, 10, d) for d in range(1, 9)]
    start = dt.datetime(2017, 9, 28, 9, 0)
    assert add_working_days(start, 10) == dt.datetime(2017, 10, 12, 9, 0)
    assert add_working_days(start, 10, national_day) == dt.datetime(2017, 10, 19, 9, 0)


def test_overdue_requests_are_listed_and_reported(hub: RunningHub, caplog: pytest.LogCaptureFixture) -> None:
    filed = (
        hub.client("education")
        .governance.RequestAccess(
            governance_pb2.RequestAccessRequest(
                resource="population.resident", purposes=[common_pb2.PURPOSE_DATA_CHECK], legal_basis="basis"
            )
        )
        .request
    )
    deadline = dt.datetime.fromtimestamp(filed.deadline_ms / 1000)
    assert (deadline - dt.datetime.fromtimestamp(filed.filed_at_ms / 1000)).days >= 12  # 10 working days
    assert not hub.client("hub_admin").governance.ListOverdue(governance_pb2.ListOverdueRequest()).requests
    # an old request, as the topic would hold it twelve days later
    state = {
        **orjson.loads(orjson.dumps(hub.server.governance.values[f"request:{filed.id}"])),
        "deadline_ms": int(time.time() * 1000) - 1,
    }
    hub._call(hub.server.deps.write_state(hub.server.topics.governance, f"request:{filed.id}", state))
    for department in ("hub_admin", "public_security", "education"):
        overdue = hub.client(department).governance.ListOverdue(governance_pb2.ListOverdueRequest()).requests
        assert [r.id for r in overdue] == [filed.id] and overdue[0].overdue
    assert not hub.client("transport").governance.ListOverdue(governance_pb2.ListOverdueRequest()).requests
    with caplog.at_level("WARNING"):
        OverdueReporter(hub.server.governance, hub.server.catalogue).report()
    assert any(filed.id in r.getMessage() and "past its deadline" in r.getMessage() for r in caplog.records)


# -- audit ---------------------------------------------------------------------------------------------


def _audit_entries(hub: RunningHub, kafka_bootstrap: str) -> list[dict]:
    return read_topic(kafka_bootstrap, hub.server.topics.audit)


def _entries_written_by_now(consumer: Consumer, topic: str) -> list[dict]:
    """The audit topic up to the end the broker reports at this moment, through an open consumer."""
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1] for p in partitions
    }
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    entries, reached = [], {p: 0 for p in partitions}
    while any(reached[p] < ends[p] for p in partitions):
        for m in consumer.consume(1000, 1.0):
            if not m.error() and m.offset() < ends[m.partition()]:
                entries.extend(orjson.loads(m.value())["entries"])
                reached[m.partition()] = m.offset() + 1
    consumer.unassign()
    return entries


def test_an_answered_call_is_on_the_audit_topic_when_the_answer_arrives(hub: RunningHub, kafka_bootstrap: str) -> None:
    """The answer is released only once Kafka acknowledged the call's entry, so the topic's end read at
    the moment the answer arrives already holds it (before, entries were written ~20 ms later)."""
    hub.publish("population.resident", [resident(RID)])
    consumer = Consumer(consumer_config(kafka_bootstrap, "test-audit-now"))
    topic = hub.server.topics.audit
    try:
        _entries_written_by_now(consumer, topic)  # metadata and connection, before the calls
        for i in range(5):
            ctx = common_pb2.CallContext(purpose=common_pb2.PURPOSE_LEGAL_BASIS, case_number=f"DY-NOW-{i}")
            hub.client("public_security").verification.Verify(
                verification_pb2.VerifyRequest(resource="population.resident", key=RID, context=ctx)
            )
            written = _entries_written_by_now(consumer, topic)
            assert [e["outcome"] for e in written if e.get("case_number") == ctx.case_number] == ["OK"]
        with pytest.raises(grpc.RpcError) as err:  # a refusal too
            hub.verify("population.resident", RID, context=common_pb2.CallContext(case_number="DY-NOW-REFUSED"))
        written = _entries_written_by_now(consumer, topic)
        assert [e["outcome"] for e in written if e.get("case_number") == "DY-NOW-REFUSED"] == [err.value.code().name]
    finally:
        consumer.close()


def test_tampering_is_detected(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    with running_hub(kafka_bootstrap, topic_prefix, tmp_path) as hub:
        hub.publish("population.resident", [resident(r) for r in resident_ids(4, 20)])
        for r in resident_ids(4, 20):
            hub.verify("population.resident", r, {"status": "registered"})
        topic = hub.server.topics.audit
    entries = read_topic(kafka_bootstrap, topic)  # after a clean stop: the closing checkpoint is there
    key = audit_public_key(tmp_path / "dev-keys" / "audit.pub")
    report = verify_entries(entries, key)
    assert report.ok, report.summary()
    assert sum(c.checkpoints for c in report.chains.values()) >= 1 and len(entries) > 20

    edited = [dict(e) for e in entries]
    victim = next(i for i, e in enumerate(edited) if e.get("action") == "verify")
    edited[victim]["caller"] = "someone_else"
    assert {p.kind for p in verify_entries(edited, key).problems} >= {"altered"}

    forged = [dict(e) for e in entries]  # edit and recompute the entry's own hash: the next link breaks
    from hub.governance.audit import entry_hash

    forged[victim]["purpose"] = "data_check"
    forged[victim]["hash"] = entry_hash(
        forged[victim]["prev"], {k: v for k, v in forged[victim].items() if k != "hash"}
    )
    assert {p.kind for p in verify_entries(forged, key).problems} & {"broken_link", "altered"}

    removed = entries[:victim] + entries[victim + 1 :]
    assert "missing" in {p.kind for p in verify_entries(removed, key).problems}

    reordered = list(entries)
    reordered[victim], reordered[victim + 1] = reordered[victim + 1], reordered[victim]
    assert "reordered" in {p.kind for p in verify_entries(reordered, key).problems}

    other_key = (
        __import__("cryptography.hazmat.primitives.asymmetric.ed25519", fromlist=["x"])
        .Ed25519PrivateKey.generate()
        .public_key()
    )
    assert "bad_signature" in {p.kind for p in verify_entries(entries, other_key).problems}


def test_a_huge_batch_is_audited_in_parts_that_fit_a_kafka_message(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    keys = resident_ids(9, 12_000)
    with running_hub(kafka_bootstrap, topic_prefix, tmp_path) as hub:
        hub.verification.VerifyBatch(
            verification_pb2.VerifyBatchRequest(resource="population.resident", keys=keys, context=CTX), timeout=60
        )
        topic = hub.server.topics.audit
    entries = read_topic(kafka_bootstrap, topic)
    assert verify_entries(entries, audit_public_key(tmp_path / "dev-keys" / "audit.pub")).ok
    parts = [e for e in entries if e.get("action") == "verify_batch"]
    assert [e["count"] for e in parts] == [5000, 5000, 2000]
    digest = subject_digest(subject_key(tmp_path / "dev-keys"), keys[-1])
    assert digest in parts[-1]["subjects"]


def test_audit_verify_command_detects_a_removed_entry(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    from confluent_kafka import Producer

    with running_hub(kafka_bootstrap, topic_prefix, tmp_path) as hub:
        hub.publish("population.resident", [resident(RID)])
        hub.verify("population.resident", RID)
        topic = hub.server.topics.audit
    base = [
        sys.executable,
        "-m",
        "hub",
        "audit",
        "verify",
        "--bootstrap-servers",
        kafka_bootstrap,
        "--data-dir",
        str(tmp_path),
    ]
    ok = subprocess.run([*base, "--topic", topic], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("OK"), ok.stdout + ok.stderr
    entries = read_topic(kafka_bootstrap, topic)
    copy = f"{topic_prefix}tampered_audit"
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i, entry in enumerate(entries):
        if i != 2:
            producer.produce(copy, orjson.dumps({"entries": [entry]}), entry["chain"].encode())
    producer.flush(10)
    producer.close()
    bad = subprocess.run([*base, "--topic", copy], capture_output=True, text=True)
    assert bad.returncode == 1 and "TAMPERED" in bad.stdout and "missing" in bad.stdout, bad.stdout + bad.stderr


def test_citizen_query_returns_exactly_the_accesses(hub: RunningHub) -> None:
    people = resident_ids(5, 30)
    me, others = people[0], people[1:]
    hub.verify("population.resident", me, after=hub.publish("population.resident", [resident(r) for r in people]))
    admin = hub.client("public_security")
    for consumer in ("education", "civil_affairs"):
        filed = (
            hub.client(consumer)
            .governance.RequestAccess(
                governance_pb2.RequestAccessRequest(
                    resource="population.resident", purposes=[common_pb2.PURPOSE_LEGAL_BASIS], legal_basis="basis"
                )
            )
            .request
        )
        admin.governance.DecideAccess(
            governance_pb2.DecideAccessRequest(request_id=filed.id, decision=governance_pb2.DECISION_APPROVE)
        )
    expected = [("public_security", "verify", "DY-TEST-0001", "OK")]  # (caller, action, case, outcome) touching me
    for i, key in enumerate(people * 2):
        consumer = ("education", "civil_affairs")[i % 2]
        case = f"DY-2017-{i:05d}"
        ctx = common_pb2.CallContext(purpose=common_pb2.PURPOSE_LEGAL_BASIS, case_number=case)
        hub.client(consumer).verification.Verify(
            verification_pb2.VerifyRequest(resource="population.resident", key=key, context=ctx)
        )
        if key == me:
            expected.append((consumer, "verify", case, "OK"))
    hub.client("education").verification.VerifyBatch(
        verification_pb2.VerifyBatchRequest(
            resource="population.resident",
            keys=[others[3], me, others[4]],
            context=_ctx(common_pb2.PURPOSE_LEGAL_BASIS),
        )
    )
    expected.append(("education", "verify_batch", "DY-2017-TEST-1", "OK"))
    hub.client("civil_affairs").lookup.Get(
        lookup_pb2.GetRequest(resource="population.resident", key=me, context=_ctx(common_pb2.PURPOSE_LEGAL_BASIS))
    )
    expected.append(("civil_affairs", "lookup", "DY-2017-TEST-1", "OK"))
    with pytest.raises(grpc.RpcError):  # refused: not covered by any grant; still audited
        hub.client("transport").verification.Verify(
            verification_pb2.VerifyRequest(
                resource="population.resident", key=me, context=_ctx(common_pb2.PURPOSE_WORK_REFERENCE)
            )
        )
    expected.append(("transport", "verify", "DY-2017-TEST-1", "PERMISSION_DENIED"))
    hub.verify("population.resident", others[0])  # the provider's own access to someone else
    portal = hub.client("citizen_portal").audit
    deadline = time.monotonic() + 60  # the audit index follows the topic; a guard only, the condition ends the wait
    while True:
        got = portal.QuerySubject(audit_pb2.QuerySubjectRequest(subject_key=me)).entries
        seen = sorted((e.caller, e.action, e.case_number, e.outcome) for e in got)
        if seen == sorted(expected) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert seen == sorted(expected)
    assert all(e.purpose in (common_pb2.PURPOSE_LEGAL_BASIS, common_pb2.PURPOSE_WORK_REFERENCE) for e in got)
    with pytest.raises(grpc.RpcError) as err:
        hub.client("education").audit.QuerySubject(audit_pb2.QuerySubjectRequest(subject_key=me))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    usage = (
        hub.client("public_security")
        .audit.QueryResource(audit_pb2.QueryResourceRequest(resource="population.resident"))
        .usage
    )
    by_caller = {(u.caller, u.purpose): u.calls for u in usage}
    assert by_caller[("education", common_pb2.PURPOSE_LEGAL_BASIS)] == 31
    assert by_caller[("transport", common_pb2.PURPOSE_WORK_REFERENCE)] == 1
