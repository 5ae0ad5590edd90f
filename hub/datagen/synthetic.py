"""Valid synthetic records of any catalogue resource, for connectors that have no generator of their own.

``hub connector new`` writes its sample file with them, and the scaffolded test runs the universal
suite on them: real check digits for resident IDs and credit codes, Deyang's divisions, a value from
the allowed list where a field has one, and plausible dates and amounts otherwise.
"""

from __future__ import annotations

import datetime as dt
import random

from hub.catalogue.model import FieldSpec, ResourceSpec
from hub.datagen.city import credit_codes, resident_ids
from hub.records.identifiers import ENTITY_CATEGORIES, GENDERED_ID_FIELDS, implied_birth_date, implied_gender
from hub.records.reference import DEYANG_CODES


def synthetic_records(spec: ResourceSpec, n: int, seed: int) -> list[dict]:
    """Valid records of ``spec``: real check digits, Deyang districts, plausible dates."""
    rng = random.Random(seed)
    people, entities = resident_ids(seed, n * 2), credit_codes(seed, n * 2)
    adults = [p for p in resident_ids(seed + 1, 200) if implied_birth_date(p) < "1995-01-01"]
    out: list[dict[str, object]] = []
    for i in range(n):
        record: dict[str, object] = {}
        for f in spec.fields:
            if not f.required and f.name != spec.key and rng.random() < 0.1:
                record[f.name] = None
                continue
            record[f.name] = _value(spec, f, i, rng, people, entities, seed)
        _agree_with_identifiers(spec, record, rng, adults)
        out.append(record)
    return out


def _agree_with_identifiers(
    spec: ResourceSpec, record: dict[str, object], rng: random.Random, adults: list[str]
) -> None:
    """Sets what a record's identifiers imply, as validation refuses contradictions: a resident's birth
    date and gender, a spouse's or parent's gender (adults, born before any child here), an entity's
    type."""
    rid = record.get("resident_id")
    if isinstance(rid, str) and spec.field("resident_id").format == "resident_id":
        for name, implied in (("birth_date", implied_birth_date(rid)), ("gender", implied_gender(rid))):
            if record.get(name) is not None:
                record[name] = implied
    for name, gender in GENDERED_ID_FIELDS.items():
        if record.get(name) is not None:
            record[name] = rng.choice([p for p in adults if implied_gender(p) == gender])
    code = record.get("credit_code")
    if isinstance(code, str) and record.get("entity_type") is not None:
        allowed = spec.field("entity_type").allowed
        record["entity_type"] = rng.choice([k for k in allowed if ENTITY_CATEGORIES.get(k) == code[1]])


def _value(spec: ResourceSpec, f: FieldSpec, i: int, rng: random.Random, people, entities, seed: int):
    if f.format == "resident_id":
        return people[i] if f.name == spec.key else people[rng.randrange(len(people))]
    if f.format == "credit_code":
        return entities[i] if f.name == spec.key else entities[rng.randrange(len(entities))]
    if f.format == "division_code":
        return rng.choice(DEYANG_CODES)
    if f.name == spec.key:
        return f"{spec.name.split('.')[1].upper()}-{seed}-{i:06d}"
    if f.allowed:
        return rng.choice(f.allowed)
    return {
        "string": lambda: f"{f.title.split()[0]}{i}",
        "code": lambda: rng.choice(["A", "B", "C"]),
        "date": lambda: (dt.date(2015, 1, 1) + dt.timedelta(days=rng.randrange(1000))).isoformat(),
        "int": lambda: rng.randrange(1, 1000),
        "decimal": lambda: round(rng.uniform(1, 10000), 2),
        "bool": lambda: rng.random() < 0.5,
        "list": lambda: sorted(rng.sample(["alpha", "beta", "gamma"], rng.randint(1, 3))),
    }[f.type]()
