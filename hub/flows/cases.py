"""Cases: the evidence a case type needs, resolved by verification in one call.

Each evidence item is a verification against the cache under the submitting department's access
(purpose and grants apply as to any Verify). Outcomes: SATISFIED, NOT_SATISFIED (with the claim
that failed, or "no record"), or CANNOT_DETERMINE (no access, or a field under a correction
request and no proof shown). A case type with a restricted context also reports the joint
restrictions that apply to its entity. Every item is audited under the case number.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, field_validator

from hub.cache.claims import Claim, Compiled, Op, compile_claims
from hub.cache.replica import ReplicaCache
from hub.cache.table import Watermark
from hub.cache.verify import key_field_of, key_problem, verify_one
from hub.catalogue.model import ResourceSpec
from hub.errors import HubError, InvalidArgument
from hub.flows.restrictions import CREDIT_LIST, Restriction, context_problem, restrictions_of
from hub.flows.stores import CorrectionStore
from hub.governance.catalogue import CatalogueStore
from hub.governance.identity import Caller
from hub.governance.policy import AccessPolicy

TYPES_PATH = Path(__file__).with_name("case_types.toml")
_PLACEHOLDER = re.compile(r"\{(date|param:[a-z_]+)\}")


class ClaimTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    op: str = "equals"
    values: tuple[str, ...] = ()
    or_unset: bool = False


class Evidence(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    title: str
    resource: str
    subject: str = "applicant"
    key_field: str = ""
    expect: Literal["match", "absent"] = "match"
    claims: tuple[ClaimTemplate, ...] = ()


class CaseType(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    title: str
    params: tuple[str, ...] = ()
    restricted_context: str = ""
    restricted_subject: str = "applicant"
    evidence: tuple[Evidence, ...]

    @field_validator("restricted_context")
    @classmethod
    def _known_context(cls, value: str) -> str:
        problem = context_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


def load_case_types(path: Path = TYPES_PATH) -> dict[str, CaseType]:
    with path.open("rb") as f:
        types = [CaseType.model_validate(t) for t in tomllib.load(f)["types"]]
    return {t.code: t for t in types}


@dataclass
class EvidenceResult:
    evidence: Evidence
    outcome: Literal["satisfied", "not_satisfied", "cannot_determine"]
    reason: str
    subject: str
    watermark: Watermark | None = None
    disputed: list[str] = field(default_factory=list)
    error_code: str = "OK"
    claims: list[Claim] = field(default_factory=list)  # as asked, values filled in (a receipt states them)


@dataclass
class CaseOutcome:
    case_number: str
    case_type: CaseType
    evidence: list[EvidenceResult]
    restrictions: list[Restriction]

    @property
    def complete(self) -> bool:
        return all(e.outcome == "satisfied" for e in self.evidence) and not self.restrictions


class Item(NamedTuple):  # one per evidence check, as Check
    """One evidence item of a case: whose record it checks, and the claims, the case's values filled in."""

    evidence: Evidence
    subject: str
    claims: tuple[Claim, ...]


class Check(NamedTuple):  # one per evidence check: 4x cheaper to make than a frozen dataclass
    """An evidence item verified against the records that hold its subject (before it is judged)."""

    key_field: str
    found: bool
    match: bool
    claims: tuple[bool, ...]
    disputed: frozenset[str]
    watermark: Watermark

    @classmethod
    def merged(cls, parts: list[Check]) -> Check:
        """Shards hold disjoint records: a record found on any is found (as Verify gathers an indexed field)."""
        return cls(
            parts[0].key_field,
            any(p.found for p in parts),
            any(p.match for p in parts),
            tuple(any(column) for column in zip(*(p.claims for p in parts), strict=True)),
            frozenset().union(*(p.disputed for p in parts)),
            Watermark.merged([p.watermark for p in parts]),
        )


@dataclass(frozen=True)
class CaseRequest:
    case_number: str
    case_type: str
    applicant: str
    date: str
    params: Mapping[str, str]
    purpose: str
    proof_shown: bool = False


