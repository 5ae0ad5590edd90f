"""Notices: from a market registration to the departments whose permit it needs.

:class:`NoticeEngine` follows the market-entity topic in a consumer group, so exactly one replica
owns each partition and creates its notices (committed after the notices are acknowledged: at
least once). A notice's id is (entity, scope item, department), so a replay creates nothing twice.
Claims and feedback are written by whichever replica the department calls. Overdue claims and
feedback raise alerts; an alert's id and content are deterministic, so every replica may check.

Going live on a topic that already holds the city's entities, ``since_ms`` marks the cut-over:
records written before it are the state at go-live and create no notices, and a later change
notices only the scope items the entity did not have then. The engine then reads its partitions
from the beginning at every assignment, to know that state; replayed notices are not written
twice, as their ids are deterministic.
"""

from __future__ import annotations

import logging
import threading
import time
import tomllib
from dataclasses import asdict
from pathlib import Path

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, Producer, TopicPartition
from pydantic import BaseModel, ConfigDict

from hub.flows.model import Alert, Notice
from hub.flows.stores import NoticeStore
from hub.kafka.clients import consume_ready, consumer_config, discard

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
        since_ms: int | None = None,
    ) -> None:
        self._market_topic = market_topic
        self._notices_topic = notices_topic
        self._store = store
        self._rules = rules
        self._claim_limit_ms = int(claim_limit_s * 1000)
        # It reads 500 registrations at a time and waits for their notices to be written: the cache's 256 MiB
        # prefetch let it hold most of a city's market topic (~240 MiB) in librdkafka's queue during a load.
        prefetch = {"enable.partition.eof": False, "queued.max.messages.kbytes": 16384}
        self._consumer = Consumer(consumer_config(bootstrap, group, {**prefetch, **(consumer_extra or {})}))
        self._producer_config = producer_config
        self._producer = Producer(producer_config)
        self._created: set[str] = set()  # ours, until the store has read them back
        self._created_for: set[str] = set()  # credit codes of those
        self._since_ms = since_ms
        # credit code of every entity registered before the cut-over → its regulated scope items then
        self._at_go_live: dict[str, frozenset[str]] = {}
        self._batch_created: list[str] = []  # notices produced for the batch in hand
        self._undelivered = 0  # of those, how many Kafka refused
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notice-engine", daemon=True)
        self.created = 0

    def start(self) -> None:
        if self._since_ms is None:
            self._consumer.subscribe([self._market_topic])
        else:
            self._consumer.subscribe([self._market_topic], on_assign=self._from_beginning)
        self._thread.start()

    def _from_beginning(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            tp.offset = OFFSET_BEGINNING
        consumer.assign(partitions)

    def abandon(self) -> None:
        """The broker lost its log (a new cluster): notices waiting for it fail now rather than after the
        delivery timeout, and the engine stops reading. Call before :meth:`stop`."""
        self._stop.set()
        self._producer.purge()

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
            first: dict[int, int] = {}
            positions: dict[int, int] = {}
            self._forget_read_back()
            self._batch_created, self._undelivered = [], 0
            for m in messages:
                partition, offset, value = m.partition(), m.offset(), m.value()
                if m.error() is not None or partition is None or offset is None:  # only errors lack a position
                    continue
                first.setdefault(partition, offset)
                if value is not None:
                    entity, written_ms = orjson.loads(value), m.timestamp()[1]
                    if self._since_ms is not None and written_ms < self._since_ms:
                        self._remember(entity)
                    else:
                        self._consider(entity, written_ms)
                positions[partition] = offset + 1
            if self._producer.flush(30) or self._undelivered:
                # Not durable: forget them and read the batch again (their ids make a replay harmless).
                log.error("notices not acknowledged by Kafka; reading %d registrations again", len(messages))
                self._created.difference_update(self._batch_created)
                self._renew_producer()
                for p, offset in first.items():
                    self._consumer.seek(TopicPartition(self._market_topic, p, offset))
                self._stop.wait(1.0)
                continue
            if positions:  # only now that the notices are durable
                self._consumer.commit(
                    offsets=[TopicPartition(self._market_topic, p, o) for p, o in positions.items()], asynchronous=False
                )

    def _renew_producer(self) -> None:
        """A fresh producer for the batch's next attempt. An idempotent producer whose batch timed out
        is fenced for good on tansu (it bumps its epoch, which tansu does not know: hub.kafka.embedded),
        so retrying on it would fail forever. What the old one still held is dropped (the notices' ids
        make a copy that reached Kafka anyway harmless)."""
        old, self._producer = self._producer, Producer(self._producer_config)
        discard(old)

    def _forget_read_back(self) -> None:
        """Drops the notices the store has read back: it answers for them now. Kept, the engine's own sets
        grew with every notice it ever wrote (~50 MiB at city scale)."""
        self._created = {i for i in self._created if self._store.notice(i) is None}
        self._created_for = {c for c in self._created_for if not self._store.has_notices_for(c)}

    def _delivered(self, err: KafkaError | None, _msg: Message) -> None:  # in flush(), on this thread
        if err is not None:
            self._undelivered += 1

    def _regulated(self, entity: dict) -> frozenset[str]:
        if entity.get("status") != "active":
            return frozenset()
        return frozenset(item for item in entity.get("business_scope") or () if item in self._rules)

    def _remember(self, entity: dict) -> None:
        """A record from before the cut-over: the entity exists, its regulated items need no notice."""
        self._at_go_live[entity["credit_code"]] = self._regulated(entity)

    def _consider(self, entity: dict, registered_at_ms: int) -> None:
        code = entity["credit_code"]
        items = self._regulated(entity)
        before = self._at_go_live.get(code)
        if before is not None:
            self._at_go_live[code] = before & items  # an item dropped since go-live and added again is news
            items -= before
        if not items:
            return
        known = before is not None or self._store.has_notices_for(code) or code in self._created_for
        now = int(time.time() * 1000)
        for item in sorted(items):
            rule = self._rules[item]
            for department in rule.departments:
                ident = notice_id(code, item, department)
                if ident in self._created or self._store.notice(ident) is not None:
                    continue
                notice = Notice(
                    id=ident,
                    department=department,
                    credit_code=code,
                    entity_name=entity.get("name") or "",
                    scope_item=item,
                    permit=rule.permit,
                    reason="scope_changed" if known else "registered",
                    state="open",
                    created_at_ms=now,
                    registered_at_ms=registered_at_ms,
                    claim_due_ms=now + self._claim_limit_ms,
                )
                self._producer.produce(
                    self._notices_topic,
                    orjson.dumps(asdict(notice)),
                    f"notice:{ident}".encode(),
                    on_delivery=self._delivered,
                )
                self._created.add(ident)
                self._batch_created.append(ident)
                self._created_for.add(code)
                self.created += 1


def overdue_alerts(store: NoticeStore, now_ms: int) -> list[Alert]:
    """Alerts that should exist now and do not yet: unclaimed past the claim limit, or claimed
    with no feedback past the feedback limit. Deterministic, so any replica may write them."""
    out = []
    for n in store.notices():
        late = n.overdue(now_ms)
        if late is None:
            continue
        kind, due = late
        ident = f"{n.id}:{kind}"
        if not store.has_alert(ident):
            out.append(
                Alert(id=ident, notice_id=n.id, department=n.department, kind=kind, raised_at_ms=due, due_ms=due)
            )
    return out
