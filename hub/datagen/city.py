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
from typing import Any

import numpy as np

from hub.datagen import reference as ref
from hub.records import reference as tables
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
    weights = np.array([d[2] for d in tables.DEYANG])
    local = np.array(tables.DEYANG_CODES)[rng.choice(len(tables.DEYANG), m, p=weights / weights.sum())]
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
    weights = np.array([d[2] for d in tables.DEYANG])
    division = np.array(tables.DEYANG_CODES)[rng.choice(len(tables.DEYANG), m, p=weights / weights.sum())]
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
        self.people: list[tuple[str, str, str, str, str]] = []  # (ID, name, gender, birth date, district)
        self.entity_codes: list[str] = []

    def _name(self, rng: random.Random) -> str:
        given = rng.choice(ref.GIVEN) + (rng.choice(ref.GIVEN) if rng.random() < 0.75 else "")
        return rng.choice(ref.SURNAMES) + given

    def residents(self) -> Iterator[dict]:
        rng = random.Random(self.seed * 7 + 1)
        ethnic_codes = [c for c, _ in ref.ETHNICITIES]
        ethnic_weights = [w for _, w in ref.ETHNICITIES]
        ids = resident_ids(self.seed, self.size.residents)
        household = ("", "", "")  # set on the first resident
        left_in_household = 0
        serial = 0
        for rid in ids:
            if left_in_household == 0:
                district, dname, _, towns = rng.choices(tables.DEYANG, weights=[d[2] for d in tables.DEYANG])[0]
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
            if status == "registered":
                self.people.append((rid, name, "1" if int(rid[16]) % 2 else "2", born, district))
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
        scope_codes = [s[0] for s in tables.SCOPE_ITEMS]
        scope_weights = [s[3] for s in tables.SCOPE_ITEMS]
        for code in credit_codes(self.seed, self.size.entities):
            self.entity_codes.append(code)
            kind = tables.ENTITY_TYPES[code[:2]][0]
            district = code[2:8]
            dname = tables.DEYANG_NAMES[district]
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
                entry: dict[str, Any] = {
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
                    entry["measures"] = sorted(rng.sample(list(tables.MEASURES), rng.randint(2, 5)))
                elif category == "admin_penalty":
                    entry["reason"] = rng.choice(["未按规定明码标价", "销售过期食品", "超限运输", "未取得许可从事经营"])
                    entry["authority"] = rng.choice(["market_regulation", "food_drug", "transport"])
                else:
                    entry["authority"] = rng.choice(["approval_bureau", "credit", "market_regulation"])
                yield entry

    # -- the other departments ---------------------------------------------------------------------

    def _prime(self) -> None:
        """The people and entities the other departments' records refer to."""
        if not self.people:
            for _ in self.residents():
                pass
        if not self.entity_codes:
            for _ in self.entities():
                pass

    def insured(self) -> Iterator[dict]:
        """Social security: most working-age and retired residents."""
        self._prime()
        rng = random.Random(self.seed * 7 + 4)
        for rid, name, _, born, district in self.people:
            if born > "1999-12-01" or rng.random() > 0.7:
                continue
            retired = born < "1957-12-01"
            status = "retired" if retired else rng.choices(["contributing", "suspended", "terminated"], [85, 12, 3])[0]
            months = min(12 * (2017 - int(born[:4]) - 18), rng.randint(6, 420))
            yield {
                "resident_id": rid,
                "name": name,
                "insurance_types": sorted(
                    rng.sample(["pension", "medical", "unemployment", "injury", "maternity"], rng.randint(2, 5))
                ),
                "status": status,
                "employer_credit_code": None
                if retired or rng.random() < 0.25
                else self.entity_codes[rng.randrange(len(self.entity_codes))],
                "district_code": district,
                "contribution_months": max(months, 1),
                # contributions are monthly: the system records the month (费款所属期)
                "last_paid_on": _date(rng.randint(0, 60) if status == "contributing" else rng.randint(90, 3000))[:8]
                + "01",
            }

    def properties(self) -> Iterator[dict]:
        """Real-estate registration: about one certificate for every three adults."""
        self._prime()
        rng = random.Random(self.seed * 7 + 5)
        serial = 0
        for rid, name, _, born, district in self.people:
            if born > "1999-12-01" or rng.random() > 0.33:
                continue
            serial += 1
            year = rng.randint(2015, 2017)  # unified real-estate certificates began in 2015
            town = next(d[3] for d in tables.DEYANG if d[0] == district)
            yield {
                "cert_no": f"川({year}){tables.DEYANG_NAMES[district]}不动产权第{serial:07d}号",
                "owner_id": rid,
                "owner_name": name,
                "district_code": district,
                "address": f"四川省德阳市{tables.DEYANG_NAMES[district]}{rng.choice(town)}{rng.choice(ref.ROADS)}"
                f"{rng.randint(1, 300)}号{rng.randint(1, 30)}栋{rng.randint(1, 30)}0{rng.randint(1, 4)}",
                "usage": rng.choices(["residential", "commercial", "industrial", "other"], [88, 8, 2, 2])[0],
                "area_m2": round(rng.uniform(45, 180), 2),
                "registered_on": _date(rng.randint(0, (2017 - year) * 365)),
                "status": rng.choices(["valid", "mortgaged", "sealed", "cancelled"], [60, 35, 2, 3])[0],
            }

    def housing_accounts(self) -> Iterator[dict]:
        """Housing provident fund: employees of formal employers."""
        self._prime()
        rng = random.Random(self.seed * 7 + 6)
        serial = 0
        for rid, name, _, born, _ in self.people:
            if not "1957-12-01" < born < "1999-12-01" or rng.random() > 0.35:
                continue
            serial += 1
            monthly = round(rng.uniform(150, 2400), 2)
            status = rng.choices(["normal", "sealed", "closed"], [82, 15, 3])[0]
            yield {
                "account_no": f"DY{self.seed % 100:02d}{serial:010d}",
                "resident_id": rid,
                "name": name,
                "employer_credit_code": self.entity_codes[rng.randrange(len(self.entity_codes))],
                "status": status,
                "monthly_deposit": monthly,
                "balance": round(monthly * rng.randint(3, 180) * rng.uniform(0.6, 1.0), 2),
                "last_deposit_on": _date(rng.randint(0, 40) if status == "normal" else rng.randint(60, 2000)),
                "opened_on": _date(rng.randint(200, 6000)),
            }

    def births(self) -> Iterator[dict]:
        """Birth medical certificates of the children born in the city since 2010."""
        self._prime()
        rng = random.Random(self.seed * 7 + 7)
        mothers = [p for p in self.people if p[2] == "2" and "1970-01-01" < p[3] < "1995-01-01"]
        fathers = [p for p in self.people if p[2] == "1" and "1965-01-01" < p[3] < "1995-01-01"]
        hospitals = [
            "德阳市人民医院",
            "德阳市第二人民医院",
            "德阳市妇幼保健院",
            "广汉市人民医院",
            "什邡市人民医院",
            "绵竹市人民医院",
            "中江县人民医院",
        ]
        for i, (_, name, gender, born, district) in enumerate(self.people):
            if born < "2010-01-01" or not mothers:
                continue
            mother = mothers[rng.randrange(len(mothers))]
            yield {
                "cert_no": f"{'OPQR'[int(born[:4]) % 4]}51{self.seed % 100:02d}{i:07d}",
                "child_name": name,
                "child_gender": gender,
                "birth_date": born,
                "mother_id": mother[0],
                "father_id": fathers[rng.randrange(len(fathers))][0] if fathers and rng.random() < 0.95 else None,
                "hospital": rng.choice(hospitals),
                "district_code": district,
            }

    def marriages(self) -> Iterator[dict]:
        """Marriage registrations between adult residents."""
        self._prime()
        rng = random.Random(self.seed * 7 + 8)
        women = [p for p in self.people if p[2] == "2" and p[3] < "1995-01-01"]
        men = [p for p in self.people if p[2] == "1" and p[3] < "1993-01-01"]
        for i in range(min(len(women), len(men)) // 2):
            wife, husband = women[2 * i], men[2 * i]
            year = max(int(wife[3][:4]), int(husband[3][:4])) + rng.randint(22, 30)
            if year > 2017:
                continue
            kind = rng.choices(["marriage", "divorce", "remarriage"], [88, 9, 3])[0]
            yield {
                "record_no": f"J{wife[4]}-{year}-{i:06d}",
                "kind": kind,
                "husband_id": husband[0],
                "wife_id": wife[0],
                "registered_on": f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                "district_code": wife[4],
                "status": "dissolved" if kind == "divorce" else "valid",
            }

    def licences(self) -> Iterator[dict]:
        """Licences for every business-scope item that needs a permit, with validity dates."""
        rng = random.Random(self.seed * 7 + 9)
        kinds = {
            code: (kind, dept) for code, _, dept, _ in tables.SCOPE_ITEMS if dept for kind in [ref.LICENCE_TYPES[code]]
        }
        serial = 0
        for entity in self.entities():
            for item in entity["business_scope"]:
                if item not in kinds or rng.random() > 0.85:
                    continue
                serial += 1
                licence_type, issuer = kinds[item]
                start = max(entity["established_on"], _date(rng.randint(0, 5 * 365)))
                end = (dt.date.fromisoformat(start) + dt.timedelta(days=5 * 365 - 1)).isoformat()
                yield {
                    "licence_no": f"{ref.LICENCE_PREFIX[licence_type]}{entity['district_code']}{serial:08d}",
                    "holder_id": entity["credit_code"],
                    "holder_name": entity["name"],
                    "licence_type": licence_type,
                    "issuer": issuer,
                    "valid_from": start,
                    "valid_to": end,
                    "status": rng.choices(["valid", "revoked", "cancelled", "suspended"], [92, 2, 4, 2])[0],
                    "e_certificate_id": f"51060{serial:012d}",
                }
