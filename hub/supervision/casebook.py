"""Every replica's view of the cases: their states, alerts and published decisions, from the steps topic.

Fed by the cache's feeder like the hub's other state (so a Report waits for its own write with
``cache.reached``). The events themselves are kept as JSON and turned into an Arrow table on demand
for the monthly report.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

import orjson
import pyarrow as pa
import pyarrow.json as pajson

from hub.records.change import Change
from hub.supervision.alerts import AlertEngine, SupervisionAlert
from hub.supervision.publicity import PublicityFeed
from hub.supervision.steps import CaseState, StepEvent

log = logging.getLogger(__name__)
_CONVERT_EVERY = 50_000  # events kept as JSON before they are converted to Arrow

# The report's columns of a step event, typed (the rest of the event stays on the topic).
EVENT_SCHEMA = pa.schema(
    [
        ("case_number", pa.string()),
        ("item_code", pa.string()),
        ("category", pa.string()),
        ("department", pa.string()),
        ("division", pa.string()),
        ("step", pa.string()),
        ("at_ms", pa.int64()),
        ("step_days", pa.int32()),
        ("case_days", pa.int32()),
        ("promised_days", pa.int32()),
        ("closes", pa.bool_()),
    ]
)


class CaseBook:
    """A FeedTarget for the steps topic."""

    def __init__(
        self,
        partitions: int,
        engine: AlertEngine,
        publicity: PublicityFeed,
        on_alert: Callable[[SupervisionAlert], None] | None = None,
    ) -> None:
        self.partitions = partitions
        self.engine = engine
        self.publicity = publicity
        self._on_alert = on_alert
        self.cases: dict[str, CaseState] = {}
        self._waiting: dict[str, CaseState] = {}  # cases with a deadline still to pass
        self._positions = [0] * partitions
        self._lock = threading.Lock()
        self._pending: list[bytes] = []
        self._tables: list[pa.Table] = []

    def positions(self) -> tuple[int, ...]:
        return tuple(self._positions)

    def apply(self, changes: Sequence[Change]) -> None:
        raised: list[SupervisionAlert] = []
        with self._lock:
            for c in changes:
                self._positions[c.partition] = max(self._positions[c.partition], c.offset + 1)
                if c.value is None:
                    continue
                try:
                    event = StepEvent(**orjson.loads(c.value))
                except (orjson.JSONDecodeError, TypeError) as err:
                    log.error("steps: undecodable event for %s at offset %d: %s", c.key, c.offset, err)
                    continue
                case = self.cases.get(event.case_number)
                if case is None:
                    case = self.cases[event.case_number] = CaseState.opened(event)
                elif event.seq < case.seq:
                    continue  # a duplicate of an event already applied (a retried produce)
                case.advance(event)
                raised += self.engine.on_event(case, event)
                self.publicity.on_event(case, event)
                if self.engine.waiting(case):
                    self._waiting[case.case_number] = case
                else:
                    self._waiting.pop(case.case_number, None)
                self._pending.append(c.value)
            if len(self._pending) >= _CONVERT_EVERY:
                self._convert()
        self._deliver(raised)

    def sweep(self, now_ms: int | None = None) -> list[SupervisionAlert]:
        """Raises the deadlines that passed with nothing reported (called periodically)."""
        now_ms = now_ms or int(time.time() * 1000)
        with self._lock:
            raised = [a for case in list(self._waiting.values()) for a in self.engine.on_deadlines(case, now_ms)]
        self._deliver(raised)
        return raised

    def _deliver(self, raised: list[SupervisionAlert]) -> None:
        if self._on_alert is not None:
            for alert in raised:
                self._on_alert(alert)

    def case(self, case_number: str) -> CaseState | None:
        return self.cases.get(case_number)

    def alerts(self) -> list[SupervisionAlert]:
        with self._lock:
            return sorted(self.engine.alerts.values(), key=lambda a: (a.raised_at_ms, a.id))

    def events(self) -> pa.Table:
        """Every step event so far, as Arrow."""
        with self._lock:
            self._convert()
            tables = list(self._tables)
        return pa.concat_tables(tables) if tables else EVENT_SCHEMA.empty_table()

    def _convert(self) -> None:
        """The pending events into Arrow (pyarrow's JSON reader): a tenth of their size as JSON."""
        if self._pending:
            options = pajson.ParseOptions(explicit_schema=EVENT_SCHEMA, unexpected_field_behavior="ignore")
            self._tables.append(pajson.read_json(pa.py_buffer(b"\n".join(self._pending)), parse_options=options))
            self._pending = []

    def mark_caught_up(self, at_ms: int) -> None:
        pass

    def settle(self) -> bool:
        return False
