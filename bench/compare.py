"""What a city would otherwise build: the hub beside PostgreSQL and Redis on the same verification
workload, at the same client concurrency, in one run.

    python -m bench.compare [--residents 1000000] [--entities 340000] [--seconds 5] [--workers 2]

The same seeded residents and market entities go into each system: the hub's topics (read by
``hub serve --workers N`` with audit on, called as a grantee department over gRPC), a PostgreSQL
table per resource with its primary key, and a Redis hash per record. PostgreSQL 15 and Redis come
from Debian's packages and run on loopback, started here.

The question is the hub's: "is this resident registered in Deyang (district prefix 5106)?" and,
for a quarter of the single calls, "is this entity active?". PostgreSQL answers it in SQL with a
prepared statement (batches: ``= ANY($1)``); Redis returns the fields (HMGET, one call at a time
or pipelined) and the client compares them; the hub answers Verify and VerifyBatch. Every client is
Python asyncio in this process (grpc.aio, psycopg, redis-py), one connection per call in flight, so
the client's own cost counts for all three. Ends with a table of rates and ratios, and a chart.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench.common import Report
from hub.client import ensure_grants, open_aio_channel
from hub.datagen.city import City, CitySize
from hub.datagen.produce import produce_city
from hub.devservices import PostgresServer, RedisServer
from hub.kafka.embedded import EmbeddedBroker
from hub.testing.served import ServedHub
from hub.v1 import common_pb2, verification_pb2, verification_pb2_grpc

CONSUMER = "approval_bureau"
CONTEXT = common_pb2.CallContext(purpose=common_pb2.PURPOSE_LEGAL_BASIS, case_number="BENCH-COMPARE")
PREFIX_CLAIM = verification_pb2.Claim(field="district_code", op=verification_pb2.CLAIM_OP_PREFIX, values=["5106"])
ACTIVE_CLAIM = verification_pb2.Claim(field="status", values=["active"])
BATCH = 1000

# (resident id, district, status) and (credit code, status): what the question needs.
Residents = list[tuple[str, str, str]]
Entities = list[tuple[str, str]]


def city_rows(size: CitySize, seed: int) -> tuple[Residents, Entities]:
    city = City(seed, size)
    residents = [(r["resident_id"], r["district_code"], r["status"]) for r in city.residents()]
    entities = [(e["credit_code"], e["status"]) for e in city.entities()]
    return residents, entities


# -- loading ------------------------------------------------------------------------------------


def load_postgres(dsn: str, residents: Residents, entities: Entities) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS resident, entity")
        conn.execute("CREATE TABLE resident (resident_id text PRIMARY KEY, district_code text, status text)")
        conn.execute("CREATE TABLE entity (credit_code text PRIMARY KEY, status text)")
        with conn.cursor() as cur:
            with cur.copy("COPY resident FROM STDIN") as copy:
                for row in residents:
                    copy.write_row(row)
            with cur.copy("COPY entity FROM STDIN") as copy:
                for row in entities:
                    copy.write_row(row)
        conn.execute("VACUUM ANALYZE resident")
        conn.execute("VACUUM ANALYZE entity")


def load_redis(port: int, residents: Residents, entities: Entities) -> None:
    import redis

    client = redis.Redis(port=port)
    pipe = client.pipeline(transaction=False)
    for i, (rid, district, status) in enumerate(residents):
        pipe.hset(f"resident:{rid}", mapping={"district_code": district, "status": status})
        if i % 10_000 == 9_999:
            pipe.execute()
    for i, (code, status) in enumerate(entities):
        pipe.hset(f"entity:{code}", mapping={"status": status})
        if i % 10_000 == 9_999:
            pipe.execute()
    pipe.execute()
    client.close()


# -- the systems under test ---------------------------------------------------------------------


class HubTarget:
    def __init__(self, address: str) -> None:
        self.address = address

    async def single(self, concurrency: int, calls: list[tuple[str, str]], seconds: float) -> float:
        channels = [open_aio_channel(self.address, department=CONSUMER) for _ in range(concurrency)]
        stubs = [verification_pb2_grpc.VerificationStub(c) for c in channels]
        requests = [
            verification_pb2.VerifyRequest(
                resource="population.resident", key=k, claims=[PREFIX_CLAIM], context=CONTEXT
            )
            if kind == "resident"
            else verification_pb2.VerifyRequest(resource="market.entity", key=k, claims=[ACTIVE_CLAIM], context=CONTEXT)
            for kind, k in calls
        ]

        def call(worker: int, i: int) -> Awaitable:
            return stubs[worker].Verify(requests[i % len(requests)], timeout=30)

        try:
            return await drive(concurrency, call, seconds)
        finally:
            for c in channels:
                await c.close()

    async def batch(self, concurrency: int, batches: list[list[str]], seconds: float) -> float:
        channels = [open_aio_channel(self.address, department=CONSUMER) for _ in range(concurrency)]
        stubs = [verification_pb2_grpc.VerificationStub(c) for c in channels]
        column = verification_pb2.ClaimColumn(
            field="district_code", op=verification_pb2.CLAIM_OP_PREFIX, values=["5106"]
        )
        requests = [
            verification_pb2.VerifyBatchRequest(
                resource="population.resident", keys=b, claims=[column], context=CONTEXT
            )
            for b in batches
        ]

        def call(worker: int, i: int) -> Awaitable:
            return stubs[worker].VerifyBatch(requests[i % len(requests)], timeout=60)

        try:
            return await drive(concurrency, call, seconds) * BATCH
        finally:
            for c in channels:
                await c.close()


PG_SINGLE = {
    "resident": "SELECT left(district_code, 4) = '5106' FROM resident WHERE resident_id = %s",
    "entity": "SELECT status = 'active' FROM entity WHERE credit_code = %s",
}
PG_BATCH = "SELECT resident_id, left(district_code, 4) = '5106' FROM resident WHERE resident_id = ANY(%s)"


class PostgresTarget:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    async def _connections(self, n: int):
        import psycopg

        return [await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) for _ in range(n)]

    async def single(self, concurrency: int, calls: list[tuple[str, str]], seconds: float) -> float:
        conns = await self._connections(concurrency)

        async def call(worker: int, i: int) -> None:
            kind, key = calls[i % len(calls)]
            cur = await conns[worker].execute(PG_SINGLE[kind], (key,), prepare=True)
            await cur.fetchone()

        try:
            return await drive(concurrency, call, seconds)
        finally:
            for c in conns:
                await c.close()

    async def batch(self, concurrency: int, batches: list[list[str]], seconds: float) -> float:
        conns = await self._connections(concurrency)

        async def call(worker: int, i: int) -> None:
            cur = await conns[worker].execute(PG_BATCH, (batches[i % len(batches)],), prepare=True)
            await cur.fetchall()

        try:
            return await drive(concurrency, call, seconds) * BATCH
        finally:
            for c in conns:
                await c.close()


class RedisTarget:
    def __init__(self, port: int) -> None:
        self.port = port

    def _clients(self, n: int):
        import redis.asyncio as aredis

        return [aredis.Redis(port=self.port) for _ in range(n)]

    async def single(self, concurrency: int, calls: list[tuple[str, str]], seconds: float) -> float:
        clients = self._clients(concurrency)

        async def call(worker: int, i: int) -> bool:
            kind, key = calls[i % len(calls)]
            if kind == "resident":
                district, _ = await clients[worker].hmget(f"resident:{key}", "district_code", "status")
                return district is not None and district.startswith(b"5106")
            (status,) = await clients[worker].hmget(f"entity:{key}", "status")
            return status == b"active"

        try:
            return await drive(concurrency, call, seconds)
        finally:
            for c in clients:
                await c.aclose()

    async def batch(self, concurrency: int, batches: list[list[str]], seconds: float) -> float:
        clients = self._clients(concurrency)

        async def call(worker: int, i: int) -> list[bool]:
            pipe = clients[worker].pipeline(transaction=False)
            for key in batches[i % len(batches)]:
                pipe.hmget(f"resident:{key}", "district_code")
            return [d is not None and d.startswith(b"5106") for (d,) in await pipe.execute()]

        try:
            return await drive(concurrency, call, seconds) * BATCH
        finally:
            for c in clients:
                await c.aclose()


async def drive(concurrency: int, call: Callable[[int, int], Awaitable], seconds: float) -> float:
    """Calls per second with ``concurrency`` callers, each waiting for its answer before the next."""
    for w in range(concurrency):  # warm up every connection
        await call(w, w)
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal done
        i = w
        while time.perf_counter() < stop:
            await call(w, i)
            i += concurrency
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return done / (time.perf_counter() - started)


def in_process(residents: Residents, entities: Entities, calls: list[tuple[str, str]], seconds: float) -> float:
    """The floor: the same question against a dict of dicts in this process."""
    people = {rid: {"district_code": d, "status": s} for rid, d, s in residents}
    firms = {code: {"status": s} for code, s in entities}

    def one(i: int) -> bool:
        kind, key = calls[i % len(calls)]
        if kind == "resident":
            r = people.get(key)
            return r is not None and r["district_code"].startswith("5106")
        e = firms.get(key)
        return e is not None and e["status"] == "active"

    done, stop, started = 0, time.perf_counter() + seconds, time.perf_counter()
    while time.perf_counter() < stop:
        for _ in range(1000):
            one(done)
            done += 1
    return done / (time.perf_counter() - started)


def chart(results: dict[tuple[str, str], float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = sorted({w for _, w in results}, key=lambda w: list(dict.fromkeys(w for _, w in results)).index(w))
    systems = ["hub", "PostgreSQL", "Redis"]
    fig, axes = plt.subplots(1, len(workloads), figsize=(4 * len(workloads), 4.2), constrained_layout=True)
    for ax, workload in zip(axes, workloads, strict=True):
        values = [results.get((s, workload), 0.0) for s in systems]
        bars = ax.bar(systems, values, color=["tab:blue", "tab:grey", "tab:red"])
        ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize=8)
        ax.set_title(workload, fontsize=10)
        ax.set_ylabel("keys per second" if "batch" in workload else "verifications per second")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Same verification workload, same client concurrency, one 2-core machine", fontsize=11)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=1_000_000)
    parser.add_argument("--entities", type=int, default=340_000)
    parser.add_argument("--seconds", type=float, default=5.0, help="Measuring time per point.")
    parser.add_argument("--workers", type=int, default=2, help="Hub server processes.")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8], help="Calls in flight.")
    parser.add_argument("--seed", type=int, default=2017)
    parser.add_argument("--chart", type=Path, default=Path("docs/img/compare.png"))
    args = parser.parse_args()

    size = CitySize(args.residents, args.entities)
    started = time.perf_counter()
    residents, entities = city_rows(size, args.seed)
    print(f"generated {len(residents):,} residents, {len(entities):,} entities in {time.perf_counter() - started:.0f}s")
    rng = random.Random(5)
    calls = [
        ("entity", entities[rng.randrange(len(entities))][0])
        if i % 4 == 3
        else ("resident", residents[rng.randrange(len(residents))][0])
        for i in range(50_000)
    ]
    batches = [[residents[rng.randrange(len(residents))][0] for _ in range(BATCH)] for _ in range(100)]
    results: dict[tuple[str, str], float] = {}

    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        root = Path(tmp)
        postgres, redis_server, broker, hub = PostgresServer(root / "pg"), RedisServer(root / "redis"), None, None
        try:
            postgres.start()
            redis_server.start()
            broker = EmbeddedBroker(root / "broker")
            bootstrap = broker.start()
            t = time.perf_counter()
            load_postgres(postgres.dsn, residents, entities)
            print(f"PostgreSQL loaded with COPY in {time.perf_counter() - t:.0f}s", flush=True)
            t = time.perf_counter()
            load_redis(redis_server.port, residents, entities)
            print(f"Redis loaded with pipelined HSET in {time.perf_counter() - t:.0f}s", flush=True)
            produce_city(bootstrap, "hub.", size, args.seed)
            hub = ServedHub(bootstrap, root / "hub", args.workers)
            hub.wait_loaded({"population.resident": len(residents)})  # every worker holds the city
            address = hub.address
            ensure_grants(address, [(CONSUMER, "population.resident", [CONTEXT.purpose])])
            print(f"hub ({args.workers} workers, audit on) serving the city", flush=True)

            targets = {
                "hub": HubTarget(address),
                "PostgreSQL": PostgresTarget(postgres.dsn),
                "Redis": RedisTarget(redis_server.port),
            }
            for concurrency in args.concurrency:
                workload = f"single, {concurrency} in flight"
                for name, target in targets.items():
                    results[name, workload] = asyncio.run(target.single(concurrency, calls, args.seconds))
                    print(f"  {workload}: {name} {results[name, workload]:,.0f}/s", flush=True)
            for concurrency in args.concurrency:
                workload = f"batch of {BATCH:,}, {concurrency} in flight"
                for name, target in targets.items():
                    results[name, workload] = asyncio.run(target.batch(concurrency, batches, args.seconds))
                    print(f"  {workload}: {name} {results[name, workload]:,.0f} keys/s", flush=True)
        finally:
            if hub is not None:
                hub.stop()
            if broker is not None:
                broker.stop()
            redis_server.stop()
            postgres.stop()

    floor = in_process(residents, entities, calls, args.seconds)
    args.chart.parent.mkdir(parents=True, exist_ok=True)
    chart(results, args.chart)
    report = Report(
        f"hub ({args.workers} workers, audit on) vs PostgreSQL 15 and Redis, {args.residents:,} residents, "
        f"{args.entities:,} entities; Python asyncio clients"
    )
    for workload in dict.fromkeys(w for _, w in results):
        unit = "keys/s" if "batch" in workload else "/s"
        for peer in ("PostgreSQL", "Redis"):
            report.add(f"{workload}: hub", results["hub", workload], peer, results[peer, workload], unit)
    report.print_summary()
    print(f"in process, a dict of dicts answers {floor:,.0f}/s: the floor no networked service reaches")
    print(f"chart: {args.chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
