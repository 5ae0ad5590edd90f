"""The identifier checks and the masking styles, exactly: their messages, their boundaries. Pure
functions, no broker: these are the tests the mutation run (``make mutation``) judges them by."""

from __future__ import annotations

import datetime as dt

import pytest

from hub.records.identifiers import (
    CHECKS,
    credit_code_problem,
    division_code_problem,
    quoted,
    resident_id_problem,
    with_credit_check_char,
    with_resident_check_digit,
)
from hub.records.masking import mask_record, mask_value

RID = with_resident_check_digit("51060319900101123")
CODE = with_credit_check_char("91510600MA62XXXX0")


def test_a_valid_resident_id_and_each_way_one_can_be_wrong() -> None:
    assert resident_id_problem(RID) is None
    x = next(i for i in (with_resident_check_digit(f"51060319900101{n:03d}") for n in range(100)) if i.endswith("X"))
    assert resident_id_problem(x) is None  # the check digit X is not a digit
    assert resident_id_problem(RID[:17]) == "must have 18 characters, has 17"
    assert resident_id_problem(RID + "1") == "must have 18 characters, has 19"
    assert resident_id_problem("51060319900101A23" + RID[17]) == "the first 17 characters must be digits"
    assert resident_id_problem("５１0603199001011231") == "the first 17 characters must be digits"  # full-width digits
    assert resident_id_problem(with_resident_check_digit("99060319900101123")) == (
        "address code 990603 is not in a known province"
    )
    assert resident_id_problem(with_resident_check_digit("51060319900230123")) == (
        "birth date 19900230 is not a valid date"
    )
    wrong = "0" if RID[17] != "0" else "1"
    assert resident_id_problem(RID[:17] + wrong) == f"check digit is {wrong!r}, expected {RID[17]!r}"


@pytest.mark.parametrize(
    ("born", "ok"),
    [
        ("18791231", False),
        ("18800101", True),
        (dt.date.today().strftime("%Y%m%d"), True),
        ((dt.date.today() + dt.timedelta(days=1)).strftime("%Y%m%d"), False),
    ],
)
def test_birth_dates_from_1880_to_today(born: str, ok: bool) -> None:
    problem = resident_id_problem(with_resident_check_digit(f"510603{born}123"))
    assert (problem is None) == ok, problem


def test_a_valid_credit_code_and_each_way_one_can_be_wrong() -> None:
    assert credit_code_problem(CODE) is None
    assert credit_code_problem(CODE[:17]) == "must have 18 characters, has 17"
    assert credit_code_problem("91A10600MA62XXXX0" + CODE[17]) == "characters 3-8 must be the division code digits"
    assert credit_code_problem("91５10600MA62XXXX0" + CODE[17]) == "characters 3-8 must be the division code digits"
    assert credit_code_problem("91510600MA62XIXO0" + CODE[17]) == (
        "contains characters outside GB 32100's alphabet: 'IO'"
    )
    wrong = "0" if CODE[17] != "0" else "1"
    assert credit_code_problem(CODE[:17] + wrong) == f"check character is {wrong!r}, expected {CODE[17]!r}"


def test_division_codes() -> None:
    assert division_code_problem("510603") is None
    assert division_code_problem("110000") is None and division_code_problem("820000") is None
    for bad in ("51060", "5106031", "51060a", "５10603"):
        assert division_code_problem(bad) == "must be 6 digits", bad
    assert division_code_problem("990603") == "99 is not a province code"


def test_checks_by_format_and_how_values_are_quoted() -> None:
    assert CHECKS["resident_id"] is resident_id_problem
    assert CHECKS["credit_code"] is credit_code_problem
    assert CHECKS["division_code"] is division_code_problem
    assert quoted("resident_id", RID) == repr(RID[:6] + "*" * 8 + RID[-4:])
    assert quoted("credit_code", CODE) == repr(CODE)
    assert quoted(None, "x") == "'x'"


def test_masking_styles() -> None:
    assert mask_value("id", RID) == RID[:6] + "********" + RID[-4:]
    assert mask_value("id", "12345678901") == "123456*8901"
    assert mask_value("id", "1234567890") == "**********"  # too short to keep both ends
    assert mask_value("name", "张伟") == "张*"
    assert mask_value("name", "欧阳娜娜") == "欧***"
    assert mask_value("address", "四川省德阳市旌阳区长江西路1号") == "四川省德阳市旌阳区****"
    assert mask_value("address", "四川省德阳市中江县南华镇") == "四川省德阳市中江县****"
    assert mask_value("address", "德阳市某某路1号") == "德阳市****"
    assert mask_value("address", "长江西路一号院") == "长江西路一号****"
    assert mask_value("address", "北京市朝阳区区府路1号") == "北京市朝阳区区****"  # the last 区 in the head
    assert mask_value("address", "市政路1号") == "市****"
    assert mask_value("all", "anything") == "****"
    assert mask_value("id", None) is None
    assert mask_value("name", ["张伟", "李娜"]) == ["****", "****"]
    assert mask_value("id", 5106031990) == "**********"


def test_mask_record_masks_only_the_named_fields() -> None:
    record = {"resident_id": RID, "name": "张伟", "status": "registered"}
    assert mask_record(record, {}) is record
    assert mask_record(record, {"name": "name", "resident_id": "id"}) == {
        "resident_id": RID[:6] + "********" + RID[-4:],
        "name": "张*",
        "status": "registered",
    }
    assert record["name"] == "张伟"  # a copy
