"""Creates the topics the catalogue declares.

Resource topics are compacted: the latest record per key is the state, and a
tombstone deletes. (The embedded broker accepts the setting but neither
compacts nor applies retention; a replica's cache is correct either way,
only replay is longer.)

Partition counts are never increased automatically: growing a keyed topic
moves keys to other partitions and breaks per-key ordering and compaction.
The embedded broker has no CreatePartitions at all. A topic with a count
different from the catalogue's is used as it is, with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient, NewTopic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool = True

    def config(self) -> dict[str, str]:
        if self.compacted:
            return {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"}
        return {"cleanup.policy": "delete", "retention.ms": str(400 * 24 * 3600 * 1000)}


def ensure_topics(admin: AdminClient, topics: Iterable[TopicSpec], timeout: float = 30.0) -> dict[str, int]:
    """Creates missing topics; returns every topic's actual partition count."""
    wanted = {t.name: t for t in topics}
    existing = admin.list_topics(timeout=timeout).topics
    missing = [t for name, t in wanted.items() if name not in existing]
    if missing:
        futures = admin.create_topics(
            [NewTopic(t.name, num_partitions=t.partitions, replication_factor=-1, config=t.config()) for t in missing],
            request_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result()
                log.info("created topic %s with %d partitions", name, wanted[name].partitions)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
        existing = admin.list_topics(timeout=timeout).topics
    counts = {}
    for name, spec in wanted.items():
        actual = len(existing[name].partitions)
        if actual != spec.partitions:
            log.warning(
                "topic %s has %d partitions, the catalogue declares %d; using %d", name, actual, spec.partitions, actual
            )
        counts[name] = actual
    return counts


def topic_identities(admin: AdminClient, names: Iterable[str], timeout: float = 30.0) -> dict[str, str]:
    """``cluster id/topic id`` per topic: changes if the topic is recreated or the cluster replaced.

    Snapshots record it, so a snapshot is never applied to a different topic of the same name.
    """
    names = list(names)
    cluster = admin.list_topics(timeout=timeout).cluster_id or "unknown-cluster"
    try:
        described = admin.describe_topics(TopicCollection(names), request_timeout=timeout)
        return {name: f"{cluster}/{future.result().topic_id}" for name, future in described.items()}
    except KafkaException as exc:  # brokers before topic ids (KIP-516): fall back to the name
        log.warning("describe_topics failed (%s); snapshots are tied to the cluster id only", exc)
        return {name: f"{cluster}/{name}" for name in names}
