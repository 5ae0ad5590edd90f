"""Publish → Kafka → cache → Verify/Lookup, through real gRPC channels and the real broker."""

from __future__ import annotations

import grpc
import orjson
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from hub.records.identifiers import with_credit_check_char, with_resident_check_digit
from hub.records.partitioner import partition_for
from hub.records.validation import Accepted, RecordValidator, Rejection
from hub.v1 import catalog_pb2, common_pb2, exchange_pb2, lookup_pb2, verification_pb2
from tests.hubtest import CTX, RunningHub, resident


@pytest.fixture
def hub(layout_hub: RunningHub) -> RunningHub:
    """Every test here runs on an unsharded hub and on two shards (the gRPC behaviour is the same)."""
    return layout_hub


RID = "510603199001011231"
RID2 = with_resident_check_digit("51060319850315002")


def test_publish_then_verify_true(hub: RunningHub) -> None:
    published = hub.publish("population.resident", [resident(RID)])
    assert published.accepted == 1 and published.results[0].code == 0
    answer = hub.verify(
        "population.resident", RID, {"district_code": "510603", "status": "registered"}, after=published
    )
    assert answer.found and answer.match and list(answer.claims) == [True, True]
    assert answer.watermark.offsets[published.offsets[0].partition] > published.offsets[0].offset
    assert answer.watermark.caught_up_at_ms > 0


def test_update_is_reflected(hub: RunningHub) -> None:
    hub.publish("population.resident", [resident(RID)])
    moved = hub.publish("population.resident", [resident(RID, district_code="510681")])
    answer = hub.verify("population.resident", RID, {"district_code": "510603"}, after=moved)
    assert answer.found and not answer.match
    assert hub.verify("population.resident", RID, {"district_code": "510681"}).match


def test_delete_then_not_found(hub: RunningHub) -> None:
    hub.publish("population.resident", [resident(RID)])
    deleted = hub.publish("population.resident", [(RID, None)])
    assert deleted.accepted == 1
    answer = hub.verify("population.resident", RID, {"status": "registered"}, after=deleted)
    assert not answer.found and not answer.match
    with pytest.raises(grpc.RpcError) as err:
        hub.lookup.Get(lookup_pb2.GetRequest(resource="population.resident", key=RID, context=CTX))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_mixed_batch_keeps_the_good_records(hub: RunningHub) -> None:
    bad_check = RID[:17] + "0"
    records = [
        resident(RID),
        resident(bad_check),
        {k: v for k, v in resident(RID2).items() if k != "name"},
        resident(RID2, birth_date="1985-02-30"),
        resident(RID2, gender=1),
        resident(RID2),
    ]
    published = hub.publish("population.resident", records)
    codes = [r.code for r in published.results]
    assert codes == [0, 3, 3, 3, 3, 0]
    assert (published.accepted, published.rejected) == (2, 4)
    messages = [r.message for r in published.results]
    assert "records[1]" in messages[1] and "'resident_id'" in messages[1] and "check digit" in messages[1]
    assert "records[2]" in messages[2] and "'name'" in messages[2] and "required" in messages[2]
    assert "'birth_date'" in messages[3] and "not a valid date" in messages[3]
    assert "'gender'" in messages[4] and "expected a string" in messages[4]
    assert hub.verify("population.resident", RID, after=published).found
    assert hub.verify("population.resident", RID2).found


def test_all_bad_batch_is_invalid_argument_with_details(hub: RunningHub) -> None:
    with pytest.raises(grpc.RpcError) as err:
        hub.publish("population.resident", [resident(RID[:17] + "0"), resident(RID, foo="bar")])
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "records[0]" in err.value.details() and "check digit" in err.value.details()
    status = rpc_status.from_call(err.value)
    bad = error_details_pb2.BadRequest()
    status.details[0].Unpack(bad)
    assert [v.field for v in bad.field_violations] == ["records[0].resident_id", "records[1].foo"]


def publish_jsonl(hub: RunningHub, resource: str, records: list[dict]) -> exchange_pb2.PublishResponse:
    lines = b"\n".join(orjson.dumps(r) for r in records)
    request = exchange_pb2.PublishRequest(resource=resource, jsonl=lines)
    return hub.client(hub.provider_of(resource)).exchange.Publish(request, timeout=30)


