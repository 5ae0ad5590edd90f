"""Notices: from a market registration to the departments whose permit it needs.

:class:`NoticeEngine` follows the market-entity topic in a consumer group, so exactly one replica
owns each partition and creates its notices (committed after the notices are acknowledged: at
least once). A notice's id is (entity, scope item, department), so a replay creates nothing twice.
Claims and feedback are written by whichever replica the department calls. Overdue claims and
feedback raise alerts; an alert's id and content are deterministic, so every replica may check.
"""

from __future__ import annotations

import logging
import threading
import time
import tomllib
from pathlib import Path

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition
from pydantic import BaseModel, ConfigDict

from hub.flows.stores import NoticeStore
from hub.kafka.clients import consume_ready, consumer_config

log = logging.getLogger(__name__)

RULES_PATH = Path(__file__).with_name("notice_rules.toml")


class NoticeRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    item: str
    text: str
    permit: str
    departments: tuple[str, ...]


def load_rules(path: Path = RULES_PATH) -> dict[str, NoticeRule]:
    with path.open("rb") as f:
        return {r.item: r for r in (NoticeRule.model_validate(x) for x in tomllib.load(f)["rules"])}


def notice_id(credit_code: str, item: str, department: str) -> str:
    return f"{credit_code}:{item}:{department}"


class NoticeEngine:
    def __init__(
        self,
        bootstrap: str,
        market_topic: str,
        notices_topic: str,
        group: str,
        store: NoticeStore,
        rules: dict[str, NoticeRule],
        producer_config: dict,
        claim_limit_s: float,
        consumer_extra: dict | None = None,
    ) -> None:
        self._market_topic = market_topic
        self._notices_topic = notices_topic
        self._store = store
        self._rules = rules
        self._claim_limit_ms = int(claim_limit_s * 1000)
        self._consumer = Consumer(
            consumer_config(bootstrap, group, {"enable.partition.eof": False, **(consumer_extra or {})})
        )
        self._producer = Producer(producer_config)
        self._created: set[str] = set()  # ours, before the store has read them back
        self._created_for: set[str] = set()  # credit codes of those
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notice-engine", daemon=True)
        self.created = 0

    def start(self) -> None:
        self._consumer.subscribe([self._market_topic])
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()
        self._producer.flush(10)
        self._producer.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            messages = consume_ready(self._consumer, 500, 0.1)
            if not messages:
                continue
            positions: dict[int, int] = {}
            for m in messages:
                if m.error() is not None:
                    continue
                if m.value() is not None:
                    self._consider(orjson.loads(m.value()), m.timestamp()[1])
                positions[m.partition()] = m.offset() + 1
            if self._producer.flush(30):
                log.error("notices not acknowledged; they will be created again after a restart")
                continue
            if positions:  # only now that the notices are durable
                self._consumer.commit(
                    offsets=[TopicPartition(self._market_topic, p, o) for p, o in positions.items()], asynchronous=False
                )

    def _consider(self, entity: dict, registered_at_ms: int) -> None:
        if entity.get("status") != "active":
            return
        code = entity["credit_code"]
        known = self._store.has_notices_for(code) or code in self._created_for
        now = int(time.time() * 1000)
        for item in entity.get("business_scope") or ():
            rule = self._rules.get(item)
            if rule is None:
                continue
            for department in rule.departments:
                ident = notice_id(code, item, department)
                if ident in self._created or self._store.notice(ident) is not None:
                    continue
                notice = {
                    "id": ident,
                    "department": department,
                    "credit_code": code,
                    "entity_name": entity.get("name") or "",
                    "scope_item": item,
                    "permit": rule.permit,
                    "reason": "scope_changed" if known else "registered",
                    "state": "open",
                    "created_at_ms": now,
                    "registered_at_ms": registered_at_ms,
                    "claim_due_ms": now + self._claim_limit_ms,
                    "claimed_at_ms": 0,
                    "claimed_by": "",
                    "feedback_due_ms": 0,
                    "feedback_at_ms": 0,
                    "feedback": "",
                    "feedback_note": "",
                }
                self._producer.produce(self._notices_topic, orjson.dumps(notice), f"notice:{ident}".encode())
                self._created.add(ident)
                self._created_for.add(code)
                self.created += 1


def overdue_alerts(store: NoticeStore, now_ms: int) -> list[dict]:
    """Alerts that should exist now and do not yet: unclaimed past the claim limit, or claimed
    with no feedback past the feedback limit. Deterministic, so any replica may write them."""
    out = []
    for n in store.notices():
        for kind, due, late in (
            ("claim_overdue", n["claim_due_ms"], n["state"] == "open"),
            ("feedback_overdue", n["feedback_due_ms"], n["state"] == "claimed"),
        ):
            ident = f"{n['id']}:{kind}"
            if late and due and due < now_ms and store.values.get(f"alert:{ident}") is None:
                out.append(
                    {
                        "id": ident,
                        "notice_id": n["id"],
                        "department": n["department"],
                        "kind": kind,
                        "raised_at_ms": due,
                        "due_ms": due,
                    }
                )
    return out
