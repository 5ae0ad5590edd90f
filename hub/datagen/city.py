"""A deterministic synthetic city: residents, market entities and credit records.

Everything derives from one seed. Keys come from their own random streams
(:func:`resident_ids`, :func:`credit_codes`), so a load test can regenerate
exactly the keys that were loaded, in a second, without the other fields.
Check characters are computed by python-stdnum.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from hub.datagen import reference as ref
from hub.records.identifiers import with_credit_check_char, with_resident_check_digit

REFERENCE_DAY = dt.date(2017, 11, 30)  # the reports this city is built on end in November 2017
_USCC_ALPHABET = np.array(list("0123456789ABCDEFGHJKLMNPQRTUWXY"))
_ORG_WEIGHTS = np.array([3, 7, 9, 10, 5, 8, 4, 2])
_ORG_VALUES = np.array([int(c, 36) for c in _USCC_ALPHABET])  # GB 11714 values: 0-9, A=10 ... Z=35


@dataclass(frozen=True)
class CitySize:
    residents: int
    entities: int

    @property
    def credit_records(self) -> int:
        return round(self.entities * ref.CITY_CREDIT_RECORDS / ref.CITY_ENTITIES)


DEFAULT_SIZE = CitySize(100_000, 20_000)
CITY_SIZE = CitySize(1_000_000, 340_000)


def _unique_in_order(values: np.ndarray, n: int, what: str) -> np.ndarray:
    _, first = np.unique(values, return_index=True)
    first.sort()
    if len(first) < n:
        raise ValueError(f"not enough distinct {what}: {len(first)} < {n}")
    return values[first[:n]]


def resident_ids(seed: int, n: int) -> list[str]:
    """The first ``n`` resident IDs of the city generated from ``seed``."""
    rng = np.random.default_rng([seed, 11643])
    m = int(n * 1.03) + 64
    weights = np.array([d[2] for d in ref.DEYANG])
    local = np.array(ref.DEYANG_CODES)[rng.choice(len(ref.DEYANG), m, p=weights / weights.sum())]
    away = np.array(ref.ELSEWHERE)[rng.integers(0, len(ref.ELSEWHERE), m)]
    place = np.where(rng.random(m) < 0.85, local, away)
    ages = np.where(rng.random(m) < 0.8, rng.uniform(0, 60, m), 60 + rng.triangular(0, 0, 38, m))
    born = np.datetime64(REFERENCE_DAY) - (ages * 365.25).astype("timedelta64[D]")
    yyyymmdd = np.char.replace(np.datetime_as_string(born, unit="D"), "-", "")
    seq = np.char.zfill(rng.integers(0, 1000, m).astype(str), 3)
    first17 = _unique_in_order(np.char.add(np.char.add(place, yyyymmdd), seq), n, "resident IDs")
    return [with_resident_check_digit(s) for s in first17.tolist()]


def credit_codes(seed: int, n: int) -> list[str]:
    """The first ``n`` unified social credit codes of the city generated from ``seed``."""
    rng = np.random.default_rng([seed, 32100])
    m = int(n * 1.01) + 64
    kind = np.array(["91", "92", "93"])[rng.choice(3, m, p=[0.6, 0.37, 0.03])]
    weights = np.array([d[2] for d in ref.DEYANG])
    division = np.array(ref.DEYANG_CODES)[rng.choice(len(ref.DEYANG), m, p=weights / weights.sum())]
    body = rng.integers(0, 31, (m, 8))
    new_style = rng.random(m) < 0.45  # codes issued since 2015 start "MA"
    body[new_style, 0], body[new_style, 1] = 21, 10  # "M", "A"
    # GB 11714 organization code check character.
    total = (_ORG_VALUES[body] * _ORG_WEIGHTS).sum(axis=1)
    check = (11 - total % 11) % 11
    check_chr = np.where(check == 10, "X", check.astype(str))
    org = np.ascontiguousarray(_USCC_ALPHABET[body]).view("<U8").ravel()
    first17 = _unique_in_order(np.char.add(np.char.add(np.char.add(kind, division), org), check_chr), n, "credit codes")
    return [with_credit_check_char(s) for s in first17.tolist()]


def _date(days_before: int) -> str:
    return (REFERENCE_DAY - dt.timedelta(days=days_before)).isoformat()


class City:
    """Generates records in the catalogue's shape; departments' exports reshape them."""

    def __init__(self, seed: int, size: CitySize) -> None:
        self.seed = seed
        self.size = size
        self._rng = random.Random(seed)
        self.adults: list[tuple[str, str]] = []  # (resident ID, name), for legal representatives

    def _name(self, rng: random.Random) -> str:
        given = rng.choice(ref.GIVEN) + (rng.choice(ref.GIVEN) if rng.random() < 0.75 else "")
        return rng.choice(ref.SURNAMES) + given

    def residents(self) -> Iterator[dict]:
        rng = random.Random(self.seed * 7 + 1)
        ethnic_codes = [c for c, _ in ref.ETHNICITIES]
        ethnic_weights = [w for _, w in ref.ETHNICITIES]
        ids = resident_ids(self.seed, self.size.residents)
        household = None
        left_in_household = 0
        serial = 0
        for rid in ids:
            if left_in_household == 0:
                district, dname, _, towns = rng.choices(ref.DEYANG, weights=[d[2] for d in ref.DEYANG])[0]
                serial += 1
                household = (
                    f"{district}{serial:09d}",
                    district,
                    f"四川省德阳市{dname}{rng.choice(towns)}{rng.choice(ref.ROADS)}{rng.randint(1, 300)}号"
                    f"{rng.randint(1, 20)}栋{rng.randint(1, 4)}单元{rng.randint(1, 30)}0{rng.randint(1, 4)}",
                )
                left_in_household = rng.choices([1, 2, 3, 4, 5], weights=[25, 30, 25, 12, 8])[0]
                relation = "02"  # head of household
            else:
                relation = rng.choice(["10", "20", "20", "30", "50"])
            left_in_household -= 1
            household_id, district, address = household
            born = f"{rid[6:10]}-{rid[10:12]}-{rid[12:14]}"
            status = rng.choices(["registered", "moved_out", "deceased"], weights=[965, 25, 10])[0]
            name = self._name(rng)
            if born < "1999-12-01" and len(self.adults) < 400_000 and rng.random() < 0.5:
                self.adults.append((rid, name))
            yield {
                "resident_id": rid,
                "name": name,
                "gender": "1" if int(rid[16]) % 2 else "2",
                "ethnicity": rng.choices(ethnic_codes, weights=ethnic_weights)[0],
                "birth_date": born,
                "district_code": district,
                "address": address,
                "household_id": household_id,
                "relation_to_head": relation,
                "status": status,
                "registered_on": max(born, _date(rng.randint(0, 9000))),
            }

    def entities(self) -> Iterator[dict]:
        rng = random.Random(self.seed * 7 + 2)
        adults = self.adults or [(with_resident_check_digit("51060319800101001"), "王伟")]
        scope_codes = [s[0] for s in ref.SCOPE_ITEMS]
        scope_weights = [s[3] for s in ref.SCOPE_ITEMS]
        for code in credit_codes(self.seed, self.size.entities):
            kind = ref.ENTITY_TYPES[code[:2]][0]
            district = code[2:8]
            dname = ref.DEYANG_NAMES[district]
            rep_id, rep_name = adults[rng.randrange(len(adults))]
            scope = sorted(set(rng.choices(scope_codes, weights=scope_weights, k=rng.randint(1, 4))))
            if kind == "individual_business":
                name = f"{dname}{rep_name}{rng.choice(['小吃店', '便利店', '五金店', '副食店', '汽修店', '茶馆'])}"
                capital = round(rng.uniform(0.5, 50), 2)
            elif kind == "farmer_coop":
                name = f"{dname}{rng.choice(ref.TRADE_NAMES)}{rng.choice(['种植', '养殖', '农机'])}专业合作社"
                capital = round(rng.uniform(5, 500), 2)
            else:
                trade = rng.choice(ref.TRADE_NAMES) + rng.choice(ref.TRADE_NAMES)
                name = f"德阳{trade}{rng.choice(ref.INDUSTRIES)}有限公司"
                capital = round(rng.lognormvariate(5, 1.3), 2)
            established = _date(rng.randint(0, 27 * 365))
            status = rng.choices(["active", "revoked", "cancelled", "moved_out"], weights=[92, 3, 4.5, 0.5])[0]
            yield {
                "credit_code": code,
                "name": name,
                "entity_type": kind,
                "legal_rep_id": rep_id,
                "legal_rep_name": rep_name,
                "district_code": district,
                "address": f"四川省德阳市{dname}{rng.choice(ref.ROADS)}{rng.randint(1, 500)}号",
                "registered_capital": capital,
                "established_on": established,
                "status": status,
                "business_scope": scope,
                "registration_items": ref.REGISTRATION_ITEMS[: rng.randint(5, len(ref.REGISTRATION_ITEMS))]
                if kind != "individual_business"
                else ref.REGISTRATION_ITEMS[:2],
                "registration_authority": f"MR{district}",
                "approved_on": max(established, _date(rng.randint(0, 2000))),
            }

    def credit_entries(self) -> Iterator[dict]:
        """~8.2 records per entity; list memberships in DESIGN.md's proportions."""
        rng = random.Random(self.seed * 7 + 3)
        codes = credit_codes(self.seed, self.size.entities)
        per_entity = self.size.credit_records / max(1, len(codes))
        ordinary = ["admin_license", "admin_penalty", "tax_rating_a", "honour", "contract_default"]
        ordinary_weights = [55, 9, 24, 7, 5]
        n_abnormal = round(len(codes) * ref.ABNORMAL_SHARE)
        n_serious = round(len(codes) * ref.SERIOUS_SHARE)
        listed = rng.sample(range(len(codes)), min(len(codes), n_abnormal + n_serious))
        abnormal = set(listed[:n_abnormal])
        serious = set(listed[n_abnormal:])
        removed = set(rng.sample(sorted(abnormal), round(len(abnormal) * ref.REMOVED_SHARE)))
        serial = 0
        budget = self.size.credit_records
        for i, code in enumerate(codes):
            count = max(0, round(rng.gauss(per_entity, 3)))
            categories = rng.choices(ordinary, weights=ordinary_weights, k=count)
            if i in abnormal:
                categories.append("abnormal_operation")
            if i in serious:
                categories.append("serious_violation")
            for category in categories:
                if budget <= 0 and category in ordinary:
                    continue
                budget -= 1
                serial += 1
                listed_on = _date(rng.randint(30, 6 * 365))
                entry = {
                    "entry_id": f"XY{self.seed % 100:02d}{serial:012d}",
                    "credit_code": code,
                    "category": category,
                    "reason": None,
                    "authority": "market_regulation",
                    "listed_on": listed_on,
                    "removed_on": None,
                    "measures": [],
                }
                if category == "abnormal_operation":
                    entry["reason"] = rng.choice(ref.ABNORMAL_REASONS)
                    if i in removed:
                        entry["removed_on"] = _date(rng.randint(0, 29))
                elif category == "serious_violation":
                    entry["reason"] = rng.choice(ref.SERIOUS_REASONS)
                    entry["authority"] = rng.choice(["market_regulation", "credit"])
                    entry["measures"] = sorted(rng.sample(list(ref.MEASURES), rng.randint(2, 5)))
                elif category == "admin_penalty":
                    entry["reason"] = rng.choice(["未按规定明码标价", "销售过期食品", "超限运输", "未取得许可从事经营"])
                    entry["authority"] = rng.choice(["market_regulation", "food_drug", "transport"])
                else:
                    entry["authority"] = rng.choice(["approval_bureau", "credit", "market_regulation"])
                yield entry
