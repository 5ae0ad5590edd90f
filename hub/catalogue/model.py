"""Typed catalogue entries, loaded from the declarative ``resources.toml``.

A resource is one shared dataset, e.g. ``population.resident``. Its entry
declares the provider, the fields and their types, the key, the sharing class
and the Kafka topic layout. Every later part of the hub (validation, the
cache, governance) reads the same entry.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.errors import UnknownResource

FieldType = Literal["string", "code", "date", "int", "decimal", "bool", "list"]
SharingClass = Literal["unconditional", "conditional", "not_shared"]
SharingMethod = Literal["verification", "lookup", "subscription", "bulk"]
MaskStyle = Literal["", "id", "name", "address", "all"]
KeyFormat = Literal["", "resident_id", "credit_code", "division_code"]

BUILTIN_PATH = Path(__file__).with_name("resources.toml")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Department(_Frozen):
    code: str
    name: str
    title: str


class FieldSpec(_Frozen):
    name: str
    type: FieldType
    title: str
    required: bool = False
    sensitive: bool = False
    # How a sensitive value is shown to a caller whose grant does not cover it.
    mask: MaskStyle = ""
    # For "code" fields: the closed set of values, if there is one.
    allowed: tuple[str, ...] = ()
    format: KeyFormat = ""
    # A non-unique index: verify or look up by this field (e.g. credit_code).
    indexed: bool = False

    @model_validator(mode="after")
    def _check(self) -> FieldSpec:
        if self.allowed and self.type != "code":
            raise ValueError(f"field {self.name}: 'allowed' only applies to code fields")
        if self.sensitive and not self.mask:
            object.__setattr__(self, "mask", "all")
        return self


class ResourceSpec(_Frozen):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
    code: str
    title: str
    provider: str
    summary: str
    key: str
    fields: tuple[FieldSpec, ...]
    sharing_class: SharingClass
    sharing_methods: tuple[SharingMethod, ...] = ("verification",)
    conditions: str = ""
    legal_basis: str = ""
    open_data: bool = False
    update_frequency: Literal["realtime", "daily", "weekly", "monthly", "yearly"] = "realtime"
    published_on: dt.date
    related: tuple[str, ...] = ()
    partitions: int = Field(default=3, ge=1, le=256)
    schema_version: int = 1
    # How each replica's cache indexes the keys (hub.cache.key_index): "dict", ~150 bytes a key and a
    # ~0.05 µs lookup; "hashed", 16 bytes a key and a ~1.4 µs lookup, for a large resource read mostly
    # through an indexed field.
    key_index: Literal["dict", "hashed"] = "dict"

    @model_validator(mode="after")
    def _check(self) -> ResourceSpec:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: duplicate field names")
        if self.key not in names:
            raise ValueError(f"{self.name}: key {self.key!r} is not a field")
        key_field = self.field(self.key)
        if key_field.type not in ("string", "code") or not key_field.required:
            raise ValueError(f"{self.name}: key {self.key!r} must be a required string field")
        if self.sharing_class == "not_shared" and not self.legal_basis:
            raise ValueError(f"{self.name}: a 'not_shared' resource must name its legal basis")
        return self

    @cached_property
    def by_name(self) -> dict[str, FieldSpec]:
        return {f.name: f for f in self.fields}

    def field(self, name: str) -> FieldSpec:
        return self.by_name[name]

    @cached_property
    def indexed_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.indexed)

    def json_schema(self) -> dict:
        """The JSON Schema of a record value on the topic, for non-hub consumers."""
        types: dict[str, dict[str, object]] = {
            "string": {"type": "string"},
            "code": {"type": "string"},
            "date": {"type": "string", "format": "date"},
            "int": {"type": "integer"},
            "decimal": {"type": "number"},
            "bool": {"type": "boolean"},
            "list": {"type": "array", "items": {"type": "string"}},
        }
        props = {}
        for f in self.fields:
            prop = dict(types[f.type], title=f.title)
            if f.allowed:
                prop["enum"] = list(f.allowed)
            props[f.name] = prop if f.required else {"anyOf": [prop, {"type": "null"}]}
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"{self.name} v{self.schema_version}",
            "type": "object",
            "properties": props,
            "required": [f.name for f in self.fields if f.required],
            "additionalProperties": False,
        }


class Catalogue(_Frozen):
    """The resources and departments the hub knows, by name."""

    departments: tuple[Department, ...]
    resources: tuple[ResourceSpec, ...]

    @model_validator(mode="after")
    def _check(self) -> Catalogue:
        # One department or resource declared twice splits its data between two topics and two providers.
        for kind, values in (
            ("department code", [d.code for d in self.departments]),
            ("department name", [d.name for d in self.departments]),
            ("resource name", [r.name for r in self.resources]),
            ("resource code", [r.code for r in self.resources]),
        ):
            repeated = sorted({v for v in values if values.count(v) > 1})
            if repeated:
                raise ValueError(f"{kind}s must be unique: {', '.join(repeated)} appear more than once")
        codes = {d.code for d in self.departments}
        for r in self.resources:
            if r.provider not in codes:
                raise ValueError(f"{r.name}: provider {r.provider!r} is not a department")
            for other in r.related:
                if other not in {x.name for x in self.resources}:
                    raise ValueError(f"{r.name}: related resource {other!r} is not in the catalogue")
        return self

    @cached_property
    def _by_name(self) -> dict[str, ResourceSpec]:
        return {r.name: r for r in self.resources}

    def resource(self, name: str) -> ResourceSpec:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownResource(name) from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def department(self, code: str) -> Department | None:
        return next((d for d in self.departments if d.code == code), None)

    @classmethod
    def from_toml(cls, path: Path) -> Catalogue:
        with path.open("rb") as f:
            return cls.model_validate(tomllib.load(f))


def load_builtin() -> Catalogue:
    """The catalogue shipped with the hub: the city's base resources."""
    return Catalogue.from_toml(BUILTIN_PATH)


def load_catalogue(path: Path | None) -> Catalogue:
    """The catalogue TOML at ``path`` (the catalogue_path setting), or the built-in one."""
    return Catalogue.from_toml(path) if path else load_builtin()
