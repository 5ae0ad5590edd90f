"""Stand-ins for the departments' own systems: native rows where each connector reads them.

Used by the universal connector suite, the connector benchmark and scaffolded connectors' tests:

- :class:`DropFolder`: incremental file drops (CSV in any encoding, JSON Lines, Excel);
- :class:`PostgresTable`: a live table in a real PostgreSQL server, with the department's own
  columns, updated the way its application would (update timestamps, hard or soft deletes);
- :class:`RestEndpoint`: an HTTP/JSON sharing API with cursor or keyset paging, served by the
  standard library on loopback.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import parse_qs, urlsplit

import orjson

from hub.datagen.exports import write_csv, write_jsonl


class DepartmentSystem(ABC):
    @abstractmethod
    def write(self, rows: Sequence[dict]) -> None:
        """Inserts or updates native rows."""

    @abstractmethod
    def delete(self, rows: Sequence[dict]) -> None:
        """Deletes the rows (native, at least their key columns)."""

    @abstractmethod
    def location(self) -> str:
        """What the connector's default source reads: a path, a DSN or a URL."""

    def close(self) -> None:  # noqa: B027 - optional
        pass


class DropFolder(DepartmentSystem):
    """Each write or delete becomes one complete drop file, written under a temporary name first."""

    def __init__(
        self,
        directory: Path,
        fmt: Literal["csv", "jsonl", "xlsx"],
        *,
        op_column: str,
        ops: dict[str, str] | None = None,
        encoding: str = "utf-8-sig",
    ) -> None:
        self.directory = directory
        self.format = fmt
        self.op_column = op_column
        self.ops = ops or {"I": "I", "U": "U", "D": "D"}
        self.encoding = encoding
        self._serial = itertools.count(1)
        directory.mkdir(parents=True, exist_ok=True)

    def _drop(self, rows: Sequence[dict], op: str) -> None:
        rows = [{**r, self.op_column: self.ops[op]} for r in rows]
        final = self.directory / f"drop-{next(self._serial):06d}.{self.format}"
        tmp = final.with_name(final.name + ".tmp")
        if self.format == "csv":
            write_csv(tmp, rows, self.encoding)
        elif self.format == "jsonl":
            write_jsonl(tmp, rows)
        else:
            write_xlsx(tmp, rows)
        tmp.rename(final)

    def write(self, rows: Sequence[dict]) -> None:
        self._drop(rows, "U")

    def delete(self, rows: Sequence[dict]) -> None:
        self._drop(rows, "D")

    def location(self) -> str:
        return str(self.directory)


def write_xlsx(path: Path, rows: Sequence[dict], sheet: str = "Sheet1") -> None:
    """An Excel workbook of the rows, as an office would fill a "one matter, one form" sheet."""
    from openpyxl import Workbook

    workbook = Workbook()
    ws = workbook.active
    assert ws is not None  # a new workbook has its one sheet
    ws.title = sheet
    header = list(rows[0]) if rows else []
    ws.append(header)
    for row in rows:
        ws.append([row.get(h) for h in header])
    workbook.save(path)


class PostgresTable(DepartmentSystem):
    """A department table; ``deletes`` is "hard" (DELETE) or the name of a soft-delete flag column."""

    def __init__(
        self, dsn: str, ddl: str, table: str, key: str, *, updated: str, deletes: str = "hard", settle_s: float = 0.0
    ) -> None:
        import psycopg

        self.dsn = dsn
        self.table = table
        self.key = key
        self.updated = updated
        self.deletes = deletes
        self.settle_s = settle_s  # a polling reader sees a change only this long after it was made
        self._conn = psycopg.connect(dsn, autocommit=True)
        self._conn.execute(f"DROP TABLE IF EXISTS {table}")
        self._conn.execute(ddl)
        self._conn.execute(f"ALTER TABLE {table} REPLICA IDENTITY FULL")  # deletes carry the old row

    def write(self, rows: Sequence[dict]) -> None:
        if not rows:
            return
        columns = list(rows[0])
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != self.key)
        flag = f", {self.deletes} = '0'" if self.deletes != "hard" else ""
        statement = (
            f"INSERT INTO {self.table} ({', '.join(columns)}, {self.updated}) "
            f"VALUES ({', '.join(['%s'] * len(columns))}, clock_timestamp()) "
            f"ON CONFLICT ({self.key}) DO UPDATE SET {updates}, "
            f"{self.updated} = clock_timestamp(){flag}"
        )
        with self._conn.cursor() as cur:
            cur.executemany(statement, [[r.get(c) for c in columns] for r in rows])
        time.sleep(self.settle_s)

    def delete(self, rows: Sequence[dict]) -> None:
        keys = [r[self.key] for r in rows]
        with self._conn.cursor() as cur:
            if self.deletes == "hard":
                cur.execute(f"DELETE FROM {self.table} WHERE {self.key} = ANY(%s)", (keys,))
            else:
                cur.execute(
                    f"UPDATE {self.table} SET {self.deletes} = '1', {self.updated} = clock_timestamp() "
                    f"WHERE {self.key} = ANY(%s)",
                    (keys,),
                )
        time.sleep(self.settle_s)

    def location(self) -> str:
        return self.dsn

    def close(self) -> None:
        self._conn.close()


