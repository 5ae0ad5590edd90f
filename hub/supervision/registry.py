"""The power list, read from its catalogue resource in the cache.

``power.item`` is published by the Justice Bureau like any other resource; the officers who take a
case's steps are checked against the same bureau's ``enforcement.officer`` (:mod:`hub.officers`).
"""

from __future__ import annotations

from hub.cache.replica import ReplicaCache
from hub.supervision.powers import PowerItem

POWER_RESOURCE = "power.item"


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
