"""The PostgreSQL sources' edges. Logical replication: a key that changes, a table it cannot
follow, a slot left behind its stored offset, a slot that was dropped. Polling: rows without an
update time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from hub.connect.postgres import LogicalSource, PollingSource
from hub.connect.registry import resolve_connector
from hub.connect.testing import cached, run_once, wait_visible
from hub.datagen import native
from hub.datagen.city import City, CitySize
from hub.datagen.departments import SI_CBRY_DDL, PostgresTable
from tests.hubtest import RunningHub

SLOT = "hub_si_cbry"


@pytest.fixture
def table(postgres_dsn: str) -> Iterator[PostgresTable]:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active")
    table = PostgresTable(postgres_dsn, SI_CBRY_DDL, "si_cbry", "aac002", updated="aae036")
    yield table
    table.close()


def _rows(n: int) -> list[dict]:
    return [native.insured(r) for r in City(12, CitySize(n * 2, 10)).insured()][:n]


def _sync(hub: RunningHub, dsn: str, state: Path) -> Callable[..., dict[str, dict | None]]:
    """Runs the connector until caught up; returns a reader of the cache that waits for its writes."""
    connector = resolve_connector("social_security")()
    runtime = run_once(hub, connector, connector.default_source(dsn), state)

    def read(*keys: str) -> dict[str, dict | None]:
        wait_visible(hub, connector, runtime, keys[-1])
        return cached(hub, connector, keys)

    return read


def test_a_changed_key_deletes_the_old_record(hub: RunningHub, table: PostgresTable, tmp_path: Path) -> None:
    rows = _rows(3)
    table.write(rows)
    _sync(hub, table.dsn, tmp_path)
    old, new = rows[0]["aac002"], _rows(4)[3]["aac002"]
    with psycopg.connect(table.dsn, autocommit=True) as conn:
        conn.execute("UPDATE si_cbry SET aac002 = %s WHERE aac002 = %s", (new, old))
    got = _sync(hub, table.dsn, tmp_path)(old, new)
    assert got[old] is None and got[new] is not None and got[new]["resident_id"] == new


def test_a_table_without_replica_identity_is_refused(postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS no_key; CREATE TABLE no_key (id text, v text)")
    with pytest.raises(RuntimeError, match="no replica identity"):
        LogicalSource(postgres_dsn, "no_key", "id", slot="hub_no_key").setup({})


def test_a_slot_behind_its_stored_offset_is_advanced(table: PostgresTable) -> None:
    table.write(_rows(2))
    first = LogicalSource(table.dsn, "si_cbry", "aac002")
    first.setup({})  # creates the slot
    first.close()
    with psycopg.connect(table.dsn, autocommit=True) as conn:

        def slot_position() -> str:
            query = "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s"
            return conn.execute(query, (SLOT,)).fetchone()[0]

        conn.execute("SET synchronous_commit = on")  # so the update is in the flushed WAL at once
        conn.execute("UPDATE si_cbry SET aae201 = aae201 + 1")  # changes the slot still holds
        now = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
        assert slot_position() != now
        # as if stopped after storing this offset and before advancing the slot to it
        source = LogicalSource(table.dsn, "si_cbry", "aac002")
        source.setup({"snapshot:si_cbry": {"done": True}, f"wal:{SLOT}": now})
        source.close()
        assert slot_position() == now


def test_a_dropped_slot_copies_the_table_again(hub: RunningHub, table: PostgresTable, tmp_path: Path) -> None:
    rows = _rows(3)
    table.write(rows[:2])
    _sync(hub, table.dsn, tmp_path)
    with psycopg.connect(table.dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_drop_replication_slot(%s)", (SLOT,))  # e.g. invalidated for holding too much WAL
    table.write(rows[2:])  # never in any slot
    key = rows[2]["aac002"]
    assert _sync(hub, table.dsn, tmp_path)(key)[key] is not None


def test_polling_reads_rows_without_an_update_time(postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(
            "DROP TABLE IF EXISTS legacy; CREATE TABLE legacy (id text PRIMARY KEY, v text, changed timestamp);"
            "INSERT INTO legacy VALUES ('a', '1', NULL), ('b', '2', NULL), ('c', '3', now() - interval '1 hour')"
        )
    source = PollingSource(postgres_dsn, "legacy", "id", "changed", settle_s=0)
    source.setup({})
    first = source.poll(100)
    assert [r.row["id"] for r in first] == ["a", "b", "c"] and "__hub_polled_at" not in first[0].row
    resumed = PollingSource(postgres_dsn, "legacy", "id", "changed", settle_s=0)
    resumed.setup({first[1].partition: first[1].offset})  # stopped after "b"
    assert [r.row["id"] for r in resumed.poll(100)] == ["c"]
    source.close()
    resumed.close()
