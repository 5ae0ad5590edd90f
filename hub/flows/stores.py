"""The flows' replicated state, each a compacted topic held in memory on every replica."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

import orjson

from hub.flows.model import Alert, CorrectionRequest, Notice
from hub.kafka.keyed_state import KeyedState
from hub.records.change import Change

log = logging.getLogger(__name__)

R = TypeVar("R")


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
        self._notices: dict[str, Notice] = {}
        self._alerts: dict[str, Alert] = {}
        self._entities: set[str] = set()  # credit codes that have had a notice

    def on_applied(self, keys: list[str]) -> None:
        notices, alerts = dict(self._notices), dict(self._alerts)  # copy on write, as the values are
        for key in keys:
            kind, _, ident = key.partition(":")
            if kind == "notice":
                notice = _read(self, key, Notice)
                _put(notices, ident, notice)
                if notice is not None:
                    self._entities.add(notice.credit_code)
            elif kind == "alert":
                _put(alerts, ident, _read(self, key, Alert))
        self._notices, self._alerts = notices, alerts

    def has_notices_for(self, credit_code: str) -> bool:
        return credit_code in self._entities

    def notice(self, ident: str) -> Notice | None:
        return self._notices.get(ident)

    def notices(self) -> list[Notice]:
        return sorted(self._notices.values(), key=lambda n: n.created_at_ms)

    def has_alert(self, ident: str) -> bool:
        return ident in self._alerts

    def alerts(self) -> list[Alert]:
        return sorted(self._alerts.values(), key=lambda a: a.raised_at_ms)


class CorrectionStore(KeyedState):
    """Correction requests (``correction:<id>``); open ones are indexed by (resource, key)."""

    def __init__(self) -> None:
        super().__init__("corrections")
        self._requests: dict[str, CorrectionRequest] = {}
        self._open: dict[tuple[str, str], tuple[CorrectionRequest, ...]] = {}
        self._open_resources: frozenset[str] = frozenset()

    def on_applied(self, keys: list[str]) -> None:
        requests = dict(self._requests)
        for key in keys:
            _put(requests, key.removeprefix("correction:"), _read(self, key, CorrectionRequest))
        open_: dict[tuple[str, str], tuple[CorrectionRequest, ...]] = {}
        for c in requests.values():
            if c.state == "open":
                pair = (c.resource, c.key)
                open_[pair] = (*open_.get(pair, ()), c)
        self._requests, self._open = requests, open_
        self._open_resources = frozenset(resource for resource, _ in open_)

    def any_open(self, resource: str) -> bool:
        """Whether any record of ``resource`` is disputed: lets readers skip per-row checks."""
        return resource in self._open_resources

    def request(self, ident: str) -> CorrectionRequest | None:
        return self._requests.get(ident)

    def requests(self) -> list[CorrectionRequest]:
        return sorted(self._requests.values(), key=lambda c: c.filed_at_ms)

    def disputed(self, resource: str, key: str) -> frozenset[str]:
        """Fields of this record under an open correction request."""
        found = self._open.get((resource, key))
        return frozenset(c.field for c in found) if found else frozenset()


def _read(state: KeyedState, key: str, record: Callable[..., R]) -> R | None:
    """The record now at ``key``: None once deleted, or (logged) if the value is not such a record."""
    value = state.values.get(key)
    if value is None:
        return None
    try:
        return record(**value)
    except TypeError as err:  # a field missing or unknown: skipped, as an undecodable value is
        log.error("%s: %s is not a valid record: %s", state.name, key, err)
        return None


def _put(records: dict[str, R], ident: str, record: R | None) -> None:
    if record is None:
        records.pop(ident, None)
    else:
        records[ident] = record


class CaseLedger(KeyedState):
    """Recorded cases (the cases topic, keyed by case number, several partitions): what was submitted
    (a digest) and the result answered, so a resubmitted case is answered from its record instead of
    being resolved and counted again."""

    def __init__(self, partitions: int) -> None:
        super().__init__("cases")
        self.partitions = partitions
        self.recorded: dict[str, tuple[str, bytes]] = {}
        self._next = [0] * partitions

    def positions(self) -> tuple[int, ...]:
        return tuple(self._next)

    def record(self, case_number: str, digest: str, result: bytes) -> None:
        """This replica's own acknowledged write, known before the feeder brings it back."""
        self.recorded[case_number] = (digest, result)

    def apply(self, changes: Sequence[Change]) -> None:
        for c in changes:
            if c.value is not None:
                try:
                    event = orjson.loads(c.value)
                    # The first event of a number is its record: a later one is a duplicate of it.
                    self.recorded.setdefault(c.key, (event["request_digest"], base64.b64decode(event["result"])))
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    pass  # an event written before cases recorded their digest: not resubmittable
            self._next[c.partition] = max(self._next[c.partition], c.offset + 1)
