"""A connector killed with SIGKILL mid-run and restarted leaves the cache equal to the source table:
100,000 rows in PostgreSQL, with inserts, updates and deletes going on throughout."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import psycopg
import pytest

from hub.connect.registry import resolve_connector
from hub.connect.testing import PublishInterceptor
from hub.datagen import native
from hub.datagen.city import City, CitySize
from hub.datagen.departments import SI_CBRY_DDL, PostgresTable
from tests.hubtest import running_hub

ROWS = 100_000


def _connector(dsn: str, address: str, state: Path, once: bool = False) -> subprocess.Popen:
    args = [
        sys.executable,
        "-m",
        "hub",
        "connector",
        "run",
        "social_security",
        "--source",
        dsn,
        "--hub",
        address,
        "--state-dir",
        str(state),
        "--batch-size",
        "2000",
    ]
    return subprocess.Popen(
        [*args, "--once"] if once else args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "HUB_LOG_LEVEL": "WARNING"},
    )


def _load(table: PostgresTable, dsn: str) -> list[dict]:
    city = City(9, CitySize(200_000, 2000))
    rows = [native.insured(r) for r in city.insured()][:ROWS]
    assert len(rows) == ROWS
    columns = "aac002, aac003, aae140, aac008, aab001, aab301, aae201, aae002"
    with (
        psycopg.connect(dsn, autocommit=True) as conn,
        conn.cursor() as cur,
        cur.copy(f"COPY si_cbry ({columns}) FROM STDIN") as copy,
    ):
        for r in rows:
            copy.write_row(
                [
                    r["aac002"],
                    r["aac003"],
                    r["aae140"],
                    r["aac008"],
                    r["aab001"],
                    r["aab301"],
                    r["aae201"],
                    r["aae002"],
                ]
            )
    return rows


class Churn(threading.Thread):
    """Inserts, updates and deletes in small transactions, as the department's application would."""

    def __init__(self, table: PostgresTable, rows: list[dict], spare: list[dict]) -> None:
        super().__init__(daemon=True)
        self.table, self.rows, self.spare = table, list(rows), list(spare)
        self.halt = threading.Event()
        self.changes = 0

    def run(self) -> None:
        rng = random.Random(7)
        while not self.halt.is_set():
            kind = rng.random()
            if kind < 0.3 and self.spare:
                self.table.write([self.spare.pop()])
            elif kind < 0.8:
                row = dict(self.rows[rng.randrange(len(self.rows))])
                row["aac008"] = rng.choice("1234")
                row["aae201"] = rng.randint(1, 400)
                self.table.write([row])
            else:
                self.table.delete([self.rows.pop(rng.randrange(len(self.rows)))])
            self.changes += 1
            time.sleep(0.002)


class PublishCalls(PublishInterceptor):
    """Counts the Publish calls the hub received."""

    def __init__(self) -> None:
        self.count = 0

    async def publish(self, inner, request, context):
        self.count += 1
        return await inner(request, context)


def _publishing(calls: PublishCalls, connector: subprocess.Popen) -> None:
    """Waits until ``connector`` (the only live one) publishes: it is running, its stop handler set."""
    before = calls.count
    deadline = time.monotonic() + 120  # a guard only: the call ends the wait
    while calls.count == before:
        assert time.monotonic() < deadline and connector.poll() is None
        time.sleep(0.05)


def _churn_on(churn: Churn, changes: int, connector: subprocess.Popen) -> None:
    """Waits until the department's application made ``changes`` more changes while ``connector`` runs."""
    target = churn.changes + changes
    deadline = time.monotonic() + 120  # a guard only: the count ends the wait
    while churn.changes < target:
        assert time.monotonic() < deadline and connector.poll() is None and churn.is_alive()
        time.sleep(0.05)


@pytest.mark.slow
def test_sigkill_and_restart_leaves_cache_equal_to_table(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, postgres_dsn: str
) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active")
    table = PostgresTable(postgres_dsn, SI_CBRY_DDL, "si_cbry", "aac002", updated="aae036")
    rows = _load(table, postgres_dsn)
    spare = [native.insured(r) for r in City(10, CitySize(4000, 100)).insured()]
    connector = resolve_connector("social_security")()
    state = tmp_path / "state"
    calls = PublishCalls()
    with running_hub(kafka_bootstrap, topic_prefix, tmp_path / "hub", interceptors=[calls]) as hub:
        cache = hub.server.cache
        churn = Churn(table, rows, spare)
        churn.start()
        first = _connector(postgres_dsn, hub.address, state)
        deadline = time.monotonic() + 120
        while cache.version("social_security.insured").live < 30_000:  # kill -9 in the middle of the copy
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait()
        second = _connector(postgres_dsn, hub.address, state)
        while cache.version("social_security.insured").live < ROWS - 1000:
            assert time.monotonic() < deadline and second.poll() is None
            time.sleep(0.05)
        _churn_on(churn, 200, second)  # into the change stream
        second.send_signal(signal.SIGKILL)
        second.wait()
        third = _connector(postgres_dsn, hub.address, state)
        _publishing(calls, third)
        _churn_on(churn, max(0, 501 - churn.changes) + 200, third)  # counted in changes, not seconds
        churn.halt.set()
        churn.join()
        assert churn.changes > 500
        third.send_signal(signal.SIGTERM)  # a graceful stop settles what is in flight
        assert third.wait(60) == 0
        # A one-shot run stops once caught up, and only now, with the churn over, is caught up final.
        last = _connector(postgres_dsn, hub.address, state, once=True)
        assert last.wait(180) == 0

        with psycopg.connect(postgres_dsn) as conn:
            source = {
                r[0]: r
                for r in conn.execute(
                    "SELECT aac002, aac003, aae140, aac008, aab001, aab301, aae201, aae002 FROM si_cbry"
                ).fetchall()
            }
        expected = {
            key: connector.map(
                dict(
                    zip(
                        ["aac002", "aac003", "aae140", "aac008", "aab001", "aab301", "aae201", "aae002"],
                        row,
                        strict=True,
                    )
                )
            )
            for key, row in source.items()
        }
        deadline = time.monotonic() + 120  # a guard only: the condition ends the wait
        while cache.version("social_security.insured").live != len(expected) and time.monotonic() < deadline:
            time.sleep(0.1)
        version = cache.version("social_security.insured")
        if version.live != len(expected):
            rows_now = version.rows(list(expected))
            missing = [k for k, r in zip(expected, rows_now.tolist(), strict=True) if r < 0]
            dead = [p.read_text()[:2000] for p in state.glob("*dead*")]
            pytest.fail(
                f"cache {version.live} != table {len(expected)}; missing {len(missing)}: {missing[:5]}; "
                f"dead letters {dead}; state files {[p.name for p in state.iterdir()]}"
            )
        rows_in_cache = version.rows(list(expected))
        assert (rows_in_cache >= 0).all()
        for key, row in zip(expected, rows_in_cache.tolist(), strict=True):
            assert orjson.loads(orjson.dumps(version.record(row))) == orjson.loads(
                orjson.dumps({**expected[key], "insurance_types": expected[key]["insurance_types"] or None})
            ), key
