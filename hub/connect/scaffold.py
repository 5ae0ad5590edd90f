"""``hub connector new``: a working connector to start from, with sample data and its test.

The scaffold reads CSV drops whose columns are the catalogue's field names in capitals, plus an
``OP`` column (I, U or D). Its test module runs the universal suite against synthetic records of
the resource, so the connector is tested before the first line of the department's own mapping
is written. Then the integration engineer replaces the column names and parsing.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

from hub.catalogue.model import FieldSpec, ResourceSpec, load_builtin
from hub.datagen.city import credit_codes, resident_ids
from hub.datagen.exports import write_csv
from hub.datagen.reference import DEYANG_CODES
from hub.records.identifiers import ENTITY_CATEGORIES, GENDERED_ID_FIELDS, implied_birth_date, implied_gender

OP_COLUMN = "OP"


def synthetic_records(spec: ResourceSpec, n: int, seed: int) -> list[dict]:
    """Valid records of ``spec``: real check digits, Deyang districts, plausible dates."""
    rng = random.Random(seed)
    people, entities = resident_ids(seed, n * 2), credit_codes(seed, n * 2)
    adults = [p for p in resident_ids(seed + 1, 200) if implied_birth_date(p) < "1995-01-01"]
    out = []
    for i in range(n):
        record = {}
        for f in spec.fields:
            if not f.required and f.name != spec.key and rng.random() < 0.1:
                record[f.name] = None
                continue
            record[f.name] = _value(spec, f, i, rng, people, entities, seed)
        _agree_with_identifiers(spec, record, rng, adults)
        out.append(record)
    return out


def _agree_with_identifiers(spec: ResourceSpec, record: dict, rng: random.Random, adults: list[str]) -> None:
    """Sets what a record's identifiers imply, as validation refuses contradictions: a resident's birth
    date and gender, a spouse's or parent's gender (adults, born before any child here), an entity's
    type."""
    rid = record.get("resident_id")
    if rid is not None and spec.field("resident_id").format == "resident_id":
        for name, implied in (("birth_date", implied_birth_date(rid)), ("gender", implied_gender(rid))):
            if record.get(name) is not None:
                record[name] = implied
    for name, gender in GENDERED_ID_FIELDS.items():
        if record.get(name) is not None:
            record[name] = rng.choice([p for p in adults if implied_gender(p) == gender])
    code = record.get("credit_code")
    if code is not None and record.get("entity_type") is not None:
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


def render_upper(record: dict) -> dict:
    """A record as the scaffold's CSV row: capitalised field names, lists joined by '|'."""
    row = {}
    for name, value in record.items():
        if isinstance(value, list):
            value = "|".join(value)
        elif isinstance(value, bool):
            value = "1" if value else "0"
        row[name.upper()] = "" if value is None else value
    return row


def synthetic_defects(spec: ResourceSpec) -> list[tuple[str, str]]:
    """Native values that must be refused: an impossible date, an unknown code, a broken key."""
    defects = []
    for f in spec.fields:
        if f.type == "date" and f.required:
            defects.append((f.name.upper(), "2017-02-30"))
        elif f.allowed:
            defects.append((f.name.upper(), "NOT-A-CODE"))
        elif f.type in ("int", "decimal"):
            defects.append((f.name.upper(), "twelve"))
        if len(defects) == 2:
            break
    key = spec.field(spec.key)
    if key.format in ("resident_id", "credit_code"):
        defects.append(
            (key.name.upper(), "510603199001011230" if key.format == "resident_id" else "9151060000000000X0")
        )
    return defects


def _expression(spec: ResourceSpec, f: FieldSpec) -> str:
    column = f.name.upper()
    if f.name == spec.key:
        return "self.key(r)"
    if f.type == "date":
        return f'date_from(r.get("{column}"), "{column}"' + (", required=True)" if f.required else ")")
    if f.type == "int":
        return f'integer(r.get("{column}"), "{column}")'
    if f.type == "decimal":
        return f'number(r.get("{column}"), "{column}")'
    if f.type == "bool":
        return f'flag(r.get("{column}"), "{column}")'
    if f.type == "list":
        return f'items(r.get("{column}"))'
    if f.required:
        return f'required(r, "{column}")'
    return f'text(r.get("{column}"))'


