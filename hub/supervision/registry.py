"""The power list and the officers' certificates, read from their catalogue resources in the cache.

``power.item`` and ``enforcement.officer`` are published by the Justice Bureau like any other
resource. The certificate check sits behind :class:`OfficerRegistry` so another registry (the
random-inspection officer pool) can stand in for the catalogue resource.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from hub.cache.replica import ReplicaCache
from hub.supervision.powers import PowerItem

POWER_RESOURCE = "power.item"
OFFICER_RESOURCE = "enforcement.officer"


class OfficerRegistry(Protocol):
    def problem(self, certificate_no: str, department: str, on: dt.date) -> str | None:
        """Why this certificate may not act for ``department`` on ``on``; None when it may."""


class CachedOfficers:
    def __init__(self, cache: ReplicaCache) -> None:
        self._cache = cache

    def problem(self, certificate_no: str, department: str, on: dt.date) -> str | None:
        version = self._cache.version(OFFICER_RESOURCE)
        row = version.row(certificate_no)
        if row < 0:
            return f"no enforcement certificate {certificate_no!r} in {OFFICER_RESOURCE}"
        officer = version.record(row, ["department", "valid_to", "status"])
        if officer["status"] != "valid":
            return f"certificate {certificate_no} is {officer['status']}"
        if officer["valid_to"] < on.isoformat():
            return f"certificate {certificate_no} expired on {officer['valid_to']}"
        if officer["department"] != department:
            return f"certificate {certificate_no} is of {officer['department']}, not {department}"
        return None

    def officers(self) -> list[dict]:
        """Every officer with a valid certificate (for the publicity pages)."""
        version = self._cache.version(OFFICER_RESOURCE)
        rows = [version.record(int(r)) for r in version.live_rows()]
        return [r for r in rows if r["status"] == "valid"]


class CachedPowerList:
    """Items parsed once per cache version."""

    def __init__(self, cache: ReplicaCache) -> None:
        self._cache = cache
        self._parsed: dict[str, PowerItem] = {}
        self._version: object = None

    def _current(self) -> dict[str, PowerItem]:
        version = self._cache.version(POWER_RESOURCE)
        if version is not self._version:
            self._parsed, self._version = {}, version
        return self._parsed

    def item(self, code: str) -> PowerItem | None:
        parsed = self._current()
        found = parsed.get(code)
        if found is None:
            version = self._cache.version(POWER_RESOURCE)
            row = version.row(code)
            if row < 0:
                return None
            found = parsed[code] = PowerItem.from_record(version.record(row))
        return found

    def items(self) -> list[PowerItem]:
        version = self._cache.version(POWER_RESOURCE)
        return [PowerItem.from_record(version.record(int(r))) for r in version.live_rows()]