def test_a_json_lines_batch_gets_each_record_the_outcome_it_gets_alone(hub: RunningHub) -> None:
    bad_check = RID[:17] + "0"
    parseable = [  # one table: the columns vouch for the good records, the bad ones are judged one by one
        resident(RID),
        resident(bad_check),
        {k: v for k, v in resident(RID2).items() if k != "name"},
        resident(RID2, birth_date="1985-02-30"),
        resident(RID2, gender="2"),
        resident(RID2),
    ]
    unparseable = [resident(RID), resident(RID2, gender=1), resident(RID2, foo="bar")]  # judged one by one
    for records in (parseable, unparseable):
        as_lines = publish_jsonl(hub, "population.resident", records)
        one_each = hub.publish("population.resident", records)
        outcome = [(r.code, r.message, r.field, r.key) for r in as_lines.results]
        assert outcome == [(r.code, r.message, r.field, r.key) for r in one_each.results]
        assert (as_lines.accepted, as_lines.rejected) == (one_each.accepted, one_each.rejected)
    assert [r.code for r in as_lines.results] == [0, 3, 3]
    assert "records[1]" in as_lines.results[1].message and "'gender'" in as_lines.results[1].message
    assert hub.verify("population.resident", RID2, {"status": "registered"}, after=as_lines).found


def test_an_all_bad_json_lines_batch_is_invalid_argument_naming_each_record(hub: RunningHub) -> None:
    for lines, fields in (
        (
            [resident(RID[:17] + "0"), resident(RID, birth_date="1990-01-02")],
            ["records[0].resident_id", "records[1].birth_date"],
        ),
        ([resident(RID, foo="bar")], ["records[0].foo"]),
    ):
        with pytest.raises(grpc.RpcError) as err:
            publish_jsonl(hub, "population.resident", lines)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "records[0]" in err.value.details()
        bad = error_details_pb2.BadRequest()
        rpc_status.from_call(err.value).details[0].Unpack(bad)
        assert [v.field for v in bad.field_violations] == fields
    provider = hub.client("public_security").exchange
    for request, named in (
        (exchange_pb2.PublishRequest(resource="population.resident", jsonl=b'{"resident_id": \n'), "not valid JSON"),
        (
            exchange_pb2.PublishRequest(
                resource="population.resident",
                jsonl=orjson.dumps(resident(RID)),
                records=[exchange_pb2.Record(json=orjson.dumps(resident(RID)))],
            ),
            "jsonl: set records or jsonl, not both",
        ),
    ):
        with pytest.raises(grpc.RpcError) as err:
            provider.Publish(request, timeout=30)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and named in err.value.details()


def test_unknown_resource_is_not_found(hub: RunningHub) -> None:
    for call in (
        lambda: hub.publish("population.nobody", [resident(RID)]),
        lambda: hub.verify("population.nobody", RID),
        lambda: hub.catalog.Describe(catalog_pb2.DescribeRequest(resource="population.nobody")),
    ):
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert "population.nobody" in err.value.details()


def test_malformed_key_and_claims_are_invalid_argument(hub: RunningHub) -> None:
    cases = [
        ("key", lambda: hub.verify("population.resident", RID[:17] + "0")),
        ("claims[0].field", lambda: hub.verify("population.resident", RID, {"shoe_size": "42"})),
        (
            "claims[0].op",
            lambda: hub.verify(
                "population.resident",
                RID,
                [
                    verification_pb2.Claim(
                        field="district_code", op=verification_pb2.CLAIM_OP_AT_MOST, values=["510603"]
                    )
                ],
            ),
        ),
        (
            "claims[0].values[0]",
            lambda: hub.verify(
                "population.resident",
                RID,
                [
                    verification_pb2.Claim(
                        field="birth_date", op=verification_pb2.CLAIM_OP_AT_MOST, values=["1990-13-01"]
                    )
                ],
            ),
        ),
        ("key_field", lambda: hub.verify("population.resident", RID, key_field="name")),
        (
            "claims[1].op",
            lambda: hub.verify(
                "population.resident",
                RID,
                [verification_pb2.Claim(field="status", values=["registered"]), verification_pb2.Claim(op=42)],
            ),
        ),
        (
            "claims: at most 32",
            lambda: hub.verify("population.resident", RID, [verification_pb2.Claim(field="status")] * 33),
        ),
        (
            "claims[0].values[0]",
            lambda: hub.verify(
                "social_security.insured",
                RID,
                [
                    verification_pb2.Claim(
                        field="contribution_months",
                        op=verification_pb2.CLAIM_OP_AT_LEAST,
                        values=["99999999999999999999"],
                    )
                ],
            ),
        ),
        (
            "context.restricted_context",
            lambda: hub.verify(
                "population.resident",
                RID,
                context=common_pb2.CallContext(
                    purpose=common_pb2.PURPOSE_LEGAL_BASIS, case_number="DY-TEST-0002", restricted_context="procurement"
                ),
            ),
        ),
    ]
    for field, call in cases:
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert err.value.details().startswith(field), err.value.details()