class CaseResolver:
    def __init__(
        self,
        types: dict[str, CaseType],
        catalogue: CatalogueStore,
        cache: ReplicaCache,
        policy: AccessPolicy,
        corrections: CorrectionStore,
    ) -> None:
        self.types = types
        self._catalogue = catalogue
        self._cache = cache
        self._policy = policy
        self._corrections = corrections
        self._compiled: dict[tuple[str, tuple[Claim, ...]], tuple[ResourceSpec, list[Compiled]]] = {}
        # Each evidence item's claims depend only on the values its templates name (cases share dates).
        self._names = {
            (t.code, i): tuple(
                sorted({m.group(1) for c in e.claims for v in c.values for m in _PLACEHOLDER.finditer(v)})
            )
            for t in types.values()
            for i, e in enumerate(t.evidence)
        }
        self._claims: dict[tuple[str, int, tuple[str, ...]], tuple[Claim, ...]] = {}

    def check(self, request: CaseRequest) -> CaseType:
        """The case type, after checking the request is complete; raises InvalidArgument."""
        case_type = self.types.get(request.case_type)
        if case_type is None:
            raise InvalidArgument(
                f"case_type: {request.case_type!r} is not a case type ({', '.join(sorted(self.types))})",
                field="case_type",
            )
        if not request.case_number.strip():
            raise InvalidArgument("case_number: required", field="case_number")
        try:  # exactly YYYY-MM-DD: the date is compared as text with the lists' dates
            if dt.date.fromisoformat(request.date).isoformat() != request.date:
                raise ValueError
        except ValueError:
            raise InvalidArgument(f"date: {request.date!r} is not a date (YYYY-MM-DD)", field="date") from None
        if not request.applicant:
            raise InvalidArgument("applicant: required (a resident ID or a credit code)", field="applicant")
        for name in case_type.params:
            if not request.params.get(name):
                raise InvalidArgument(f"params.{name}: required by case type {case_type.code}", field=f"params.{name}")
        return case_type

    def resolve(self, caller: Caller, request: CaseRequest) -> CaseOutcome:
        """The whole case from this replica's data (an unsharded replica holds every record)."""
        case_type = self.check(request)
        results = []
        for item in self.items(request, case_type):
            try:
                results.append(self.judge(item, self.verify(caller, request, item), request.proof_shown))
            except HubError as exc:
                results.append(self.refused(item, exc))
        return CaseOutcome(request.case_number, case_type, results, self.restrictions(request, case_type))

    def items(self, request: CaseRequest, case_type: CaseType) -> list[Item]:
        """Each evidence item with its subject and its claims, the case's values filled in."""
        values = {
            "date": request.date,
            **{f"param:{k}": v for k, v in request.params.items()},
            "param:applicant": request.applicant,
        }
        out = []
        for i, e in enumerate(case_type.evidence):
            subject = request.applicant if e.subject == "applicant" else request.params.get(e.subject, "")
            key = (case_type.code, i, tuple(values.get(name, "") for name in self._names[case_type.code, i]))
            claims = self._claims.get(key)
            if claims is None:
                claims = tuple(
                    Claim(c.field, Op(c.op), tuple(_fill(v, values) for v in c.values), c.or_unset) for c in e.claims
                )
                if len(self._claims) >= 10_000:
                    self._claims.clear()
                self._claims[key] = claims
            out.append(Item(e, subject, claims))
        return out

    def target(self, item: Item) -> tuple[ResourceSpec, str] | None:
        """The item's resource and the field its subject is looked up by; None if the check will be refused
        (an unknown resource or field), which any replica can say."""
        try:
            spec = self._catalogue.resource(item.evidence.resource)
            return spec, key_field_of(spec, item.evidence.key_field)
        except HubError:
            return None

    def verify(self, caller: Caller, request: CaseRequest, item: Item) -> Check:
        """The item verified against this replica's records under the caller's access; raises HubError
        (no access, a malformed subject). On a sharded replica: its share of the records only."""
        evidence, subject, claims = item.evidence, item.subject, item.claims
        spec = self._catalogue.resource(evidence.resource)
        key_field = key_field_of(spec, evidence.key_field)
        if not subject:
            raise InvalidArgument(f"{evidence.subject}: must not be empty", field=evidence.subject)
        compiled = self._compile(spec, claims)
        touched = [c.field for c in claims] + ([key_field] if key_field != spec.key else [])
        self._policy.read(caller, spec, "verify", request.purpose, touched)
        version = self._cache.version(spec.name)
        try:
            outcome = verify_one(version, key_field, subject, compiled)  # checks the key only on a miss
        except InvalidArgument:
            problem = key_problem(spec, key_field, subject)
            raise InvalidArgument(f"{evidence.subject}: {problem}", field=evidence.subject) from None
        disputed = frozenset(self._disputed(spec.name, version, key_field, subject) & {c.field for c in claims})
        return Check(key_field, outcome.found, outcome.match, tuple(outcome.claims), disputed, version.watermark)

    def restrictions(self, request: CaseRequest, case_type: CaseType) -> list[Restriction]:
        """The joint restrictions on the case's entity in this replica's (share of the) credit list."""
        if not case_type.restricted_context:
            return []
        return restrictions_of(
            self._cache.version(CREDIT_LIST),
            restricted_subject(request, case_type),
            case_type.restricted_context,
            request.date,
        )

    @staticmethod
    def refused(item: Item, exc: HubError) -> EvidenceResult:
        return EvidenceResult(
            item.evidence,
            "cannot_determine",
            exc.message,
            item.subject,
            error_code=exc.code.name,
            claims=list(item.claims),
        )

    @staticmethod
    def judge(item: Item, check: Check, proof_shown: bool) -> EvidenceResult:
        """The item's outcome and reason from its verification."""
        evidence, subject, claims = item.evidence, item.subject, list(item.claims)
        held = check.found and check.match
        satisfied = held if evidence.expect == "match" else not held
        disputed = sorted(check.disputed)
        if disputed:
            if proof_shown:
                reason = f"{', '.join(disputed)} under a correction request; accepted on the applicant's proof"
                return EvidenceResult(evidence, "satisfied", reason, subject, check.watermark, disputed, claims=claims)
            return EvidenceResult(
                evidence,
                "cannot_determine",
                f"{', '.join(disputed)} under a correction request; ask the applicant for proof",
                subject,
                check.watermark,
                disputed,
                claims=claims,
            )
        if satisfied:
            reason = "no record matches" if evidence.expect == "absent" else "the record satisfies every claim"
        elif evidence.expect == "absent":
            reason = "a record matches: " + _describe(claims)
        elif not check.found:
            reason = f"no {evidence.resource} record for {check.key_field} {subject}"
        else:
            failed = [c for c, ok in zip(claims, check.claims, strict=True) if not ok]
            reason = "does not hold: " + _describe(failed)
        outcome: Literal["satisfied", "not_satisfied"] = "satisfied" if satisfied else "not_satisfied"
        return EvidenceResult(evidence, outcome, reason, subject, check.watermark, claims=claims)

    def _compile(self, spec: ResourceSpec, claims: tuple[Claim, ...]) -> list[Compiled]:
        """Compiled claims, reused while the resource's spec stays the same (case dates repeat)."""
        key = (spec.name, claims)
        hit = self._compiled.get(key)
        if hit is not None and hit[0] is spec:
            return hit[1]
        if len(self._compiled) >= 10_000:
            self._compiled.clear()
        compiled = compile_claims(spec, claims)
        self._compiled[key] = (spec, compiled)
        return compiled

    def _disputed(self, resource: str, version, key_field: str, subject: str) -> set[str]:
        if not self._corrections.any_open(resource):
            return set()
        if key_field == version.spec.key:
            return set(self._corrections.disputed(resource, subject))
        out: set[str] = set()
        key_column = version.key_column
        for row in version.rows_by(key_field, subject):
            out |= self._corrections.disputed(resource, key_column.value(row))
        return out


def restricted_subject(request: CaseRequest, case_type: CaseType) -> str:
    """The entity whose joint restrictions the case reports."""
    if case_type.restricted_subject == "applicant":
        return request.applicant
    return request.params.get(case_type.restricted_subject, "")


def _fill(template: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), template)


def _describe(claims: list[Claim]) -> str:
    return (
        "; ".join(
            f"{c.field} {c.op.value} {', '.join(c.values)}" + (" (or unset)" if c.or_unset else "") for c in claims
        )
        or "the record exists"
    )
