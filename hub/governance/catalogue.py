"""The managed catalogue: versioned entries in a compacted Kafka topic, so every replica agrees.

Keys are ``resource:<name>`` and ``department:<code>``; a value holds the entry, its version,
who changed it and when. The built-in ``resources.toml`` seeds entries the topic does not have.
Offers the same reads as :class:`hub.catalogue.model.Catalogue`.
"""

from __future__ import annotations

import logging
import time

from hub.catalogue.model import Catalogue, Department, ResourceSpec
from hub.errors import UnknownResource
from hub.kafka.keyed_state import KeyedState

log = logging.getLogger(__name__)


def resource_key(name: str) -> str:
    return f"resource:{name}"


def department_key(code: str) -> str:
    return f"department:{code}"


def entry(payload: dict, version: int, by: str) -> dict:
    return {"version": version, "by": by, "at_ms": int(time.time() * 1000), "entry": payload}


class CatalogueStore(KeyedState):
    def __init__(self) -> None:
        super().__init__("catalogue")
        self._resources: dict[str, ResourceSpec] = {}
        self._departments: dict[str, Department] = {}
        self._versions: dict[str, int] = {}

    def on_applied(self, keys: list[str]) -> None:
        resources, departments, versions = dict(self._resources), dict(self._departments), dict(self._versions)
        for key in keys:
            value = self.values.get(key)
            kind, _, name = key.partition(":")
            if value is None:
                (resources if kind == "resource" else departments).pop(name, None)
                versions.pop(key, None)
                continue
            try:
                if kind == "resource":
                    resources[name] = ResourceSpec.model_validate(value["entry"])
                elif kind == "department":
                    departments[name] = Department.model_validate(value["entry"])
                versions[key] = int(value["version"])
            except (ValueError, KeyError) as exc:
                log.error(
                    "catalogue entry %s v%s is invalid, keeping the previous one: %s", key, value.get("version"), exc
                )
        self._resources, self._departments, self._versions = resources, departments, versions

    # -- reads (as Catalogue) --------------------------------------------------------------------

    @property
    def resources(self) -> tuple[ResourceSpec, ...]:
        return tuple(self._resources.values())

    @property
    def departments(self) -> tuple[Department, ...]:
        return tuple(self._departments.values())

    def resource(self, name: str) -> ResourceSpec:
        try:
            return self._resources[name]
        except KeyError:
            raise UnknownResource(name) from None

    def __contains__(self, name: object) -> bool:
        return name in self._resources

    def department(self, code: str) -> Department | None:
        return self._departments.get(code)

    def is_registered(self, code: str) -> bool:
        return code in self._departments

    def version(self, key: str) -> int:
        return self._versions.get(key, 0)

    def missing_from(self, seed: Catalogue) -> list[tuple[str, dict]]:
        """Seed entries this catalogue does not have yet, as (key, value) to produce."""
        out = []
        for d in seed.departments:
            if d.code not in self._departments:
                out.append((department_key(d.code), entry(d.model_dump(mode="json"), 1, "seed")))
        for r in seed.resources:
            if r.name not in self._resources:
                out.append((resource_key(r.name), entry(r.model_dump(mode="json"), 1, "seed")))
        return out