def test_verify_batch_is_columnar_and_reports_invalid_keys(hub: RunningHub) -> None:
    published = hub.publish("population.resident", [resident(RID), resident(RID2, district_code="510681")])
    missing = with_resident_check_digit("51060320000101003")
    response = hub.verification.VerifyBatch(
        verification_pb2.VerifyBatchRequest(
            resource="population.resident",
            keys=[RID, RID2, missing, "12345"],
            context=CTX,
            claims=[
                verification_pb2.ClaimColumn(
                    field="district_code", op=verification_pb2.CLAIM_OP_PREFIX, values=["5106"]
                ),
                verification_pb2.ClaimColumn(field="district_code", values=["510603", "510603", "510603", "x"]),
            ],
            consistency=common_pb2.Consistency(min_offsets=published.offsets),
        )
    )
    assert list(response.found) == [True, True, False, False]
    assert list(response.claims[0].matched) == [True, True, False, False]
    assert list(response.claims[1].matched) == [True, False, False, False]
    assert list(response.match) == [True, False, False, False]
    assert [(k.index, "18 characters" in k.message) for k in response.invalid_keys] == [(3, True)]


def test_verify_by_indexed_field_on_credit_list(hub: RunningHub) -> None:
    code = "91510600MA62A0B1XC"
    entries = [
        {
            "entry_id": "E1",
            "credit_code": code,
            "category": "serious_violation",
            "listed_on": "2017-03-01",
            "measures": ["restrict_bidding"],
        },
        {
            "entry_id": "E2",
            "credit_code": code,
            "category": "abnormal_operation",
            "listed_on": "2016-01-01",
            "removed_on": "2017-01-01",
        },
    ]
    published = hub.publish("credit.list_entry", entries)
    on_list = [
        verification_pb2.Claim(field="category", values=["serious_violation"]),
        verification_pb2.Claim(
            field="removed_on", op=verification_pb2.CLAIM_OP_AFTER, values=["2017-06-01"], or_unset=True
        ),
    ]
    answer = hub.verify("credit.list_entry", code, on_list, after=published, key_field="credit_code")
    assert answer.found and answer.match
    abnormal_now = [verification_pb2.Claim(field="category", values=["abnormal_operation"]), on_list[1]]
    answer = hub.verify("credit.list_entry", code, abnormal_now, key_field="credit_code")
    assert answer.found and not answer.match and list(answer.claims) == [True, True]


def test_lookup_returns_fields(hub: RunningHub) -> None:
    published = hub.publish("population.resident", [resident(RID)])
    got = hub.lookup.Get(
        lookup_pb2.GetRequest(
            resource="population.resident",
            key=RID,
            context=CTX,
            fields=["district_code", "birth_date"],
            consistency=common_pb2.Consistency(min_offsets=published.offsets),
        )
    )
    assert orjson.loads(got.records[0]) == {"district_code": "510603", "birth_date": "1990-01-01"}


