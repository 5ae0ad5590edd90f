"""The announcement topic (``_inspections``) held in memory on every replica.

Keys: ``plan:<id>`` (plan, commitment, officer pool), ``pool:<id>:<part>`` (the committed target pool
in parts), ``drawing:<id>`` (the draw began: every earlier record is applied), ``draw:<id>``,
``result:<plan>:<credit code>`` and ``alert:<id>``. Every record's digest and timestamp is kept too:
the draw's beacon is the last record before the draw time.
"""

from __future__ import annotations

from collections.abc import Sequence

from hub.inspections.draw import beacon_digest
from hub.kafka.keyed_state import KeyedState
from hub.records.change import Change

POOL_PART = 10_000  # credit codes per pool record: well under Kafka's message size


class InspectionStore(KeyedState):
    def __init__(self) -> None:
        super().__init__("inspections")
        self._log: list[tuple[int, int, str]] = []  # (timestamp ms, offset, digest), by offset

    def apply(self, changes: Sequence[Change]) -> None:
        log = list(self._log)
        for c in changes:
            if c.value is not None:
                log.append((c.timestamp_ms, c.offset, beacon_digest(c.key.encode(), c.value)))
        self._log = log
        super().apply(changes)

    def beacon_before(self, at_ms: int) -> tuple[int, str] | None:
        """(offset, digest) of the highest-offset record written before ``at_ms``."""
        before = [entry for entry in self._log if entry[0] < at_ms]
        if not before:
            return None
        offset, digest = max((o, d) for _, o, d in before)
        return offset, digest

    def plan(self, ident: str) -> dict | None:
        return self.values.get(f"plan:{ident}")

    def plans(self) -> list[dict]:
        return sorted(
            (v for k, v in self.values.items() if k.startswith("plan:")), key=lambda p: p["plan"]["filed_at_ms"]
        )

    def target_pool(self, ident: str, parts: int) -> list[str] | None:
        chunks = [self.values.get(f"pool:{ident}:{i}") for i in range(parts)]
        if any(c is None for c in chunks):
            return None
        return [code for c in chunks for code in c["targets"]]  # type: ignore[index]

    def draw(self, ident: str) -> dict | None:
        return self.values.get(f"draw:{ident}")

    def draws(self) -> list[dict]:
        return [v for k, v in self.values.items() if k.startswith("draw:")]

    def result(self, plan_id: str, credit_code: str) -> dict | None:
        return self.values.get(f"result:{plan_id}:{credit_code}")

    def results(self, plan_id: str = "") -> list[dict]:
        prefix = f"result:{plan_id}:" if plan_id else "result:"
        return sorted((v for k, v in self.values.items() if k.startswith(prefix)), key=lambda r: r["recorded_at_ms"])

    def published(self) -> list[dict]:
        """Published results, newest first."""
        found = [r for r in self.results() if r["published_at_ms"]]
        return sorted(found, key=lambda r: (r["published_at_ms"], r["id"]), reverse=True)

    def alerts(self) -> list[dict]:
        return sorted((v for k, v in self.values.items() if k.startswith("alert:")), key=lambda a: a["due_ms"])


def material(store: InspectionStore, ident: str) -> dict | None:
    """Everything published about a plan, in the form ``hub draws verify`` and docs/inspections.md read."""
    entry = store.plan(ident)
    if entry is None:
        return None
    pool = store.target_pool(ident, entry["pool_parts"])
    drawn = store.draw(ident)
    return {
        "format": "hub.inspections.draw.v1",
        "plan": entry["plan"],
        "items": entry["items"],
        "commitment": entry["commitment"],
        "target_pool": pool or [],
        "officer_pool": entry["officer_pool"],
        "draw": None
        if drawn is None
        else {k: drawn[k] for k in ("seed", "beacon", "beacon_offset", "root", "conflicts", "targets", "drawn_at_ms")},
    }