class RestEndpoint(DepartmentSystem):
    """A sharing API on loopback. ``paging="cursor"`` serves a change feed with ``next_cursor``;
    ``paging="keyset"`` serves current rows in (update time, key) order with ``since``/``after``."""

    def __init__(
        self,
        path: str,
        key: str,
        *,
        paging: Literal["cursor", "keyset"],
        updated: str = "gxsj",
        delete_marker: Callable[[dict], dict],
        token: str = "",
    ) -> None:
        self.path = path
        self.key = key
        self.paging = paging
        self.updated = updated
        self._delete_marker = delete_marker
        self._token = token
        self._rows: dict[str, dict] = {}
        self._feed: list[dict] = []
        self._lock = threading.Lock()
        self.requests = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                endpoint.requests += 1
                url = urlsplit(self.path)
                if url.path != endpoint.path:
                    self.send_error(404)
                    return
                if endpoint._token and self.headers.get("Authorization") != f"Bearer {endpoint._token}":
                    self.send_error(401)
                    return
                body = orjson.dumps(endpoint._page({k: v[0] for k, v in parse_qs(url.query).items()}))
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _stamp(self) -> str:
        time.sleep(0.000002)  # strictly increasing stamps
        return dt.datetime.now().isoformat(sep=" ", timespec="microseconds")

    def write(self, rows: Sequence[dict]) -> None:
        with self._lock:
            for row in rows:
                stamped = {**row, self.updated: self._stamp()}
                self._rows[row[self.key]] = stamped
                self._feed.append(stamped)

    def delete(self, rows: Sequence[dict]) -> None:
        with self._lock:
            for row in rows:
                marked = {**self._delete_marker(self._rows.get(row[self.key], row)), self.updated: self._stamp()}
                self._rows[row[self.key]] = marked
                self._feed.append(marked)

    def _page(self, params: dict[str, str]) -> dict:
        with self._lock:
            if self.paging == "cursor":
                start = int(params.get("cursor") or 0)
                limit = int(params.get("limit", 500))
                items = self._feed[start : start + limit]
                return {
                    "items": items,
                    "next_cursor": str(start + len(items)),
                    "has_more": start + len(items) < len(self._feed),
                }
            since, after = params.get("since", ""), params.get("after", "")
            size = int(params.get("size", 500))
            ordered = sorted(self._rows.values(), key=lambda r: (r[self.updated], r[self.key]))
            items = [r for r in ordered if (r[self.updated], r[self.key]) > (since, after)][:size]
            return {"code": 0, "msg": "ok", "data": {"total": len(ordered), "page": 1, "size": size, "list": items}}

    def location(self) -> str:
        host, port = cast("tuple[str, int]", self._server.server_address[:2])  # an AF_INET server
        return f"http://{host}:{port}{self.path}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


SI_CBRY_DDL = """
CREATE TABLE si_cbry (
    aac002 varchar(18) PRIMARY KEY,              -- 公民身份号码
    aac003 varchar(50),                          -- 姓名
    aae140 varchar(40),                          -- 险种类型, comma-separated codes
    aac008 char(1) NOT NULL,                     -- 人员参保状态
    aab001 varchar(18),                          -- 单位统一社会信用代码
    aab301 char(6),                              -- 参保地行政区划
    aae201 integer,                              -- 累计缴费月数
    aae002 char(6),                              -- 最近缴费费款所属期 YYYYMM
    aae036 timestamp NOT NULL DEFAULT now(),     -- 经办时间
    aae100 char(1) NOT NULL DEFAULT '1'          -- 有效标志
)"""

GJJ_GRZH_DDL = """
CREATE TABLE gjj_grzh (
    grzh varchar(20) PRIMARY KEY,                -- 个人账号
    zjhm varchar(18) NOT NULL,                   -- 证件号码
    xingming varchar(50),                        -- 姓名
    dwtyxydm varchar(18),                        -- 单位统一社会信用代码
    grzhzt char(2) NOT NULL,                     -- 个人账户状态
    yjce numeric(12, 2),                         -- 月缴存额
    grzhye numeric(14, 2),                       -- 个人账户余额
    zhjcrq date,                                 -- 最近缴存日期
    khrq date NOT NULL,                          -- 开户日期
    gxsj timestamp NOT NULL DEFAULT now(),       -- 更新时间
    scbz char(1) NOT NULL DEFAULT '0'            -- 删除标志
);
CREATE INDEX gjj_grzh_gxsj ON gjj_grzh (gxsj, grzh)"""
