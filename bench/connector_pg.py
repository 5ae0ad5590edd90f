"""PostgreSQL → hub cache throughput of the social-security connector, beside a plain
``COPY ... TO STDOUT`` of the same table in the same run.

    python -m bench.connector_pg [--rows 200000]

Measures the initial load (the connector's keyset-paged copy, mapping, gRPC Publish, Kafka, the
cache, until a read-your-writes Verify sees the last row) and the change stream (updates made after
the load, through the logical replication slot, until the cache shows the last one). The hub runs
in its own process; the connector in this one.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import psycopg

from bench.common import Report
from hub.childproc import free_port
from hub.client import open_channel, wait_serving
from hub.connect.registry import resolve_connector
from hub.connect.runtime import ConnectorRuntime, RuntimeOptions
from hub.datagen import native
from hub.datagen.city import City, CitySize
from hub.datagen.departments import SI_CBRY_DDL, PostgresTable
from hub.devservices import PostgresServer
from hub.kafka.embedded import EmbeddedBroker
from hub.v1 import common_pb2, verification_pb2, verification_pb2_grpc

COLUMNS = ["aac002", "aac003", "aae140", "aac008", "aab001", "aab301", "aae201", "aae002"]


def load_table(dsn: str, rows: int) -> list[dict]:
    PostgresTable(dsn, SI_CBRY_DDL, "si_cbry", "aac002", updated="aae036").close()
    records = []
    for r in City(2017, CitySize(int(rows * 1.9) + 1000, 2000)).insured():
        records.append(native.insured(r))
        if len(records) == rows:
            break
    with (
        psycopg.connect(dsn, autocommit=True) as conn,
        conn.cursor() as cur,
        cur.copy(f"COPY si_cbry ({', '.join(COLUMNS)}) FROM STDIN") as copy,
    ):
        for r in records:
            copy.write_row([r[c] for c in COLUMNS])
    return records


def copy_out(dsn: str) -> tuple[int, float]:
    """Rows and seconds of COPY si_cbry TO STDOUT, read to the end."""
    started = time.perf_counter()
    n = 0
    with psycopg.connect(dsn) as conn, conn.cursor() as cur, cur.copy("COPY si_cbry TO STDOUT") as copy:
        for block in copy:
            n += bytes(block).count(b"\n")
    return n, time.perf_counter() - started


def verify_visible(channel: grpc.Channel, key: str, offsets) -> None:
    verification_pb2_grpc.VerificationStub(channel).Verify(
        verification_pb2.VerifyRequest(
            resource="social_security.insured",
            key=key,
            context=common_pb2.CallContext(purpose=common_pb2.PURPOSE_DATA_CHECK, case_number="BENCH"),
            consistency=common_pb2.Consistency(min_offsets=offsets),
        ),
        timeout=600,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--updates", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(Path(tmp) / "broker") as broker:
        pg = PostgresServer(Path(tmp) / "pg")
        dsn = pg.start()
        port = free_port()
        hub = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hub",
                "serve",
                "--bootstrap-servers",
                broker.bootstrap,
                "--port",
                str(port),
                "--data-dir",
                str(Path(tmp) / "hub"),
                "--insecure-dev",
            ],
            stderr=subprocess.DEVNULL,
            env={**os.environ, "HUB_LOG_LEVEL": "WARNING"},
        )
        try:
            records = load_table(dsn, args.rows)
            print(f"loaded {len(records):,} rows into si_cbry", flush=True)
            copy_rows, copy_s = copy_out(dsn)
            print(f"COPY si_cbry TO STDOUT: {copy_rows:,} rows in {copy_s:.2f}s", flush=True)

            connector = resolve_connector("social_security")()
            channel = open_channel(f"127.0.0.1:{port}", department=connector.department)
            wait_serving(channel, 120)
            options = RuntimeOptions(batch_size=5000, max_in_flight=4, stop_when_idle=True)
            started = time.perf_counter()
            runtime = ConnectorRuntime(connector, connector.default_source(dsn), channel, Path(tmp) / "state", options)
            runtime.run()
            verify_visible(channel, records[-1]["aac002"], runtime.last_offsets)
            load_s = time.perf_counter() - started
            print(
                f"connector initial load: {runtime.stats.published:,} rows in the cache after {load_s:.2f}s", flush=True
            )

            keys = [r["aac002"] for r in records[: args.updates]]
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(
                    "UPDATE si_cbry SET aae201 = aae201 + 1, aae036 = clock_timestamp() WHERE aac002 = ANY(%s)", (keys,)
                )
            started = time.perf_counter()
            runtime = ConnectorRuntime(connector, connector.default_source(dsn), channel, Path(tmp) / "state", options)
            runtime.run()
            verify_visible(channel, keys[-1], runtime.last_offsets)
            stream_s = time.perf_counter() - started
            print(f"change stream: {runtime.stats.published:,} updates in the cache after {stream_s:.2f}s", flush=True)
            channel.close()
        finally:
            hub.terminate()
            hub.wait(60)
            pg.stop()
    report = Report(f"PostgreSQL → cache, social_security.insured, {args.rows:,} rows")
    report.add("initial load, rows/s", len(records) / load_s, "COPY TO STDOUT", copy_rows / copy_s, "rows/s")
    report.add("change stream, updates/s", args.updates / stream_s, "COPY TO STDOUT", copy_rows / copy_s, "rows/s")
    report.print_summary()


if __name__ == "__main__":
    main()
