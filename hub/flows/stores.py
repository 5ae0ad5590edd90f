"""The flows' replicated state, held in memory on every replica: compacted topics, and the case ledger."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Collection, Sequence
from typing import NamedTuple, TypeVar

import numpy as np
import orjson

from hub.cache.columns import Buffer
from hub.cache.heap import dict_bytes, object_bytes
from hub.flows.model import Alert, CorrectionRequest, Notice
from hub.kafka.directory import DIRECTORY, WriterDirectory, announcement
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


class NoticeStore:
    """Notices (``notice:<id>``) and their alerts (``alert:<id>``): the notices topic (one partition), as typed records.

    Unlike the small state topics (:class:`KeyedState`) it keeps no decoded JSON beside the records, and
    the few-valued strings (department, scope item, permit, state, ...) are shared: a city's 340,000
    registrations make ~270,000 notices, which took ~1.6 KiB each as JSON dicts beside the records, and
    take ~0.6 KiB as records alone (docs/benchmarks.md). Written by the feeder thread; readers on the event
    loop see one consistent pair of dicts (replaced, never changed in place).
    """

    partitions = 1
    name = "notices"

    def __init__(self) -> None:
        self._notices: dict[str, Notice] = {}
        self._alerts: dict[str, Alert] = {}
        self._entities: set[str] = set()  # credit codes that have had a notice
        self._position = 0

    def positions(self) -> tuple[int, ...]:
        return (self._position,)

    def apply(self, changes: Sequence[Change]) -> None:
        notices, alerts = dict(self._notices), dict(self._alerts)  # copy on write
        for c in changes:
            kind, _, ident = c.key.partition(":")
            if kind == "notice":
                notice = _record(self.name, c, Notice, _NOTICE_SHARED)
                if notice is not None and notice.id == ident:
                    ident = notice.id  # one string for the key and the record
                _put(notices, ident, notice)
                if notice is not None:
                    self._entities.add(notice.credit_code)
            elif kind == "alert":
                _put(alerts, ident, _record(self.name, c, Alert, _ALERT_SHARED))
        self._notices, self._alerts = notices, alerts
        self._position = max(self._position, max(c.offset for c in changes) + 1)

    def mark_caught_up(self, at_ms: int) -> None:
        pass

    def settle(self) -> bool:
        return False

    def has_notices_for(self, credit_code: str) -> bool:
        return credit_code in self._entities

    @property
    def nbytes(self) -> int:
        """Roughly what the notices take: the dicts, the entity set, and per notice one sample's record with
        the strings and numbers of its own (the shared strings are counted once, i.e. not at all)."""
        notices = self._notices
        size = sys.getsizeof(notices) + sys.getsizeof(self._alerts) + sys.getsizeof(self._entities)
        try:
            sample = next(iter(notices.values()))
        except (StopIteration, RuntimeError):  # none, or replaced while we looked
            return size
        own = object_bytes(sample) + sum(object_bytes(getattr(sample, name)) for name in _NOTICE_OWN)
        return size + len(notices) * own

    def notice(self, ident: str) -> Notice | None:
        return self._notices.get(ident)

    def notices(self) -> list[Notice]:
        return sorted(self._notices.values(), key=lambda n: n.created_at_ms)

    def has_alert(self, ident: str) -> bool:
        return ident in self._alerts

    def alerts(self) -> list[Alert]:
        return sorted(self._alerts.values(), key=lambda a: a.raised_at_ms)


# Fields with a handful of values across all notices: one shared string each instead of one per notice.
_NOTICE_SHARED = ("department", "scope_item", "permit", "reason", "state", "claimed_by", "feedback")
_ALERT_SHARED = ("department", "kind")
# Fields a notice has a value of its own in (the rest are shared strings or small numbers).
_NOTICE_OWN = ("id", "credit_code", "entity_name", "created_at_ms", "registered_at_ms", "claim_due_ms")


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
    return None if value is None else _typed(state.name, key, value, record)


def _record(store: str, change: Change, record: Callable[..., R], shared: Sequence[str]) -> R | None:
    """The record a change writes, its ``shared`` strings interned: None for a tombstone, or (logged) if
    the value is not such a record."""
    if change.value is None:
        return None
    try:
        value = orjson.loads(change.value)
    except orjson.JSONDecodeError:
        log.error("%s: undecodable value for %s at offset %d", store, change.key, change.offset)
        return None
    if isinstance(value, dict):
        value.update((name, sys.intern(value[name])) for name in shared if isinstance(value.get(name), str))
    return _typed(store, change.key, value, record)


def _typed(store: str, key: str, value: dict, record: Callable[..., R]) -> R | None:
    try:
        return record(**value)
    except TypeError as err:  # a field missing or unknown: skipped, as an undecodable value is
        log.error("%s: %s is not a valid record: %s", store, key, err)
        return None


def _put(records: dict[str, R], ident: str, record: R | None) -> None:
    if record is None:
        records.pop(ident, None)
    else:
        records[ident] = record


class Recorded(NamedTuple):
    """A recorded case number: what was submitted (the request digest) and where its event is."""

    digest: str
    partition: int
    offset: int


_ROW = np.dtype([("digest", "V16"), ("partition", "<i4"), ("offset", "<i8")])


class CaseLedger:
    """Recorded cases (the cases topic, keyed by case number, several partitions), so a resubmitted case
    is answered from its record instead of being resolved and counted again.

    A number's first event is its record: a later event under it is a duplicate. Per number the ledger
    keeps only what every submission is checked against, the request digest, and where the event is;
    the recorded result is read back from the topic when a case is resubmitted (hub.flows.case_events).
    Holding the results made every worker keep ~500 MiB at a city year (docs/benchmarks.md). The rows
    are one NumPy table (28 bytes each) behind a dict of case number → row. Written by a reader thread
    (the feeder at start-up, then the calls' catch-up) and by this replica's own acknowledged writes,
    read without a lock (a row is complete before its number is in the dict, and the table grows by
    copying before it is replaced).

    Partition 0 is the topic's directory (hub.kafka.directory): writers announce there which partitions
    they write, so a catch-up names only those (:meth:`read_plan`).
    """

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self._directory = WriterDirectory()
        self._rows: dict[str, int] = {}
        self._table = Buffer(_ROW)
        self._next = [0] * partitions
        self._own: list[list[tuple[int, int]]] = [[] for _ in range(partitions)]  # unread own offsets [from, to)
        self._lock = threading.Lock()

    def __contains__(self, case_number: str) -> bool:
        return case_number in self._rows

    def get(self, case_number: str) -> Recorded | None:
        row = self._rows.get(case_number)
        if row is None:
            return None
        digest, partition, offset = self._table.arr[row].item()
        return Recorded(digest.hex(), partition, offset)

    def record(self, cases: Sequence[tuple[str, Recorded]]) -> None:
        """This replica's own acknowledged writes, known before a read brings them back.

        Once the ledger's position in a partition reaches a run of them, it moves past the run: no other
        writer's record lies inside it, so the next catch-up need not read this replica's writes again
        (on tansu every partition read lists the partition's whole log). A position may stop inside a
        record batch (calls share batches); a read from there gets the batch's remaining records."""
        rows = [(number, bytes.fromhex(r.digest), r.partition, r.offset) for number, r in cases]
        runs: dict[int, list[tuple[int, int]]] = {}
        for partition, offset in sorted({(r.partition, r.offset) for _, r in cases if r.offset >= 0}):
            own = runs.setdefault(partition, [])
            if own and own[-1][1] == offset:
                own[-1] = (own[-1][0], offset + 1)
            else:
                own.append((offset, offset + 1))
        with self._lock:  # rows before positions, as in apply
            self._insert(rows)
            for partition, own in runs.items():
                self._own[partition].extend(own)
                self._skip_own(partition)

    @property
    def nbytes(self) -> int:
        return self._table.nbytes + dict_bytes(self._rows)

    def positions(self) -> tuple[int, ...]:
        return tuple(self._next)

    def read_plan(self) -> tuple[dict[int, int], int]:
        """Where a catch-up beginning now reads from, in the partitions it must name; and what to hand
        :meth:`read_done` once it has finished."""
        with self._lock:
            return self._from(self._directory.wanted()), self._directory.applied

    def announced(self, named: Collection[int]) -> dict[int, int]:
        """Partitions a catch-up that names ``named`` must also read, announced since it began."""
        with self._lock:
            return self._from(self._directory.wanted().difference(named))

    def read_done(self, began_at: int) -> None:
        """The catch-up that :meth:`read_plan` gave ``began_at`` read every partition it named to its end."""
        with self._lock:
            self._directory.read_done(began_at)

    def _from(self, partitions: Collection[int]) -> dict[int, int]:
        return {p: self._next[p] for p in partitions if p < self.partitions}

    def apply(self, changes: Sequence[Change]) -> None:
        found = []
        announcements = []
        for c in changes:
            if c.partition == DIRECTORY and (announced := announcement(c.value)) is not None:
                announcements.append(announced)
            elif c.value is not None and c.key not in self._rows:  # a known number's later event is no record
                try:
                    digest = bytes.fromhex(orjson.loads(c.value)["request_digest"])
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    digest = b""
                if len(digest) == _ROW["digest"].itemsize:  # else written before cases recorded their digest
                    found.append((c.key, digest, c.partition, c.offset))
        with self._lock:  # rows before positions: a catch-up that starts past them must find them
            self._insert(found)
            for writer, partitions in announcements:
                if max(partitions, default=0) >= self.partitions:
                    log.error(
                        "%s announces partitions %s; the cases topic has %d",
                        writer,
                        sorted(partitions),
                        self.partitions,
                    )
                self._directory.apply(writer, partitions)
            for c in changes:
                self._next[c.partition] = max(self._next[c.partition], c.offset + 1)
            for partition in {c.partition for c in changes}:
                self._skip_own(partition)

    def _skip_own(self, partition: int) -> None:
        """Moves the position past this replica's own runs that it has reached; forgets runs behind it."""
        own = self._own[partition]
        if not own:
            return
        own.sort()
        at = self._next[partition]
        while own and own[0][0] <= at:
            at = max(at, own.pop(0)[1])
        self._next[partition] = at

    def _insert(self, cases: Sequence[tuple[str, bytes, int, int]]) -> None:
        fresh: dict[str, tuple[bytes, int, int]] = {}
        for number, digest, partition, offset in cases:
            if number not in self._rows:
                fresh.setdefault(number, (digest, partition, offset))  # a number's first, within a batch too
        if fresh:
            first = self._table.n
            self._table.extend(np.array(list(fresh.values()), dtype=_ROW))
            self._rows.update(zip(fresh, range(first, first + len(fresh)), strict=True))

    def mark_caught_up(self, at_ms: int) -> None:
        pass

    def settle(self) -> bool:
        return False
