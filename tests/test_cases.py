"""Cases: every case type resolved by verification; joint restriction; batches; corrections; unsharded and
at two shards."""

from __future__ import annotations

import datetime as dt
import itertools

import grpc
import orjson
import pytest

from hub.datagen.city import credit_codes, resident_ids
from hub.governance.audit import subject_digest
from hub.governance.keys import subject_key
from hub.records.reference import ENTITY_TYPES
from hub.v1 import (
    cases_pb2,
    cases_pb2_grpc,
    common_pb2,
    corrections_pb2,
    corrections_pb2_grpc,
    governance_pb2,
    verification_pb2,
)
from tests.faults import read_topic
from tests.hubtest import CTX, RunningHub, resident

DATE = "2017-11-30"
A, C, R, D, W, M, S, S2, OTHER = resident_ids(41, 9)  # W a woman, M a man; A a mother
E_GOOD, E_BLACK, E_REMOVED, E_ABNORMAL, E_TRANSPORT, E_EXPIRED = credit_codes(41, 6)
DEPARTMENT = "approval_bureau"
SAT, NOT, CANNOT = (
    cases_pb2.EVIDENCE_OUTCOME_SATISFIED,
    cases_pb2.EVIDENCE_OUTCOME_NOT_SATISFIED,
    cases_pb2.EVIDENCE_OUTCOME_CANNOT_DETERMINE,
)


def _entity(code: str, scope=("general_trade",), status="active") -> dict:
    return {
        "credit_code": code,
        "name": f"企业{code[-4:]}",
        "entity_type": ENTITY_TYPES[code[:2]][0],
        "district_code": code[2:8],
        "established_on": "2012-01-01",
        "status": status,
        "business_scope": list(scope),
        "legal_rep_id": A,
    }


def _listing(entry: str, code: str, category: str, listed: str, removed: str | None = None, measures=()) -> dict:
    return {
        "entry_id": entry,
        "credit_code": code,
        "category": category,
        "listed_on": listed,
        "removed_on": removed,
        "measures": list(measures),
        "reason": "test",
    }


RESOURCES = [
    "population.resident",
    "market.entity",
    "credit.list_entry",
    "property.certificate",
    "housing_fund.account",
    "social_security.insured",
    "health.birth_certificate",
    "civil_affairs.marriage",
    "approval.licence",
]