def test_consistency_deadline(hub: RunningHub) -> None:
    partition = partition_for(RID, 6)  # the key's own partition: the one its answer depends on
    with pytest.raises(grpc.RpcError) as err:
        hub.verification.Verify(
            verification_pb2.VerifyRequest(
                resource="population.resident",
                key=RID,
                context=CTX,
                consistency=common_pb2.Consistency(
                    min_offsets=[common_pb2.PartitionOffset(partition=partition, offset=10**9)]
                ),
            ),
            timeout=0.5,
        )
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_health_serving_and_reflection_lists_services(hub: RunningHub) -> None:
    assert hub.health.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING
    assert (
        hub.health.Check(health_pb2.HealthCheckRequest(service="hub.v1.Verification")).status
        == health_pb2.HealthCheckResponse.SERVING
    )
    stub = reflection_pb2_grpc.ServerReflectionStub(hub.channel)
    responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert {
        "hub.v1.Exchange",
        "hub.v1.Verification",
        "hub.v1.Lookup",
        "hub.v1.Catalog",
        "grpc.health.v1.Health",
    } <= names


def test_catalog_describes_resources(hub: RunningHub) -> None:
    listed = hub.catalog.List(catalog_pb2.ListRequest())
    names = {r.name for r in listed.resources}
    assert {"population.resident", "market.entity", "credit.list_entry"} <= names
    resident_pb = hub.catalog.Describe(catalog_pb2.DescribeRequest(resource="population.resident")).resource
    assert resident_pb.key == "resident_id" and resident_pb.provider == "public_security"
    assert resident_pb.sharing_class == catalog_pb2.SHARING_CLASS_CONDITIONAL
    assert resident_pb.partitions == 6 and orjson.loads(resident_pb.json_schema)["required"]


def test_publish_rejects_empty_batch(hub: RunningHub) -> None:
    with pytest.raises(grpc.RpcError) as err:
        hub.exchange.Publish(exchange_pb2.PublishRequest(resource="population.resident"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "records" in err.value.details()


def test_records_contradicting_their_own_identifiers_are_refused(hub: RunningHub) -> None:
    """GB 11643 encodes birth date and gender; GB 32100 the registering department and entity category."""
    for over, named in (
        ({"birth_date": "1990-01-02"}, "'birth_date'"),
        ({"gender": "2"}, "'gender'"),
        ({"birth_date": "1990-01-02", "gender": "2"}, "'gender'"),
    ):
        with pytest.raises(grpc.RpcError) as err:
            hub.publish("population.resident", [resident(RID, **over)])
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert named in err.value.details() and "'resident_id'" in err.value.details(), err.value.details()
    assert hub.publish("population.resident", [resident(RID)]).accepted == 1

    man, woman, child = RID, RID2[:16] + "2", "2011-04-02"  # the 17th digit: odd for men, even for women
    woman = with_resident_check_digit(woman)
    code = with_credit_check_char("91510603MA6245678")
    individual = with_credit_check_char("92510603MA6245678")
    refused = [
        ("civil_affairs.marriage", {"husband_id": woman, "wife_id": man}, "husband_id"),
        ("civil_affairs.marriage", {"husband_id": man, "wife_id": man}, "wife_id"),
        ("health.birth_certificate", {"mother_id": man}, "mother_id"),
        ("health.birth_certificate", {"father_id": woman}, "father_id"),
        ("health.birth_certificate", {"birth_date": "1985-03-15"}, "mother_id"),  # born before her child
        ("market.entity", {"entity_type": "individual_business"}, "entity_type"),
        ("market.entity", {"credit_code": individual}, "entity_type"),
        ("market.entity", {"credit_code": with_credit_check_char("11510603MA6245678")}, "credit_code"),
    ]
    good = {
        "civil_affairs.marriage": {
            "record_no": "J1",
            "kind": "marriage",
            "husband_id": man,
            "wife_id": woman,
            "registered_on": "2015-10-01",
            "status": "valid",
        },
        "health.birth_certificate": {"cert_no": "O1", "birth_date": child, "mother_id": woman, "father_id": man},
        "market.entity": {
            "credit_code": code,
            "name": "德阳鑫源食品有限公司",
            "entity_type": "company",
            "district_code": "510603",
            "established_on": "2015-03-02",
            "status": "active",
        },
    }
    validators = {name: RecordValidator(hub.server.catalogue.resource(name)) for name in good}
    for name, record in good.items():
        assert isinstance(validators[name].validate(0, "", orjson.dumps(record), False), Accepted), name
    for name, over, field in refused:
        outcome = validators[name].validate(0, "", orjson.dumps({**good[name], **over}), False)
        assert isinstance(outcome, Rejection) and outcome.field == field, (name, over, outcome)
