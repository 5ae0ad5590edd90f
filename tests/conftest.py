"""Fixtures. Kafka: set HUB_BOOTSTRAP_SERVERS to test against an existing cluster (as
confluent-kafka-python's own fixtures do); otherwise one embedded broker serves the session.
Every test gets its own topic prefix, so tests never see each other's data."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.kafka.embedded import EmbeddedBroker
from tests.hubtest import RunningHub, running_hub, running_layout


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("HUB_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    broker = EmbeddedBroker(tmp_path_factory.mktemp("broker"), "memory")
    yield broker.start()
    broker.stop()


@pytest.fixture(scope="session")
def postgres_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """HUB_TEST_POSTGRES_DSN names an existing server (a superuser, wal_level=logical, wal2json);
    otherwise a private PostgreSQL from Debian's packages is started for the session."""
    external = os.environ.get("HUB_TEST_POSTGRES_DSN")
    if external:
        yield external
        return
    from hub.devservices import PostgresServer

    server = PostgresServer(tmp_path_factory.mktemp("postgres"))
    yield server.start()
    server.stop()


@pytest.fixture
def topic_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def hub(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> Iterator[RunningHub]:
    with running_hub(kafka_bootstrap, topic_prefix, tmp_path) as h:
        yield h


@pytest.fixture(params=[1, 2], ids=["whole", "2-shards"])
def layout_hub(request: pytest.FixtureRequest, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path):
    """The behaviour tests' hub, unsharded and as two shards (calls go to shard 0, which forwards
    and gathers): a module runs its tests on both with ``hub = layout_hub`` as its ``hub`` fixture."""
    with running_layout(kafka_bootstrap, topic_prefix, tmp_path, request.param) as h:
        yield h