def _load(hub: RunningHub) -> None:
    written = [
        hub.publish(
            "population.resident",
            [
                resident(A),
                resident(C, district_code="510603"),
                resident(R),
                resident(D, status="deceased"),
                resident(M),
                resident(W),
                resident(S),
                resident(S2),
                resident(OTHER),
            ],
        ),
        hub.publish(
            "market.entity",
            [
                _entity(E_GOOD, ["food_sales"]),
                _entity(E_BLACK),
                _entity(E_REMOVED),
                _entity(E_ABNORMAL, ["food_sales"]),
                _entity(E_TRANSPORT, ["road_freight"]),
                _entity(E_EXPIRED, ["road_freight"]),
            ],
        ),
        hub.publish(
            "credit.list_entry",
            [
                _listing(
                    "L1",
                    E_BLACK,
                    "serious_violation",
                    "2017-03-01",
                    measures=["restrict_procurement", "restrict_bidding", "restrict_honours", "restrict_loans"],
                ),
                _listing("L2", E_REMOVED, "serious_violation", "2016-03-01", "2017-06-01", ["restrict_procurement"]),
                _listing("L3", E_ABNORMAL, "abnormal_operation", "2017-05-01"),
                _listing("L4", E_GOOD, "admin_license", "2016-01-01"),
            ],
        ),
        hub.publish(
            "property.certificate",
            [
                {
                    "cert_no": "川(2016)旌阳区不动产权第0000001号",
                    "owner_id": A,
                    "district_code": "510603",
                    "usage": "residential",
                    "area_m2": 88.5,
                    "registered_on": "2016-05-03",
                    "status": "mortgaged",
                }
            ],
        ),
        hub.publish(
            "housing_fund.account",
            [
                {
                    "account_no": "DY410000000001",
                    "resident_id": A,
                    "status": "normal",
                    "opened_on": "2010-03-01",
                    "monthly_deposit": 800.0,
                }
            ],
        ),
        hub.publish(
            "social_security.insured",
            [
                {"resident_id": A, "status": "contributing", "insurance_types": ["pension", "medical"]},
                {"resident_id": R, "status": "retired"},
                {"resident_id": D, "status": "retired"},
            ],
        ),
        hub.publish(
            "health.birth_certificate",
            [{"cert_no": "O510000001", "birth_date": "2011-04-02", "mother_id": A, "child_gender": "1"}],
        ),
        hub.publish(
            "civil_affairs.marriage",
            [
                {
                    "record_no": "J510603-2015-000001",
                    "kind": "marriage",
                    "husband_id": M,
                    "wife_id": W,
                    "registered_on": "2015-10-01",
                    "status": "valid",
                }
            ],
        ),
        hub.publish(
            "approval.licence",
            [
                {
                    "licence_no": "川交运管510600000001",
                    "holder_id": E_TRANSPORT,
                    "licence_type": "road_transport",
                    "valid_from": "2015-01-01",
                    "valid_to": "2019-12-31",
                    "status": "valid",
                },
                {
                    "licence_no": "川交运管510600000002",
                    "holder_id": E_EXPIRED,
                    "licence_type": "road_transport",
                    "valid_from": "2012-11-30",
                    "valid_to": "2017-11-29",
                    "status": "valid",
                },
            ],
        ),
    ]
    for response in written:  # read our writes before asking
        resource = {r.key for r in response.results}
        assert resource and response.rejected == 0, [r.message for r in response.results if r.code]
    for resource, response in zip(RESOURCES, written, strict=True):  # on every shard that took some
        keys = [r.key for r in response.results]
        hub.client(hub.provider_of(resource)).verification.VerifyBatch(
            verification_pb2.VerifyBatchRequest(
                resource=resource,
                keys=keys,
                context=CTX,
                consistency=common_pb2.Consistency(min_offsets=response.offsets),
            ),
            timeout=30,
        )


def _grant_everything(hub: RunningHub, department: str) -> None:
    for resource in (
        "population.resident",
        "property.certificate",
        "housing_fund.account",
        "social_security.insured",
        "health.birth_certificate",
        "civil_affairs.marriage",
    ):
        filed = (
            hub.client(department)
            .governance.RequestAccess(
                governance_pb2.RequestAccessRequest(
                    resource=resource, purposes=[common_pb2.PURPOSE_LEGAL_BASIS], legal_basis="《行政许可法》"
                )
            )
            .request
        )
        provider = hub.server.catalogue.resource(resource).provider
        hub.client(provider).governance.DecideAccess(
            governance_pb2.DecideAccessRequest(request_id=filed.id, decision=governance_pb2.DECISION_APPROVE)
        )


@pytest.fixture
def hub(layout_hub: RunningHub) -> RunningHub:
    """Every test here runs on an unsharded hub and on two shards (cases' evidence spans the shards)."""
    return layout_hub


@pytest.fixture
def loaded(hub: RunningHub) -> RunningHub:
    _load(hub)
    _grant_everything(hub, DEPARTMENT)
    hub.settle(hub.server.topics.governance)  # a forwarded Verify is checked by the key's shard
    return hub


_NUMBERS = itertools.count(1)  # each submission is its own case: a number is recorded once


def _submit(
    hub: RunningHub,
    case_type: str,
    applicant: str,
    department: str = DEPARTMENT,
    proof: bool = False,
    date: str = DATE,
    **params,
) -> cases_pb2.CaseResult:
    return (
        cases_pb2_grpc.CasesStub(hub.client(department).channel)
        .Submit(
            cases_pb2.SubmitRequest(
                case_number=f"DY-2017-{case_type}-{applicant[-6:]}-{next(_NUMBERS)}",
                case_type=case_type,
                applicant=applicant,
                date=date,
                params=params,
                purpose=common_pb2.PURPOSE_LEGAL_BASIS,
                proof_shown=proof,
            )
        )
        .result
    )


def _outcomes(result: cases_pb2.CaseResult) -> dict[str, int]:
    return {e.evidence: e.outcome for e in result.evidence}


