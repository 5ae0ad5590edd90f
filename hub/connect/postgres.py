"""Live PostgreSQL tables as sources.

:class:`LogicalSource` (preferred) reads every insert, update and delete through a logical
replication slot with the wal2json output plugin, so nothing is missed and hard deletes arrive.
It first copies the table (keyset-paged by key) and then streams the slot; the slot is created
before the copy, so changes made during the copy are replayed after it, which converges because
every change is a keyed upsert or delete. Changes are peeked, not consumed: the slot is advanced
only once the hub has acknowledged them (``acknowledged``), so a crash replays rather than loses.
Whole transactions are emitted together, and a stored offset is always the end of a transaction's
commit record. Caught up ("idle") is proven by a marker written into the WAL coming back.

:class:`PollingSource` needs only SELECT: it polls ``(updated, key) > (last seen)`` in key order
and treats a soft-delete flag as a delete. It cannot see hard deletes, and a transaction that
commits later than ``settle_s`` after its update timestamp can be missed; rows without an update
time are read once, as of 1970. Use it where a replication slot is not allowed.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping
from decimal import Decimal
from types import ModuleType
from typing import Any

import orjson

from hub.connect.source import Source, SourceRecord

log = logging.getLogger(__name__)


def _psycopg() -> ModuleType:
    """psycopg, imported when a database source is used (extra "postgres")."""
    try:
        import psycopg
        import psycopg.rows
        import psycopg.sql
    except ImportError as exc:
        raise RuntimeError("database sources need psycopg: pip install 'city-exchange-hub[postgres]'") from exc
    return psycopg


def _lsn(text: str) -> int:
    hi, _, lo = text.partition("/")
    return (int(hi, 16) << 32) + int(lo, 16)


def _plain(value: Any) -> Any:
    """Database values as JSON-friendly Python (what a CSV or API row would hold)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _fetch_row(dsn: str, table: str, key_column: str, key: str) -> dict[str, Any] | None:
    """One row by key, on a connection of its own: reviews run beside the polling thread."""
    psycopg = _psycopg()
    sql = psycopg.sql
    query = sql.SQL("SELECT * FROM {} WHERE {} = %s").format(sql.Identifier(table), sql.Identifier(key_column))
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.cursor(row_factory=psycopg.rows.dict_row).execute(query, (key,)).fetchone()
    return None if row is None else {k: _plain(v) for k, v in row.items()}


