"""The audit index, brought up to date when someone asks, not followed by every worker.

Every call writes to the audit topic, so its partitions grow by a message per group commit. A
replica that followed them would parse every entry of every worker as it arrives, and poll their
tails all the time, for questions (Audit.QueryResource, Audit.QuerySubject) that are rare next to
the writes. tansu's fetch cost grows with the number of record batches in a partition, so those
polls also got dearer the longer a hub ran. Instead, a question first reads the topic from where
the index stopped to its end (hub.kafka.tail), then answers from the index. That also makes the
answer include every entry acknowledged before the question: answered calls are acknowledged before
they answer.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaException

from hub.errors import Unavailable
from hub.governance.audit_index import AuditIndex
from hub.kafka.tail import TailReader


class AuditReader:
    """An :class:`AuditIndex` read up to the audit topic's end before each question. Any thread."""

    def __init__(
        self, bootstrap: str, topic: str, partitions: int, consumer_extra: dict[str, Any] | None = None
    ) -> None:
        self.index = AuditIndex(partitions)
        self._reader = TailReader(bootstrap, topic, {"group.id": "hub-audit-reader", **(consumer_extra or {})})

    def catch_up(self, timeout: float = 60.0) -> None:
        """Applies what the topic holds past the index; raises :class:`Unavailable` if it cannot."""
        try:
            self._reader.read(self.index.positions(), self.index.apply, timeout)
        except (TimeoutError, KafkaException) as exc:
            topic = self._reader.topic
            raise Unavailable(f"could not read the audit topic {topic} to its end ({exc}); ask again") from exc

    def close(self) -> None:
        self._reader.close()

    def by_subject(self, digest: str, limit: int) -> list[dict]:
        self.catch_up()
        return self.index.by_subject(digest, limit)

    def by_resource(self, resource: str, limit: int) -> tuple[list[tuple[str, str, int]], list[dict], int]:
        self.catch_up()
        return self.index.by_resource(resource, limit)