# (case type, applicant, params, expected outcomes, expected restriction measures)
CASES = [
    ("household_transfer", A, {"district": "510603"}, {"registered_resident": SAT, "home_in_district": SAT}, []),
    ("household_transfer", A, {"district": "510681"}, {"registered_resident": SAT, "home_in_district": NOT}, []),
    ("housing_fund_withdrawal", A, {}, {"account_normal": SAT, "owns_home": SAT}, []),
    ("housing_fund_withdrawal", OTHER, {}, {"account_normal": NOT, "owns_home": NOT}, []),
    (
        "business_licence_change",
        E_GOOD,
        {"legal_rep": A},
        {"entity_active": SAT, "no_serious_violation": SAT, "legal_rep_resident": SAT, "not_abnormal": SAT},
        [],
    ),
    (
        "business_licence_change",
        E_BLACK,
        {"legal_rep": A},
        {"entity_active": SAT, "no_serious_violation": NOT, "legal_rep_resident": SAT, "not_abnormal": SAT},
        [],
    ),
    (
        "food_business_permit",
        E_GOOD,
        {},
        {"entity_active": SAT, "food_in_scope": SAT, "not_abnormal": SAT, "no_serious_violation": SAT},
        [],
    ),
    (
        "food_business_permit",
        E_ABNORMAL,
        {},
        {"entity_active": SAT, "food_in_scope": SAT, "not_abnormal": NOT, "no_serious_violation": SAT},
        [],
    ),
    (
        "child_enrolment",
        A,
        {"child": C, "district": "510603"},
        {"child_registered_in_district": SAT, "birth_certificate": SAT, "family_home_in_district": SAT},
        [],
    ),
    (
        "marriage_registration",
        M,
        {"spouse": S2},
        {"applicant_resident": SAT, "applicant_not_married": NOT, "spouse_not_married": SAT},
        [],
    ),
    (
        "marriage_registration",
        S,
        {"spouse": S2},
        {"applicant_resident": SAT, "applicant_not_married": SAT, "spouse_not_married": SAT},
        [],
    ),
    ("pension_qualification", R, {}, {"retired": SAT, "alive_and_registered": SAT}, []),
    ("pension_qualification", D, {}, {"retired": SAT, "alive_and_registered": NOT}, []),
    (
        "government_procurement_bid",
        E_BLACK,
        {},
        {"entity_active": SAT, "no_serious_violation": NOT},
        ["restrict_procurement"],
    ),
    ("government_procurement_bid", E_REMOVED, {}, {"entity_active": SAT, "no_serious_violation": SAT}, []),
    ("honours_application", E_BLACK, {}, {"entity_active": SAT}, ["restrict_honours"]),
    ("honours_application", E_GOOD, {}, {"entity_active": SAT}, []),
    ("startup_loan_subsidy", A, {"business": E_BLACK}, {"insured": SAT, "business_active": SAT}, ["restrict_loans"]),
    (
        "newborn_registration",
        A,
        {"birth_certificate": "O510000001"},
        {"birth_certificate": SAT, "mother_registered": SAT},
        [],
    ),
    (
        "newborn_registration",
        OTHER,
        {"birth_certificate": "O510000001"},
        {"birth_certificate": NOT, "mother_registered": SAT},
        [],
    ),
    (
        "licence_renewal",
        E_TRANSPORT,
        {"licence_type": "road_transport"},
        {"entity_active": SAT, "licence_valid_on_date": SAT},
        [],
    ),
    (
        "licence_renewal",
        E_EXPIRED,
        {"licence_type": "road_transport"},  # expired the day before the case
        {"entity_active": SAT, "licence_valid_on_date": NOT},
        [],
    ),
]


