"""The flows' replicated state, each a compacted topic held in memory on every replica."""

from __future__ import annotations

import time

from hub.kafka.keyed_state import KeyedState


class SubscriptionStore(KeyedState):
    """Acknowledged cursors of named subscriptions: ``<department>:<name>`` → resource and cursor."""

    def __init__(self) -> None:
        super().__init__("subscriptions")

    def cursor(self, department: str, name: str, resource: str) -> str | None:
        value = self.values.get(f"{department}:{name}")
        return value["cursor"] if value and value.get("resource") == resource else None


class NoticeStore(KeyedState):
    """Notices (``notice:<id>``) and their alerts (``alert:<id>``)."""

    def __init__(self) -> None:
        super().__init__("notices")
        self._entities: set[str] = set()  # credit codes that have had a notice

    def on_applied(self, keys: list[str]) -> None:
        values = self.values
        self._entities.update(values[k]["credit_code"] for k in keys if k.startswith("notice:") and k in values)

    def has_notices_for(self, credit_code: str) -> bool:
        return credit_code in self._entities

    def notice(self, ident: str) -> dict | None:
        return self.values.get(f"notice:{ident}")

    def notices(self) -> list[dict]:
        return sorted((v for k, v in self.values.items() if k.startswith("notice:")), key=lambda n: n["created_at_ms"])

    def alerts(self) -> list[dict]:
        return sorted((v for k, v in self.values.items() if k.startswith("alert:")), key=lambda a: a["raised_at_ms"])


class CorrectionStore(KeyedState):
    """Correction requests (``correction:<id>``); open ones are indexed by (resource, key)."""

    def __init__(self) -> None:
        super().__init__("corrections")
        self._open: dict[tuple[str, str], tuple[dict, ...]] = {}
        self._open_resources: frozenset[str] = frozenset()

    def on_applied(self, keys: list[str]) -> None:
        open_ = {}
        for value in self.values.values():
            if value.get("state") == "open":
                pair = (value["resource"], value["key"])
                open_[pair] = (*open_.get(pair, ()), value)
        self._open = open_
        self._open_resources = frozenset(resource for resource, _ in open_)

    def any_open(self, resource: str) -> bool:
        """Whether any record of ``resource`` is disputed: lets readers skip per-row checks."""
        return resource in self._open_resources

    def request(self, ident: str) -> dict | None:
        return self.values.get(f"correction:{ident}")

    def requests(self) -> list[dict]:
        return sorted(self.values.values(), key=lambda c: c["filed_at_ms"])

    def disputed(self, resource: str, key: str) -> frozenset[str]:
        """Fields of this record under an open correction request."""
        found = self._open.get((resource, key))
        return frozenset(c["field"] for c in found) if found else frozenset()

    def overdue(self, now_ms: int | None = None) -> list[dict]:
        now = now_ms or int(time.time() * 1000)
        return [c for c in self.requests() if c["state"] == "open" and c["due_ms"] < now]
