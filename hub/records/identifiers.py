"""Resident IDs (GB 11643) and unified social credit codes (GB 32100).

Check characters are computed by python-stdnum. We do not call
``stdnum.cn.ric.validate`` as a whole: it also requires that the address code
existed on the birth date, which rejects real IDs, because an ID keeps the
address code of its first issue. 510603 (Jingyang district) was created in
1996, yet ``510603199001011231`` is a valid ID of someone born in 1990.
``calc_check_digit`` expects all 18 characters and ignores the last one.

Each check returns ``None`` for a valid identifier, or the reason it is not.

Both identifiers also encode facts that records state again in other fields: a resident ID its
holder's birth date (characters 7-14) and gender (the 17th digit: odd for men, even for women); a
credit code the registration department (1st character) and the kind of entity (2nd character).
The ``implied_*`` functions read them, so that validation can refuse a record contradicting its
own identifiers.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from stdnum.cn import ric, uscc

from hub.records.masking import mask_value

# GB/T 2260 province-level codes: the first two digits of a division code.
PROVINCES = frozenset(
    [
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "81",
        "82",
    ]
)
# GB 32100's characters, in the order of their values (0-30) in the check character's sum.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_CHARACTERS = frozenset(USCC_ALPHABET)


@lru_cache(maxsize=65536)
def _birth_date_ok(yyyymmdd: str) -> bool:
    try:
        born = dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        return False
    return dt.date(1880, 1, 1) <= born <= dt.date.today()


def quoted(format_name: str | None, value: str) -> str:
    """A value as an error message may repeat it: a resident ID names a person even with a wrong digit,
    so it is masked as for a caller without a grant (510603********1234)."""
    if format_name == "resident_id":
        return repr(mask_value("id", value))
    return repr(value)


def resident_id_problem(value: str) -> str | None:
    """Why ``value`` is not a valid 18-character resident ID, or None."""
    if len(value) != 18:
        return f"must have 18 characters, has {len(value)}"
    if not value[:17].isdigit() or not value[:17].isascii():
        return "the first 17 characters must be digits"
    if value[:2] not in PROVINCES:
        return f"address code {value[:6]} is not in a known province"
    if not _birth_date_ok(value[6:14]):
        return f"birth date {value[6:14]} is not a valid date"
    expected = ric.calc_check_digit(value)
    if value[17] != expected:
        return f"check digit is {value[17]!r}, expected {expected!r}"
    return None


def credit_code_problem(value: str) -> str | None:
    """Why ``value`` is not a valid unified social credit code, or None."""
    if len(value) != 18:
        return f"must have 18 characters, has {len(value)}"
    if not value[2:8].isdigit() or not value[2:8].isascii():
        return "characters 3-8 must be the division code digits"
    bad = sorted(set(value) - _USCC_CHARACTERS)
    if bad:
        return f"contains characters outside GB 32100's alphabet: {''.join(bad)!r}"
    expected = uscc.calc_check_digit(value[:17])
    if value[17] != expected:
        return f"check character is {value[17]!r}, expected {expected!r}"
    return None


def division_code_problem(value: str) -> str | None:
    """Why ``value`` is not a 6-digit administrative division code, or None."""
    if len(value) != 6 or not value.isdigit() or not value.isascii():
        return "must be 6 digits"
    if value[:2] not in PROVINCES:
        return f"{value[:2]} is not a province code"
    return None


def implied_birth_date(resident_id: str) -> str:
    """The birth date a valid resident ID encodes, as YYYY-MM-DD."""
    return f"{resident_id[6:10]}-{resident_id[10:12]}-{resident_id[12:14]}"


def implied_gender(resident_id: str) -> str:
    """The gender a valid resident ID encodes, as a GB/T 2261.1 code: "1" male, "2" female."""
    return "1" if int(resident_id[16]) % 2 else "2"


# Catalogue fields holding the resident ID of a person whose gender the field's name states.
GENDERED_ID_FIELDS = {"husband_id": "1", "father_id": "1", "wife_id": "2", "mother_id": "2"}
# Catalogue fields holding a parent's resident ID: a parent is born before the record's birth_date.
PARENT_ID_FIELDS = ("mother_id", "father_id")

# GB 32100: 1st character 9 = registered by market regulation (工商); 2nd character, within that
# department, 1 = enterprise, 2 = individual business, 3 = farmers' specialised cooperative.
MARKET_REGULATION = "9"
ENTITY_CATEGORIES = {
    "company": "1",
    "branch": "1",
    "partnership": "1",
    "sole_proprietorship": "1",
    "individual_business": "2",
    "farmer_coop": "3",
}


def with_resident_check_digit(first17: str) -> str:
    return first17 + ric.calc_check_digit(first17 + "0")


def with_credit_check_char(first17: str) -> str:
    return first17 + uscc.calc_check_digit(first17)


CHECKS = {
    "resident_id": resident_id_problem,
    "credit_code": credit_code_problem,
    "division_code": division_code_problem,
}