CONNECTOR = '''"""{title}: a connector generated by `hub connector new {name}`.

It reads CSV drops whose columns are the fields of {resource} in capitals, plus OP (I, U, D).
Replace the column names and parsing below with the department's own export, keep the universal
suite in tests/connectors/test_{name}.py passing, and describe the native format here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors._native import date_from, flag, integer, items, number, required, text  # noqa: F401
from hub.connect.files import file_source
from hub.connect.source import Connector, Source


class {cls}(Connector):
    name = "{name}"
    resource = "{resource}"
    department = "{department}"
    title = "{title}"

    def key(self, row: Mapping[str, Any]) -> str:
        return required(dict(row), "{key}")

    def deleted(self, row: Mapping[str, Any]) -> bool:
        return str(row.get("{op}") or "").strip() == "D"

    def map(self, row: Mapping[str, Any]) -> dict[str, Any]:
        r = dict(row)
        return {{
{fields}
        }}

    def default_source(self, location: str) -> Source:
        return file_source(location, "csv")
'''

TEST = '''"""The universal connector suite for {name} (generated by `hub connector new {name}`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.catalogue.model import load_builtin
from hub.connect.scaffold import render_upper, synthetic_defects, synthetic_records
from hub.connect.testing import CHECKS, Kit, Throttle, check_backpressure
from hub.datagen.departments import DropFolder
from tests.hubtest import RunningHub, running_hub

SPEC = load_builtin().resource("{resource}")
KIT = Kit(
    "{name}",
    lambda n, seed: synthetic_records(SPEC, n, seed),
    render_upper,
    lambda workdir, services: DropFolder(workdir, "csv", op_column="{op}"),
    defects=synthetic_defects(SPEC),
)


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_{name}(check: str, hub: RunningHub, tmp_path: Path) -> None:
    CHECKS[check](KIT, hub, tmp_path, {{}})


def test_{name}_backpressure(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    throttle = Throttle(refusals=3)
    with running_hub(kafka_bootstrap, topic_prefix, tmp_path / "hub", interceptors=[throttle]) as hub:
        check_backpressure(KIT, hub, throttle, tmp_path, {{}})
'''

CONFIG = """# Settings of the {name} connector: hub connector run --config connectors/{name}.toml
type = "{name}"
source = "connectors/samples/{name}.csv"  # a file or a drop folder
hub = "127.0.0.1:50051"
once = true
# With mutual TLS, the department's certificate from `hub certs issue {department}`:
# [tls]
# ca = ".hub-data/pki/ca.crt"
# cert = ".hub-data/pki/issued/{department}-SERIAL.crt"
# key = ".hub-data/pki/issued/{department}-SERIAL.key"
"""


def scaffold(name: str, resource: str, department: str | None, root: Path) -> list[Path]:
    if not name.isidentifier() or not name.islower():
        raise SystemExit(f"{name!r}: a connector name is a lower-case Python identifier, e.g. county_licences")
    spec = load_builtin().resource(resource)
    department = department or spec.provider
    targets = {
        "code": root / "connectors" / f"{name}.py",
        "config": root / "connectors" / f"{name}.toml",
        "sample": root / "connectors" / "samples" / f"{name}.csv",
        "test": root / "tests" / "connectors" / f"test_{name}.py",
    }
    existing = [str(p) for p in targets.values() if p.exists()]
    if existing:
        raise SystemExit(f"not overwriting {', '.join(existing)}")
    words = dict(
        name=name,
        resource=resource,
        department=department,
        op=OP_COLUMN,
        key=spec.key.upper(),
        cls="".join(part.title() for part in name.split("_")) + "Connector",
        title=f"{department}: {spec.title}",
    )
    fields = "\n".join(f'            "{f.name}": {_expression(spec, f)},' for f in spec.fields)
    for path in targets.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    targets["code"].write_text(CONNECTOR.format(fields=fields, **words))
    targets["config"].write_text(CONFIG.format(**words))
    targets["test"].write_text(TEST.format(**words))
    (targets["test"].parent / "__init__.py").touch()
    write_csv(targets["sample"], [{**render_upper(r), OP_COLUMN: "I"} for r in synthetic_records(spec, 20, 1)])
    return list(targets.values())