def test_every_case_type_is_resolved(loaded: RunningHub) -> None:
    types = {t.code for t in cases_pb2_grpc.CasesStub(loaded.channel).ListTypes(cases_pb2.ListTypesRequest()).types}
    assert len(types) >= 10 and types == {c[0] for c in CASES}
    for case_type, applicant, params, expected, measures in CASES:
        result = _submit(loaded, case_type, applicant, **params)
        assert _outcomes(result) == expected, (case_type, applicant, [(e.evidence, e.reason) for e in result.evidence])
        assert [r.measure for r in result.restrictions] == measures, case_type
        assert result.complete == (all(o == SAT for o in expected.values()) and not measures)
        for e in result.evidence:
            assert e.reason and e.watermark.caught_up_at_ms > 0
    expired = _submit(loaded, "licence_renewal", E_EXPIRED, licence_type="road_transport")
    assert "valid_to at_least 2017-11-30" in next(e.reason for e in expired.evidence if e.outcome == NOT)
    # the same licence, a day earlier, was still valid
    assert _submit(loaded, "licence_renewal", E_EXPIRED, date="2017-11-29", licence_type="road_transport").complete


def test_missing_access_and_bad_requests(loaded: RunningHub) -> None:
    result = _submit(loaded, "household_transfer", A, department="education", district="510603")
    assert _outcomes(result) == {"registered_resident": CANNOT, "home_in_district": CANNOT}
    assert "no active grant" in result.evidence[0].reason
    stub = cases_pb2_grpc.CasesStub(loaded.client(DEPARTMENT).channel)
    for request, field in (
        (
            cases_pb2.SubmitRequest(
                case_number="X", case_type="dog_licence", applicant=A, date=DATE, purpose=common_pb2.PURPOSE_LEGAL_BASIS
            ),
            "case_type",
        ),
        (
            cases_pb2.SubmitRequest(
                case_number="X",
                case_type="child_enrolment",
                applicant=A,
                date=DATE,
                purpose=common_pb2.PURPOSE_LEGAL_BASIS,
            ),
            "params.child",
        ),
        (
            cases_pb2.SubmitRequest(
                case_number="X",
                case_type="household_transfer",
                applicant=A,
                date="2017-02-30",
                params={"district": "510603"},
                purpose=common_pb2.PURPOSE_LEGAL_BASIS,
            ),
            "date",
        ),
        (
            cases_pb2.SubmitRequest(
                case_number="X",
                case_type="household_transfer",
                applicant=A,
                date="20171129",  # a date to Python, but not as the lists' dates are written
                params={"district": "510603"},
                purpose=common_pb2.PURPOSE_LEGAL_BASIS,
            ),
            "date",
        ),
    ):
        with pytest.raises(grpc.RpcError) as err:
            stub.Submit(request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and err.value.details().startswith(field)


def test_joint_restriction_on_verify_and_its_removal(loaded: RunningHub) -> None:
    ctx = common_pb2.CallContext(
        purpose=common_pb2.PURPOSE_LEGAL_BASIS, case_number="DY-BID-1", restricted_context="bidding"
    )
    answer = loaded.verify("market.entity", E_BLACK, {"status": "active"}, department=DEPARTMENT, context=ctx)
    assert answer.match and [(r.credit_code, r.measure) for r in answer.restrictions] == [(E_BLACK, "restrict_bidding")]
    assert not loaded.verify("market.entity", E_GOOD, department=DEPARTMENT, context=ctx).restrictions
    yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    removed = loaded.publish(
        "credit.list_entry",
        [_listing("L1", E_BLACK, "serious_violation", "2017-03-01", yesterday, ["restrict_bidding"])],
    )
    loaded.verify("credit.list_entry", "L1", after=removed)
    assert not loaded.verify("market.entity", E_BLACK, department=DEPARTMENT, context=ctx).restrictions


def test_batch_of_a_thousand_cases_events_and_audit(loaded: RunningHub) -> None:
    cases = [
        cases_pb2.SubmitRequest(
            case_number=f"DY-BATCH-{i:04d}",
            case_type="pension_qualification",
            applicant=(R, D)[i % 2],
            date=DATE,
            purpose=common_pb2.PURPOSE_LEGAL_BASIS,
        )
        for i in range(1000)
    ]
    cases[7] = cases_pb2.SubmitRequest(
        case_number="DY-BATCH-0007",
        case_type="nonsense",
        applicant=R,
        date=DATE,
        purpose=common_pb2.PURPOSE_LEGAL_BASIS,
    )
    stub = cases_pb2_grpc.CasesStub(loaded.client(DEPARTMENT).channel)
    results = stub.SubmitBatch(cases_pb2.SubmitBatchRequest(cases=cases), timeout=120).results
    assert len(results) == 1000
    assert results[7].error.startswith("cases[7]: case_type")
    assert sum(r.complete for r in results) == 500 and results[0].complete and not results[1].complete
    # each case is an event; its evidence checks are audited under its case number
    events = read_topic(loaded.bootstrap, loaded.server.topics.cases)
    assert "DY-BATCH-0998" in events and orjson.loads(events["DY-BATCH-0998"])["complete"] is True
    # acknowledged before the answer, and the index reads the audit topic to its end before it answers
    digest = subject_digest(subject_key(loaded.settings.data_dir / "dev-keys"), D)
    entries = loaded.server.deps.audit_index.by_subject(digest, 5000)
    checks = [e for e in entries if e["action"] == "case.evidence" and e["case_number"] == "DY-BATCH-0001"]
    assert len(checks) == 2, checks


def test_catch_up_rounds_are_counted_with_the_partitions_they_name(loaded: RunningHub) -> None:
    """Operators see what the cases topic's catch-ups cost: rounds and the partitions they name, counted
    before the answer leaves. With the topic's directory a round names it and the few partitions being
    written, not all of the topic's."""
    registry, topic = loaded.server.metrics.registry, loaded.server.topics.cases

    def counts() -> tuple[float, float]:
        return tuple(  # type: ignore[return-value]
            registry.get_sample_value(name, {"topic": topic}) or 0.0
            for name in ("hub_catch_up_rounds_total", "hub_catch_up_partitions_total")
        )

    rounds, named = counts()
    stub = cases_pb2_grpc.CasesStub(loaded.client(DEPARTMENT).channel)
    for i in range(3):
        case = cases_pb2.SubmitRequest(
            case_number=f"DY-ROUNDS-{i}", case_type="pension_qualification", applicant=R, date=DATE,
            purpose=common_pb2.PURPOSE_LEGAL_BASIS,
        )  # fmt: skip
        stub.SubmitBatch(cases_pb2.SubmitBatchRequest(cases=[case]))
        rounds_now, named_now = counts()
        assert rounds_now > rounds  # this call's round at least
        # the directory, this writer's partition, and one it may be leaving: a few of the topic's
        assert 0 < named_now - named <= 3 * (rounds_now - rounds)
        rounds, named = rounds_now, named_now


def test_case_answers_wait_for_what_the_trail_must_hold(loaded: RunningHub) -> None:
    """New cases answer once their evidence checks are on the audit trail (the call's own entry may
    follow); an answer that reads a recorded result back waits for the call's entry too, which is what
    records that disclosure."""
    [applicant] = resident_ids(43, 1)  # no other test's subject
    digest = subject_digest(subject_key(loaded.settings.data_dir / "dev-keys"), applicant)
    stub = cases_pb2_grpc.CasesStub(loaded.client(DEPARTMENT).channel)
    case = cases_pb2.SubmitRequest(
        case_number="DY-AUDIT-1", case_type="pension_qualification", applicant=applicant, date=DATE,
        purpose=common_pb2.PURPOSE_LEGAL_BASIS,
    )  # fmt: skip

    def entries(action: str) -> list[dict]:  # the index reads the audit topic to its end before answering
        return [e for e in loaded.server.deps.audit_index.by_subject(digest, 1000) if e["action"] == action]

    first = stub.SubmitBatch(cases_pb2.SubmitBatchRequest(cases=[case])).results[0]
    assert [e["case_number"] for e in entries("case.evidence")] == ["DY-AUDIT-1"] * len(first.evidence)
    again = stub.SubmitBatch(cases_pb2.SubmitBatchRequest(cases=[case])).results[0]
    assert again == first
    assert len(entries("case.submit_batch")) == 2  # this call's, and the first call's before it in the chain
    assert stub.Submit(case).result == first
    assert len(entries("case.submit")) == 1
    assert len(entries("case.evidence")) == len(first.evidence)  # read back: nothing checked again


def test_a_look_at_joint_restrictions_is_on_the_trail_before_the_answer(loaded: RunningHub) -> None:
    """The restrictions a case reports are a read of its entity's credit listings: audited under the case
    number, about the entity, and acknowledged before the answer as its evidence checks are."""
    stub = cases_pb2_grpc.CasesStub(loaded.client(DEPARTMENT).channel)
    case = cases_pb2.SubmitRequest(
        case_number="DY-AUDIT-LOAN-1", case_type="startup_loan_subsidy", applicant=A, date=DATE,
        params={"business": E_BLACK}, purpose=common_pb2.PURPOSE_LEGAL_BASIS,
    )  # fmt: skip
    result = stub.SubmitBatch(cases_pb2.SubmitBatchRequest(cases=[case])).results[0]
    assert [r.measure for r in result.restrictions] == ["restrict_loans"]
    digest = subject_digest(subject_key(loaded.settings.data_dir / "dev-keys"), E_BLACK)
    looks = [
        e
        for e in loaded.server.deps.audit_index.by_subject(digest, 100_000)
        if e["action"] == "case.restrictions" and e["case_number"] == "DY-AUDIT-LOAN-1"
    ]
    assert [(e["resource"], e["outcome"]) for e in looks] == [("credit.list_entry", "OK")]


def test_correction_round_trip(loaded: RunningHub) -> None:
    consumer = corrections_pb2_grpc.CorrectionsStub(loaded.client(DEPARTMENT).channel)
    provider = corrections_pb2_grpc.CorrectionsStub(loaded.client("public_security").channel)
    watch = provider.Watch(corrections_pb2.CorrectionsWatchRequest())
    filed = consumer.Dispute(
        corrections_pb2.DisputeRequest(
            resource="population.resident",
            key=A,
            field="district_code",
            proposed_value="510681",
            evidence_ref="居住证 DY2017-0042",
        )
    ).request
    assert filed.state == corrections_pb2.CORRECTION_STATE_OPEN and filed.due_ms > filed.filed_at_ms
    routed = next(watch).request  # routed to the provider
    assert (routed.id, routed.key, routed.field) == (filed.id, A, "district_code")
    ctx = common_pb2.CallContext(purpose=common_pb2.PURPOSE_LEGAL_BASIS, case_number="DY-CORR-1")
    answer = loaded.verify("population.resident", A, {"district_code": "510603"}, department=DEPARTMENT, context=ctx)
    assert answer.match and list(answer.disputed_fields) == ["district_code"]
    without = _submit(loaded, "household_transfer", A, district="510603")
    assert _outcomes(without)["registered_resident"] == CANNOT and not without.complete
    with_proof = _submit(loaded, "household_transfer", A, proof=True, district="510603")
    assert _outcomes(with_proof)["registered_resident"] == SAT and with_proof.complete
    assert "proof" in with_proof.evidence[0].reason
    with pytest.raises(grpc.RpcError) as err:
        consumer.Resolve(corrections_pb2.ResolveRequest(id=filed.id, state=corrections_pb2.CORRECTION_STATE_CONFIRMED))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    resolved = provider.Resolve(
        corrections_pb2.ResolveRequest(
            id=filed.id, state=corrections_pb2.CORRECTION_STATE_CONFIRMED, note="户籍登记核实无误"
        )
    ).request
    assert resolved.state == corrections_pb2.CORRECTION_STATE_CONFIRMED
    assert next(watch).request.state == corrections_pb2.CORRECTION_STATE_CONFIRMED
    watch.cancel()
    assert not loaded.verify(
        "population.resident", A, {"district_code": "510603"}, department=DEPARTMENT, context=ctx
    ).disputed_fields
    assert [r.id for r in consumer.List(corrections_pb2.CorrectionsListRequest()).requests] == [filed.id]

    # only a department that may read the field disputes it, and only a well-formed key
    dispute = corrections_pb2.DisputeRequest(
        resource="population.resident", key=A, field="district_code", proposed_value="510681", evidence_ref="x"
    )
    outsider = corrections_pb2_grpc.CorrectionsStub(loaded.client("transport").channel)
    with pytest.raises(grpc.RpcError) as err:
        outsider.Dispute(dispute)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and "may dispute only" in err.value.details()
    dispute.key = "51060319900101123"
    with pytest.raises(grpc.RpcError) as err:
        consumer.Dispute(dispute)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and err.value.details().startswith("key:")
