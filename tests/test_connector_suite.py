"""The universal connector suite, for every connector in connectors/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from hub.connect.testing import CHECKS, Throttle, check_backpressure
from tests.connector_kits import KITS
from tests.hubtest import RunningHub, running_hub


@pytest.fixture
def services(request: pytest.FixtureRequest, kit_name: str) -> dict[str, str]:
    out = {}
    if "postgres" in KITS[kit_name].needs:
        dsn = request.getfixturevalue("postgres_dsn")
        with psycopg.connect(dsn, autocommit=True) as conn:  # each test starts from no slot
            conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active")
        out["postgres"] = dsn
    return out


@pytest.fixture(params=sorted(KITS))
def kit_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_connector(check: str, kit_name: str, hub: RunningHub, services: dict[str, str], tmp_path: Path) -> None:
    CHECKS[check](KITS[kit_name], hub, tmp_path, services)


@pytest.fixture
def throttled_hub(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> Iterator[tuple[RunningHub, Throttle]]:
    throttle = Throttle(refusals=3, retry_after_ms=300)
    with running_hub(kafka_bootstrap, topic_prefix, tmp_path / "hub", interceptors=[throttle]) as hub:
        yield hub, throttle


def test_connector_backpressure(kit_name: str, throttled_hub, services: dict[str, str], tmp_path: Path) -> None:
    hub, throttle = throttled_hub
    check_backpressure(KITS[kit_name], hub, throttle, tmp_path, services)
