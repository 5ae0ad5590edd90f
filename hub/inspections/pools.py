"""The two pools of a draw, read from the cache: targets by filters, officers (the Justice Bureau's
``enforcement.officer``) by department, field, level and a certificate valid on the draw date; and the
conflict-of-interest check against the population registry, by the hub's own verification.

Targets are never copied out by hand: the plan's filters are compiled as verification claims and
evaluated vectorised over the live rows of one cache version, whose watermark is published with the
pool's digest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hub import officers
from hub.cache.claims import Claim, Op, compile_claims
from hub.cache.table import TableVersion
from hub.cache.verify import verify_many
from hub.inspections.items import InspectionItem

TARGETS = "market.entity"
CREDIT = "credit.list_entry"
LICENCES = "approval.licence"
OFFICERS = officers.RESOURCE
RESIDENTS = "population.resident"


@dataclass(frozen=True)
class TargetFilter:
    status: str = "active"
    district_prefix: str = ""
    entity_types: tuple[str, ...] = ()
    scope_item: str = ""
    credit_list: str = ""
    off_list: bool = False


def watermark(version: TableVersion) -> str:
    return ",".join(map(str, version.watermark.offsets))


def _matching(version: TableVersion, claims: Sequence[Claim], prefix: str) -> np.ndarray:
    """Live rows of ``version`` where every claim holds. Each claim is tested only on the rows the
    ones before it kept, so the cheap code-column claims (listed first) narrow what the costly
    string and list claims read."""
    rows = version.live_rows()
    for c in compile_claims(version.spec, claims, prefix=prefix):
        rows = rows[c.test_rows(version.columns[c.field], rows)]
    return rows


def _values(version: TableVersion, field: str, rows: np.ndarray) -> pa.Array:
    return version.columns[field].take(rows)


def target_pool(
    versions: Mapping[str, TableVersion], items: Sequence[InspectionItem], f: TargetFilter, on: dt.date
) -> list[str]:
    """Credit codes of the entities the plan may draw, ascending."""
    entities = versions[TARGETS]
    claims = [Claim("status", Op.EQUALS, (f.status or "active",))]
    if f.district_prefix:
        claims.append(Claim("district_code", Op.PREFIX, (f.district_prefix,)))
    if f.entity_types:
        claims.append(Claim("entity_type", Op.IN, f.entity_types))
    if f.scope_item:
        claims.append(Claim("business_scope", Op.CONTAINS, (f.scope_item,)))
    rows = _matching(entities, claims, "filter")
    codes = _values(entities, "credit_code", rows)
    if f.credit_list:
        listed = versions[CREDIT]
        on_list = _matching(
            listed,
            [Claim("category", Op.EQUALS, (f.credit_list,)), Claim("removed_on", Op.UNSET)],
            "filter.credit_list",
        )
        members = pc.is_in(codes, value_set=pa.array(_values(listed, "credit_code", on_list).to_pylist(), pa.string()))
        codes = codes.filter(pc.invert(members) if f.off_list else members)
    for licence_type in sorted({i.licence_type for i in items if i.target_kind == "licence_holder"}):
        licences = versions[LICENCES]
        valid = _matching(
            licences,
            [
                Claim("licence_type", Op.EQUALS, (licence_type,)),
                Claim("status", Op.EQUALS, ("valid",)),
                Claim("valid_to", Op.AT_LEAST, (on.isoformat(),), or_unset=True),
            ],
            "items",
        )
        holders = pa.array(_values(licences, "holder_id", valid).to_pylist(), pa.string())
        codes = codes.filter(pc.is_in(codes, value_set=holders))
    return sorted(codes.to_pylist())


@dataclass(frozen=True)
class OfficerPool:
    officers: list[dict]  # published: certificate, department, level, field
    resident_ids: dict[str, str]  # certificate → resident ID: for the conflict check, never published


def officer_pool(
    version: TableVersion, department: str, fields: Iterable[str], levels: Sequence[str], on: dt.date
) -> OfficerPool:
    """Officers of the department in the items' fields and the plan's levels, certificate valid on ``on``."""
    rows = _matching(
        version,
        [
            Claim("department", Op.EQUALS, (department,)),
            Claim("field", Op.IN, tuple(sorted(set(fields)))),
            Claim("level", Op.IN, tuple(levels)),
        ],
        "officers",
    )
    records = officers.valid_on(version, on, rows)
    records.sort(key=lambda o: o["cert_no"].encode())
    return OfficerPool(
        [{k: o[k] for k in ("cert_no", "department", "level", "field")} for o in records],
        {o["cert_no"]: o["resident_id"] for o in records},
    )


def conflicts(
    entities: TableVersion, residents: TableVersion, targets: Sequence[str], officer_ids: Mapping[str, str]
) -> list[list[str]]:
    """``[credit_code, cert_no]`` pairs where the entity's legal representative is the officer or lives
    in the officer's household (户), asked of the population registry as verification claims."""
    if not targets or not officer_ids:
        return []
    rows = entities.rows(targets)
    reps: list[str | None] = [None] * len(targets)
    present = np.flatnonzero(rows >= 0)
    for i, rep in zip(present.tolist(), _values(entities, "legal_rep_id", rows[present]).to_pylist(), strict=True):
        reps[i] = rep
    by_person: dict[str, list[str]] = {}
    for cert, rid in officer_ids.items():
        by_person.setdefault(rid, []).append(cert)
    households: dict[str, list[str]] = {}
    for rid, certs in by_person.items():
        row = residents.row(rid)
        household = residents.columns["household_id"].value(row) if row >= 0 else None
        if household:
            households.setdefault(str(household), []).extend(certs)
    pairs = {(code, cert) for code, rep in zip(targets, reps, strict=True) for cert in by_person.get(rep or "", ())}
    asked = [(code, rep) for code, rep in zip(targets, reps, strict=True) if rep]
    if households and asked:
        # One vectorised verification: is the representative registered in any officer's household?
        [claim] = compile_claims(residents.spec, [Claim("household_id", Op.IN, tuple(households))])
        outcome = verify_many(residents, "resident_id", [rep for _, rep in asked], [claim])
        for i in np.flatnonzero(outcome.match).tolist():
            code, rep = asked[i]
            household = str(residents.columns["household_id"].value(residents.row(rep)))
            pairs.update((code, cert) for cert in households.get(household, []))
    return sorted([code, cert] for code, cert in pairs)
