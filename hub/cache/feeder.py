"""Consumes the partitions of every resource topic into the tables: all, or a shard's share.

One consumer, one thread. Partitions are assign()ed, not joined through a
consumer group: every replica needs every partition (of its shard), and the embedded
broker's JoinGroup is slow. Positions come from the tables (a snapshot's
offsets, or 0), so a restart replays only what the cache lacks.

"Caught up" must hold on real Kafka and on tansu, whose high watermark is the
base offset of the last batch plus one, so position >= high watermark can be
true while records remain. We therefore use partition EOF, which librdkafka
raises when a fetch at our position returns nothing: a partition is caught up
once it has reported EOF at a position at or past the high watermark sampled
when the feeder started. On real Kafka that watermark is exact; on tansu it
is a lower bound, and the EOF proves the rest was read.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from confluent_kafka import Consumer, KafkaError, TopicPartition

from hub.cache.table import ResourceTable
from hub.kafka.clients import consume_ready, consumer_config
from hub.records.change import Change

log = logging.getLogger(__name__)

# How long the broker may hold the feeder's fetch. On Kafka a fetch returns as soon as records arrive,
# so this only spaces idle polls. tansu holds every fetch this long, records or not (a wait of 250 ms or
# more, half as long), and reads the watermark of each assigned partition (about 45 per worker) on
# each: at 50 ms an idle two-worker hub kept it busy 0.13 of a core, a quarter of its CPU in the city
# year. So on tansu it is also how stale an idle follower may be: calls that must see their own writes
# read them themselves (hub.server.catch_up) or wait for the feeder (ReplicaCache.reached), typically
# up to this long; pushed changes (subscriptions, notices) lag by up to as much.
FOLLOW_WAIT_MS = 150


class FeedTarget(Protocol):
    """What the feeder fills: a resource table, or one of the hub's own state stores."""

    partitions: int

    def positions(self) -> tuple[int, ...]:
        """Next offset to apply, per partition (where a restart resumes)."""

    def apply(self, changes: Sequence[Change]) -> object:
        """Applies a micro-batch of one topic, in offset order per partition."""

    def mark_caught_up(self, at_ms: int) -> None:
        """The target is known complete as of ``at_ms``."""

    def settle(self) -> bool:
        """Idle-time housekeeping; returns whether it did anything."""


@dataclass
class _PartitionState:
    target: int  # high watermark sampled at start
    caught_up: bool = False
    at_end: bool = False  # EOF seen and no record since


