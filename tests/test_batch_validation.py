"""The columnar validation of a JSON Lines batch gives every line the per-record validator's outcome:
the same rejection (field and reason) for a bad record, acceptance of the same record for a good one.
Pure functions, no broker: each catalogue resource's generated records, mutated field by field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.catalogue.model import ResourceSpec, load_builtin
from hub.datagen.city import City, CitySize
from hub.records.batch_validation import BatchValidator
from hub.records.identifiers import with_credit_check_char, with_resident_check_digit
from hub.records.validation import Accepted, RecordValidator, Rejection

GENERATED = {
    "population.resident": "residents",
    "market.entity": "entities",
    "credit.list_entry": "credit_entries",
    "social_security.insured": "insured",
    "property.certificate": "properties",
    "housing_fund.account": "housing_accounts",
    "health.birth_certificate": "births",
    "civil_affairs.marriage": "marriages",
    "approval.licence": "licences",
}
MAN = with_resident_check_digit("51060319900101123")
WOMAN = with_resident_check_digit("51060319900101124")
# Values each field is given in turn: wrong types, blanks, lengths, dates, identifiers near the valid ones.
VALUES: list[object] = [
    None,
    "",
    "  ",
    "\u3000",
    "\x1c",
    " a ",
    "x" * 2000,
    "x" * 2001,
    "a\x1fb",
    1,
    -(2**63),
    1.5,
    True,
    [],
    ["a", "b"],
    [""],
    ["a\x1fb"],
    [None],
    "2016-02-29",
    "2017-02-29",
    "2017-13-01",
    "0000-01-01",
    "0999-12-31",
    "2017-W01-1",
    "20170101",
    "2017-1-01",
    MAN,
    WOMAN,
    MAN.lower()[:17] + "x",
    MAN[:17] + "0" if MAN[17] != "0" else MAN[:17] + "1",
    with_resident_check_digit("99060319900101123"),
    with_resident_check_digit("51060318790101123"),
    with_resident_check_digit("51060330000101123"),
    with_resident_check_digit("51060319900230123"),
    "５１０６０３１９９００１０１１２３１",
    with_credit_check_char("91510600MA62XXXX0"),
    with_credit_check_char("92510600MA62XXXX0"),
    with_credit_check_char("11510600MA62XXXX0"),
    with_credit_check_char("91510600MA62XXXX0").lower(),
    "91510600MA62XXXX0I",
    "510603",
    "990603",
    "51060",
    "registered",
    "company",
    "individual_business",
]


@cache
def good_records(resource: str) -> list[dict]:
    generated = getattr(City(2017, CitySize(400, 80)), GENERATED[resource])()
    return [record for _, record in zip(range(12), generated, strict=False)]


def validators(resource: str) -> tuple[RecordValidator, BatchValidator]:
    exact = RecordValidator(load_builtin().resource(resource))
    return exact, BatchValidator(exact)


def assert_same(lines: list[bytes], exact: RecordValidator, batch: BatchValidator) -> list[Accepted | Rejection]:
    outcomes = batch.validate(lines)
    assert len(outcomes) == len(lines)
    for i, (line, outcome) in enumerate(zip(lines, outcomes, strict=True)):
        expected = exact.validate(i, "", line, False)
        if isinstance(expected, Rejection):
            assert outcome == expected, line
        else:
            assert isinstance(outcome, Accepted), (line, outcome)
            assert (outcome.index, outcome.key) == (expected.index, expected.key)
            assert orjson.loads(outcome.value or b"") == orjson.loads(expected.value or b"")
    return outcomes


def mutants(spec: ResourceSpec, record: dict) -> Iterator[bytes]:
    for f in spec.fields:
        for value in VALUES:
            yield orjson.dumps({**record, f.name: value})
        yield orjson.dumps({k: v for k, v in record.items() if k != f.name})
    yield orjson.dumps({**record, "unknown": 1})
    yield json.dumps(record, ensure_ascii=True).encode()  # spaced, escaped: valid, not canonical
    yield orjson.dumps(record)[:-1] + b',"' + next(iter(record)).encode() + b'":null}'  # a field twice
    yield orjson.dumps(record) + b" " + orjson.dumps(record)  # two records on one line
    yield orjson.dumps(record) + b"\r"
    yield b"[" + orjson.dumps(record) + b"]"
    yield b'{"' + spec.key.encode() + b'":NaN}'
    for f in spec.fields:
        if f.type == "decimal":  # numbers JSON has no word for, which a lenient parser takes
            rest = orjson.dumps({k: v for k, v in record.items() if k != f.name})
            for token in (b"NaN", b"Infinity", b"-Infinity", b"1e400", b"1"):
                yield rest[:-1] + b',"' + f.name.encode() + b'":' + token + b"}"


@pytest.mark.parametrize("resource", sorted(GENERATED))
def test_generated_records_are_vouched_for_by_the_columns_alone(resource: str) -> None:
    exact, batch = validators(resource)
    lines = [orjson.dumps(r) for r in good_records(resource)]
    outcomes = assert_same(lines, exact, batch)
    assert all(isinstance(o, Accepted) and o.value is line for o, line in zip(outcomes, lines, strict=True))


@pytest.mark.parametrize("resource", sorted(GENERATED))
def test_each_mutated_record_gets_the_per_record_outcome(resource: str) -> None:
    exact, batch = validators(resource)
    good = [orjson.dumps(r) for r in good_records(resource)]
    mutated = list(mutants(exact.spec, good_records(resource)[0]))
    for line in mutated:  # among good lines, so the batch as a whole parses when the line does
        assert_same([good[1], line, good[2]], exact, batch)
    assert_same(good + mutated, exact, batch)


def test_records_contradicting_their_identifiers_are_refused_from_the_columns_too() -> None:
    exact, batch = validators("civil_affairs.marriage")
    record = {
        "record_no": "J1",
        "kind": "marriage",
        "husband_id": MAN,
        "wife_id": WOMAN,
        "registered_on": "2015-10-01",
        "status": "valid",
    }
    swapped = orjson.dumps({**record, "husband_id": WOMAN, "wife_id": MAN})
    outcomes = assert_same([orjson.dumps(record), swapped], exact, batch)
    assert isinstance(outcomes[1], Rejection) and outcomes[1].field == "husband_id"
    exact, batch = validators("health.birth_certificate")
    birth = {"cert_no": "O1", "birth_date": "2011-04-02", "mother_id": WOMAN, "father_id": MAN}
    lines = [orjson.dumps(birth), orjson.dumps({**birth, "birth_date": "1985-03-15"})]
    assert [getattr(o, "field", None) for o in assert_same(lines, exact, batch)] == [None, "mother_id"]


_RESOURCES = sorted(GENERATED)


@st.composite
def batches(draw: st.DrawFn) -> tuple[str, list[bytes]]:
    """A resource and a few of its generated records, each with some fields replaced by drawn values."""
    resource = draw(st.sampled_from(_RESOURCES))
    names = [f.name for f in load_builtin().resource(resource).fields] + ["extra"]
    value = st.one_of(
        st.sampled_from(VALUES),
        st.text(max_size=20),
        st.integers(-(2**63), 2**64 - 1),  # orjson writes up to an unsigned 64-bit integer
        st.floats(allow_nan=False),
        st.lists(st.text(max_size=5), max_size=3),
    )
    lines = []
    for record in draw(st.lists(st.sampled_from(good_records(resource)), min_size=1, max_size=6)):
        changed = draw(st.dictionaries(st.sampled_from(names), value, max_size=3))
        lines.append(orjson.dumps({**record, **changed}))
    return resource, lines


@settings(max_examples=300, derandomize=True, deadline=None)
@given(batches())
def test_random_batches_get_the_per_record_outcomes(batch: tuple[str, list[bytes]]) -> None:
    resource, lines = batch
    assert_same(lines, *validators(resource))


def test_lines_of_a_blob() -> None:
    assert BatchValidator.lines(b"") == []
    assert BatchValidator.lines(b'{"a":1}\n{"a":2}\n') == [b'{"a":1}', b'{"a":2}']
    assert BatchValidator.lines(b'{"a":1}\n\n') == [b'{"a":1}', b""]