class LogicalSource(Source):
    def __init__(self, dsn: str, table: str, key: str, slot: str | None = None, chunk: int = 5000) -> None:
        self.dsn = dsn
        self.table = table
        self.key = key
        self.slot = slot or f"hub_{table}".replace(".", "_")
        self.chunk = chunk
        self._conn: Any = None
        self._snapshot_after: Any = None
        self._snapshot_done = False
        self._emitted_lsn = 0  # commit LSN of the last transaction handed to the runtime
        self._stopped = False
        self._idle = False
        self._probe: str | None = None
        self._probe_seen = False
        self._advanced = 0
        self._backlog = False

    def fetch(self, key: str) -> dict[str, Any] | None:
        return _fetch_row(self.dsn, self.table, self.key, key)

    @property
    def _snapshot_partition(self) -> str:
        return f"snapshot:{self.table}"

    @property
    def _wal_partition(self) -> str:
        return f"wal:{self.slot}"

    def setup(self, offsets: Mapping[str, Any]) -> None:
        self._conn = _psycopg().connect(self.dsn, autocommit=True)
        self._check_replica_identity()
        slot = self._conn.execute(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s", (self.slot,)
        ).fetchone()
        snapshot = offsets.get(self._snapshot_partition) or {}
        wal = offsets.get(self._wal_partition)
        if slot is None:  # before the copy, so nothing committed after the copy starts can be missed
            self._conn.execute("SELECT pg_create_logical_replication_slot(%s, 'wal2json')", (self.slot,))
            log.info("created replication slot %s", self.slot)
            if offsets.get(self._snapshot_partition) or wal:
                # The slot was dropped (by hand, or invalidated for holding too much WAL): what changed
                # meanwhile is gone from the WAL, so only a new copy of the table can catch up.
                log.warning("replication slot %s was recreated: copying %s again", self.slot, self.table)
                snapshot, wal = {}, None
        elif wal and slot[0] and _lsn(wal) > _lsn(slot[0]):
            # Stopped between storing an offset and advancing the slot: advance it now, or every peek
            # would decode the acknowledged backlog again and find nothing new in it.
            self._conn.execute("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (self.slot, wal))
        self._snapshot_done = bool(snapshot.get("done"))
        self._snapshot_after = snapshot.get("after")
        self._emitted_lsn = _lsn(wal) if wal else 0
        self._advanced = self._emitted_lsn

    def _check_replica_identity(self) -> None:
        """Without a primary key (or another replica identity) PostgreSQL logs updates and deletes
        without their key, and wal2json drops them with only a server warning."""
        assert self._conn is not None
        row = self._conn.execute(
            "SELECT c.relreplident, EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) "
            "FROM pg_class c WHERE c.oid = to_regclass(%s)",
            (self.table,),
        ).fetchone()
        if row is None:
            raise RuntimeError(f"table {self.table} does not exist")
        identity, has_primary_key = row
        if identity == "n" or (identity == "d" and not has_primary_key):
            raise RuntimeError(
                f"table {self.table} has no replica identity: updates and deletes would not reach the hub; "
                f"add a primary key or ALTER TABLE {self.table} REPLICA IDENTITY FULL"
            )

    def poll(self, max_records: int) -> list[SourceRecord]:
        if self._stopped:
            return []
        if not self._snapshot_done:
            return self._copy(max_records)
        out = self._changes(max_records)
        if any(not r.control for r in out):
            self._idle = False
        elif self._probe_seen:
            self._idle, self._probe = True, None
        elif self._probe is None:
            self._emit_probe()
        return out

    def _emit_probe(self) -> None:
        """Writes a marker into the WAL. Logical decoding returns changes in WAL order, so once the
        marker comes back, every change committed before it has been seen: the source is caught
        up. (An empty peek alone proves nothing: a commit takes a moment to become decodable.)"""
        assert self._conn is not None
        self._probe = f"{self.slot}:{time.time_ns()}"
        self._probe_seen = False
        self._conn.execute("SELECT pg_logical_emit_message(false, 'hub.probe', %s)", (self._probe,))

    @property
    def idle(self) -> bool:
        return self._idle

    def _copy(self, max_records: int) -> list[SourceRecord]:
        assert self._conn is not None
        psycopg = _psycopg()
        sql = psycopg.sql
        table, key = sql.Identifier(self.table), sql.Identifier(self.key)
        limit = min(max_records, self.chunk)
        if self._snapshot_after is None:
            query = sql.SQL("SELECT * FROM {} ORDER BY {} LIMIT %s").format(table, key)
            cursor = self._conn.cursor(row_factory=psycopg.rows.dict_row).execute(query, (limit,))
        else:
            query = sql.SQL("SELECT * FROM {} WHERE {} > %s ORDER BY {} LIMIT %s").format(table, key, key)
            cursor = self._conn.cursor(row_factory=psycopg.rows.dict_row).execute(query, (self._snapshot_after, limit))
        rows = cursor.fetchall()
        out = []
        for row in rows:
            self._snapshot_after = row[self.key]
            out.append(
                SourceRecord(
                    self._snapshot_partition, {"after": _plain(row[self.key])}, {k: _plain(v) for k, v in row.items()}
                )
            )
        if len(rows) < limit:
            self._snapshot_done = True
            out.append(SourceRecord(self._snapshot_partition, {"done": True}, {}, control=True))
        return out

    def _changes(self, max_records: int) -> list[SourceRecord]:
        assert self._conn is not None
        if self._backlog and self._emitted_lsn > self._advanced:
            # Peeking always starts at the slot's position: with a large backlog handed out but not yet
            # acknowledged, decoding it all again would only be thrown away.
            return []
        limit = max(max_records * 4, 10000)
        rows = self._conn.execute(
            "SELECT lsn::text, data FROM pg_logical_slot_peek_changes(%s, NULL, %s, 'format-version', '2', "
            "'include-lsn', '1', 'add-tables', %s)",
            (self.slot, limit, f"*.{self.table}"),
        ).fetchall()
        self._backlog = len(rows) >= limit
        out: list[SourceRecord] = []
        pending: list[dict[str, Any]] = []
        for _, data in rows:
            change = orjson.loads(data)
            action = change.get("action")
            if action == "M":
                if change.get("prefix") == "hub.probe" and change.get("content") == self._probe:
                    self._probe_seen = True
                continue
            if action == "B":
                pending = []
            elif action in ("I", "U", "D"):
                pending.append(change)
            elif action == "T":
                log.error(
                    "%s was truncated: the hub keeps its records until they are deleted or the table is copied "
                    "again (remove the connector's stored offsets)",
                    self.table,
                )
            elif action == "C":
                # The end of the commit record: the slot advanced there has passed this transaction.
                end = change.get("nextlsn") or change["lsn"]
                commit = _lsn(end)
                if commit <= self._emitted_lsn:
                    continue  # handed out before, not yet acknowledged back to the slot
                for i, c in enumerate(pending):
                    last = i == len(pending) - 1
                    # only a transaction's last change carries its commit position: a stored offset
                    # never falls inside a transaction
                    offset = end if last else _lsn_text(self._emitted_lsn)
                    # the old row (a delete's, or an update's when its key changed or the identity is FULL)
                    old = {col["name"]: col.get("value") for col in c.get("identity") or ()}
                    if c["action"] == "D":
                        out.append(SourceRecord(self._wal_partition, offset, old, delete=True))
                        continue
                    row = {col["name"]: col.get("value") for col in c.get("columns") or ()}
                    if self.key in old and old[self.key] != row.get(self.key):  # the key itself changed
                        out.append(SourceRecord(self._wal_partition, _lsn_text(self._emitted_lsn), old, delete=True))
                    out.append(SourceRecord(self._wal_partition, offset, row))
                if not pending:  # a transaction of other tables' changes: still moves the offset
                    out.append(SourceRecord(self._wal_partition, end, {}, control=True))
                self._emitted_lsn = commit
                pending = []
                if len(out) >= max_records:
                    break
        return out

    def acknowledged(self, offsets: Mapping[str, Any]) -> None:
        wal = offsets.get(self._wal_partition)
        if wal and _lsn(wal) > self._advanced and self._conn is not None:
            # the hub has every change up to this commit: the slot may let the WAL go
            self._conn.execute("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (self.slot, wal))
            self._advanced = _lsn(wal)

    def stop(self) -> None:
        self._stopped = True

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _lsn_text(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


_POLLED_AT = "__hub_polled_at"


class PollingSource(Source):
    def __init__(
        self,
        dsn: str,
        table: str,
        key: str,
        updated: str,
        deleted_column: str | None = None,
        deleted_value: str = "1",
        settle_s: float = 1.0,
        chunk: int = 5000,
    ) -> None:
        self.dsn = dsn
        self.table = table
        self.key = key
        self.updated = updated
        self.deleted_column = deleted_column
        self.deleted_value = deleted_value
        self.settle_s = settle_s
        self.chunk = chunk
        self._conn: Any = None
        self._after: tuple[Any, Any] | None = None
        self._stopped = False
        self._idle = False

    def fetch(self, key: str) -> dict[str, Any] | None:
        return _fetch_row(self.dsn, self.table, self.key, key)

    @property
    def _partition(self) -> str:
        return f"poll:{self.table}"

    def setup(self, offsets: Mapping[str, Any]) -> None:
        self._conn = _psycopg().connect(self.dsn, autocommit=True)
        stored = offsets.get(self._partition)
        self._after = (dt.datetime.fromisoformat(stored[0]), stored[1]) if stored else None

    def poll(self, max_records: int) -> list[SourceRecord]:
        if self._stopped:
            return []
        assert self._conn is not None
        psycopg = _psycopg()
        sql = psycopg.sql
        table, key = sql.Identifier(self.table), sql.Identifier(self.key)
        # Rows from before the table had update times (NULL) are read once, as of 1970.
        updated = sql.SQL("COALESCE({}, 'epoch')").format(sql.Identifier(self.updated))
        # Rows newer than now - settle_s are left for the next poll: a transaction still open could
        # commit a row with an earlier timestamp than one we have already passed.
        settled = sql.SQL("{} < now() - make_interval(secs => %s)").format(updated)
        params: list[Any] = [self.settle_s]
        where = settled
        if self._after is not None:
            where = sql.SQL("({}, {}) > (%s, %s) AND ").format(updated, key) + settled
            params = [*self._after, self.settle_s]
        query = sql.SQL("SELECT {} AS {}, * FROM {} WHERE {} ORDER BY 1, {} LIMIT %s").format(
            updated, sql.Identifier(_POLLED_AT), table, where, key
        )
        rows = (
            self._conn.cursor(row_factory=psycopg.rows.dict_row)
            .execute(query, (*params, min(max_records, self.chunk)))
            .fetchall()
        )
        out = []
        for row in rows:
            polled_at = row.pop(_POLLED_AT)
            self._after = (polled_at, row[self.key])
            deleted = self.deleted_column is not None and str(row[self.deleted_column]) == self.deleted_value
            out.append(
                SourceRecord(
                    self._partition,
                    [polled_at.isoformat(), _plain(row[self.key])],
                    {k: _plain(v) for k, v in row.items()},
                    delete=deleted,
                )
            )
        self._idle = not out
        return out

    @property
    def idle(self) -> bool:
        return self._idle

    def stop(self) -> None:
        self._stopped = True

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
