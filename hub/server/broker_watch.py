"""Is Kafka there, and is it still the log this hub's cache was built from?

A probe (a metadata request) every ``every_s``: while it fails, the hub reports NOT_SERVING and
refuses calls at once with UNAVAILABLE and a retry-after, instead of holding each caller for the
producer's delivery timeout. A broker that answers with a different cluster id has lost the log
the cache was built from (an in-memory broker restarted): serving on would answer from records
Kafka no longer holds, so :attr:`lost_log` is set and the runner starts the hub afresh.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from confluent_kafka.admin import AdminClient

from hub.errors import Unavailable

log = logging.getLogger(__name__)


class BrokerWatch:
    def __init__(self, admin: AdminClient, bootstrap: str, every_s: float = 0.5, timeout_s: float = 2.0) -> None:
        self._admin = admin
        self._bootstrap = bootstrap
        self._every_s = every_s
        self._timeout_s = timeout_s
        self.cluster_id: str | None = None
        self.outage: str | None = None  # why calls are refused now; None while Kafka answers
        self.lost_log = asyncio.Event()

    def _probe(self) -> str:
        return self._admin.list_topics(timeout=self._timeout_s).cluster_id or ""

    def refusal(self) -> Unavailable | None:
        """The error a call gets while Kafka is out (the interceptor raises it before the servicer runs)."""
        if self.outage is None:
            return None
        return Unavailable(f"Kafka at {self._bootstrap} {self.outage}; retry shortly", retry_after_s=1.0)

    async def run(self, on_change: Callable[[bool], Awaitable[None]]) -> None:
        """Probes until cancelled; ``on_change(reachable)`` on each transition."""
        self.cluster_id = await asyncio.to_thread(self._probe)
        while not self.lost_log.is_set():
            await asyncio.sleep(self._every_s)
            try:
                cluster = await asyncio.to_thread(self._probe)
            except Exception as exc:
                if self.outage is None:
                    log.error("Kafka at %s does not answer (%s): NOT_SERVING until it does", self._bootstrap, exc)
                    self.outage = "does not answer"
                    await on_change(False)
                continue
            if cluster != self.cluster_id:
                log.error(
                    "Kafka at %s is a new cluster (%s, was %s): the log this cache was built from is gone",
                    self._bootstrap,
                    cluster,
                    self.cluster_id,
                )
                self.outage = "lost its log (a new cluster id); this replica is rebuilding"
                await on_change(False)
                self.lost_log.set()
            elif self.outage is not None:
                log.warning("Kafka at %s answers again: serving", self._bootstrap)
                self.outage = None
                await on_change(True)
