"""The enforcement-officer registry both features read: one validity rule, and one declaration of the
Justice Bureau and its resources in the catalogue."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest

from hub import officers
from hub.cache.table import Change, ResourceTable
from hub.catalogue.model import Catalogue, load_builtin
from hub.datagen.city import resident_ids

IDS = resident_ids(12, 4)


def _officer(cert: str, rid: str, **kw: str) -> dict:
    record = {
        "cert_no": cert,
        "resident_id": rid,
        "name": "李执法",
        "department": "food_drug",
        "level": "city",
        "district_code": "510600",
        "field": "food_drug",
        "valid_from": "2020-01-01",
        "valid_to": "2025-12-31",
        "status": "valid",
    }
    return record | kw


def _version(records: list[dict]):
    table = ResourceTable(load_builtin().resource(officers.RESOURCE), 1)
    table.apply([Change(r["cert_no"], orjson.dumps(r), 0, i) for i, r in enumerate(records)])
    table.settle()
    return table.version


def test_a_certificate_is_valid_from_its_first_to_its_last_day_while_its_status_is_valid() -> None:
    o = _officer("SC-1", IDS[0])
    assert officers.certificate_problem(o, dt.date(2020, 1, 1)) is None
    assert officers.certificate_problem(o, dt.date(2025, 12, 31)) is None
    assert officers.certificate_problem(o, dt.date(2019, 12, 31)) == "certificate SC-1 is valid only from 2020-01-01"
    assert officers.certificate_problem(o, dt.date(2026, 1, 1)) == "certificate SC-1 expired on 2025-12-31"
    for status in ("suspended", "revoked"):
        problem = officers.certificate_problem(o | {"status": status}, dt.date(2022, 6, 1))
        assert problem == f"certificate SC-1 is {status}"


def test_the_registry_answers_the_step_check_and_the_pools_alike() -> None:
    version = _version(
        [
            _officer("SC-1", IDS[0]),
            _officer("SC-2", IDS[1], status="suspended"),
            _officer("SC-3", IDS[2], valid_from="2023-01-01"),
            _officer("SC-4", IDS[3], department="market_regulation", field="market"),
        ]
    )
    on = dt.date(2022, 6, 1)
    assert [o["cert_no"] for o in officers.valid_on(version, on)] == ["SC-1", "SC-4"]
    assert officers.acting_problem(version, "SC-1", "food_drug", on) is None
    assert officers.acting_problem(version, "SC-2", "food_drug", on) == "certificate SC-2 is suspended"
    assert officers.acting_problem(version, "SC-4", "food_drug", on) == (
        "certificate SC-4 is of market_regulation, not food_drug"
    )
    assert officers.acting_problem(version, "SC-9", "food_drug", on) == (
        "no enforcement certificate 'SC-9' in enforcement.officer"
    )


def test_the_catalogue_declares_each_department_and_resource_once() -> None:
    builtin = load_builtin()
    justice = [d for d in builtin.departments if d.name == "德阳市司法局"]
    assert [d.code for d in justice] == ["justice"]
    assert {builtin.resource(r).provider for r in (officers.RESOURCE, "power.item")} == {"justice"}
    twice = builtin.model_dump(mode="json")
    twice["resources"].append({**twice["resources"][-1], "name": "power.copy"})
    with pytest.raises(ValueError, match="resource codes must be unique: 510600-SF-00002"):
        Catalogue.model_validate(twice)