class CacheFeeder:
    """Feeds targets from their topics on a background thread."""

    def __init__(
        self,
        bootstrap: str,
        targets: dict[str, FeedTarget],
        *,
        batch_max: int = 20000,
        on_applied: Callable[[Iterable[str]], None] | None = None,
        before_assign: Callable[[], None] | None = None,
        on_changes: Callable[[str, Sequence[Change]], None] | None = None,
        consumer_extra: dict[str, Any] | None = None,
        owned: Callable[[str, int], Sequence[int]] | None = None,
        shared: Iterable[str] = (),
        on_demand: Iterable[str] = (),
    ) -> None:
        self._targets = dict(targets)  # by topic
        self._owned = owned or (lambda topic, partitions: range(partitions))  # a shard's share of a topic
        self._config = consumer_config(
            bootstrap,
            "hub-cache-unused",
            {
                "enable.partition.eof": True,
                "fetch.wait.max.ms": FOLLOW_WAIT_MS,
                "error_cb": self._on_error,
                **(consumer_extra or {}),
            },
        )
        self._batch_max = batch_max
        self._on_applied = on_applied
        self._before_assign = before_assign
        self._on_changes = on_changes
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._parts: dict[tuple[str, int], _PartitionState] = {}
        self._added: queue.Queue[dict[str, FeedTarget]] = queue.Queue()
        self._caught_up_at: dict[str, int] = {}
        self._broker_down = False
        # Topics another reader applies too (hub.kafka.tail), each with its apply lock. Of those, the
        # on-demand ones are only read to their end at start-up: after that the calls that need them
        # current read them, and an idle fetch of each partition is not repeated several times a second.
        self._on_demand = set(on_demand)
        self._shared = {topic: threading.Lock() for topic in {*shared, *self._on_demand}}
        self._released: set[str] = set()
        self.ready = threading.Event()
        self.ready_topics: set[str] = set()
        self.consumed = 0
        self.error: BaseException | None = None

    def _on_error(self, err: KafkaError) -> None:
        if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            self._broker_down = True
        log.warning("cache consumer: %s", err)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cache-feeder", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def add(self, targets: dict[str, FeedTarget]) -> None:
        """Starts feeding more topics (e.g. a resource registered at run time). Any thread."""
        self._added.put(dict(targets))

    def apply(self, topic: str, changes: Sequence[Change]) -> Sequence[Change]:
        """Applies records to the topic's target, whichever reader read them; returns those applied.

        Of a shared topic, only records at or past the target's position are applied, under one lock:
        the other reader may have applied them already, and each reader reads in offset order.
        """
        lock = self._shared.get(topic)
        if lock is None:
            return self._apply(topic, changes)
        with lock:
            positions = self._targets[topic].positions()
            return self._apply(topic, [c for c in changes if c.offset >= positions[c.partition]])

    def _apply(self, topic: str, changes: Sequence[Change]) -> Sequence[Change]:
        if changes:
            self._targets[topic].apply(changes)
            if self._on_changes is not None:
                self._on_changes(topic, changes)
        return changes

    def _run(self) -> None:
        consumer = Consumer(self._config)
        try:
            if self._before_assign is not None:
                self._before_assign()  # e.g. load snapshots: positions come from the targets
            consumer.assign(self._partitions(consumer, self._targets))
            log.info("cache assigned %d partitions of %d topics", len(self._parts), len(self._targets))
            self._refresh_freshness(self._targets)  # a shard may hold no partition of a topic: complete at once
            while not self._stop.is_set():
                self._take_added(consumer)
                self._step(consumer)
        except BaseException as exc:  # surfaced through health and logs, never silently
            self.error = exc
            log.exception("cache feeder stopped")
        finally:
            consumer.close()

    def _partitions(self, consumer: Consumer, targets: dict[str, FeedTarget]) -> list[TopicPartition]:
        assignment = []
        for topic, target in targets.items():
            positions = target.positions()
            for p in self._owned(topic, target.partitions):
                # On tansu `high` may be below the true end, even below a snapshot's offset: EOF settles it.
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30, cached=False)
                self._parts[(topic, p)] = _PartitionState(target=high)
                assignment.append(TopicPartition(topic, p, positions[p]))
        return assignment

    def _take_added(self, consumer: Consumer) -> None:
        while not self._added.empty():
            targets = {t: v for t, v in self._added.get_nowait().items() if t not in self._targets}
            if not targets:
                continue
            assignment = self._partitions(consumer, targets)
            self._targets.update(targets)
            consumer.incremental_assign(assignment)
            log.info("cache now also consumes %s", ", ".join(targets))
            self._refresh_freshness(targets)

    def _step(self, consumer: Consumer) -> None:
        messages = consume_ready(consumer, self._batch_max, 0.05)
        batches: dict[str, list[Change]] = {}
        eofs = []
        for m in messages:
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    # An EOF event names its partition (the client types these Optional, for other errors).
                    eofs.append((cast(str, m.topic()), cast(int, m.partition()), cast(int, m.offset())))
                else:
                    log.warning("cache consumer: %s", err)
                continue
            try:
                key = m.key().decode()  # type: ignore[union-attr]
            except (AttributeError, UnicodeDecodeError):  # a record some other producer wrote
                log.error(
                    "%s[%d]@%d has no UTF-8 key; hub topics are keyed: skipped", m.topic(), m.partition(), m.offset()
                )
                target = self._targets[m.topic()]  # type: ignore[index]
                if isinstance(target, ResourceTable):
                    target.rejected += 1
                continue
            # A consumed message has its topic, partition and offset; ignores, not casts, on this hot path.
            batch = batches.get(m.topic())  # type: ignore[arg-type]
            if batch is None:
                batch = batches[m.topic()] = []  # type: ignore[index]
            batch.append(Change(key, m.value(), m.partition(), m.offset(), m.timestamp()[1]))  # type: ignore[arg-type]
        if messages:
            self._broker_down = False
        for topic, changes in batches.items():
            self.apply(topic, changes)
            for partition in {c.partition for c in changes}:
                self._parts[(topic, partition)].at_end = False
            self.consumed += len(changes)
        for topic, p, position in eofs:
            state = self._parts[(topic, p)]
            state.at_end = True
            if position >= state.target:
                state.caught_up = True
        self._refresh_freshness(batches.keys() | {t for t, _, _ in eofs})
        self._release_on_demand(consumer)
        if batches and self._on_applied is not None:
            self._on_applied(batches.keys())
        if not messages:
            self._settle_one()

    def _release_on_demand(self, consumer: Consumer) -> None:
        ready = (self._on_demand & self.ready_topics) - self._released
        if ready:
            consumer.incremental_unassign([TopicPartition(t, p) for t, p in self._parts if t in ready])
            self._released |= ready
            log.info("cache read %s to its end; calls read it from now on", ", ".join(sorted(ready)))

    def _settle_one(self) -> None:
        """When the topics are quiet, let one target tidy up (one per idle poll: bounded pauses)."""
        for topic, target in self._targets.items():
            if topic in self.ready_topics and target.settle():
                return

    def _refresh_freshness(self, touched: Iterable[str]) -> None:
        now_ms = int(time.time() * 1000)
        topics = set(touched) if not self.ready.is_set() else set(self._targets)
        for topic in topics:
            parts = [s for (t, _), s in self._parts.items() if t == topic]
            if topic not in self.ready_topics:
                if not all(s.caught_up for s in parts):
                    continue
                self.ready_topics.add(topic)
                log.info("cache for %s caught up", topic)
                if self.ready_topics >= set(self._targets):
                    self.ready.set()
            at_end = all(s.at_end for s in parts) and not self._broker_down
            if at_end and now_ms - self._caught_up_at.get(topic, 0) > 250:
                self._caught_up_at[topic] = now_ms
                self._targets[topic].mark_caught_up(now_ms)
