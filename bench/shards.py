"""The sharded cache, measured past one process: 1, 2 and 4 shard processes against the unsharded hub.

    python -m bench.shards [--residents 10000000] [--layouts 2,4] [--seconds 5] [--concurrency 16]

A province-like resident set is generated from a seed and produced to an embedded broker once.
Then, one configuration at a time (so the machine holds one at a time): the unsharded hub
(``hub serve``), and ``N`` processes of ``hub serve --shard I/N``. For each it prints the resident
memory of every process, the time until all are SERVING and announced, and single-key Verify and
1,000-key VerifyBatch throughput through the routing client (:class:`hub.client.ShardRoutes`: each
key, or each batch's share, straight to its shard) and through forwarding (every call to shard 0,
which forwards single keys and scatters batches), each as a ratio to the unsharded hub.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import rss_mib
from hub.childproc import free_port
from hub.client import ShardRoutes, open_aio_channel, open_channel, wait_serving
from hub.datagen.city import CitySize, resident_ids
from hub.datagen.produce import produce_city
from hub.kafka.embedded import EmbeddedBroker
from hub.records.shards import shard_of, shards_of
from hub.v1 import catalog_pb2, catalog_pb2_grpc, common_pb2, verification_pb2, verification_pb2_grpc

SEED = 2017
RES = "population.resident"
DEPARTMENT = "public_security"
CONTEXT = common_pb2.CallContext(purpose=common_pb2.PURPOSE_LEGAL_BASIS, case_number="BENCH-1")
CLAIMS = [verification_pb2.Claim(field="district_code", op=verification_pb2.CLAIM_OP_PREFIX, values=["51"])]
BATCH = 1000


def start(bootstrap: str, data_dir: Path, count: int) -> tuple[list[subprocess.Popen], list[str]]:
    """``count`` shard processes (0: one unsharded hub); their PIDs and addresses."""
    procs, addresses = [], []
    for index in range(max(count, 1)):
        port = free_port()
        shard = ["--shard", f"{index}/{count}"] if count else []
        procs.append(
            subprocess.Popen(
                [
                    *(sys.executable, "-m", "hub.cli", "serve", "--insecure-dev", *shard),
                    *("--bootstrap-servers", bootstrap, "--data-dir", str(data_dir), "--port", str(port)),
                    *("--snapshot-interval-s", "0", "--no-audit", "--metrics-port", "0"),
                ],
                env={**os.environ, "HUB_LOG_LEVEL": "WARNING", "HUB_NOTICE_ENGINE": "false"},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        addresses.append(f"127.0.0.1:{port}")
    return procs, addresses


def wait_ready(addresses: list[str], count: int, timeout: float) -> None:
    for address in addresses:
        wait_serving(open_channel(address, department=DEPARTMENT), timeout)
    catalog = catalog_pb2_grpc.CatalogStub(open_channel(addresses[0], department=DEPARTMENT))
    deadline = time.monotonic() + 60
    while count and not all(s.replicas for s in catalog.Shards(catalog_pb2.ShardsRequest(), timeout=10).shards):
        if time.monotonic() > deadline:
            raise TimeoutError("shards did not announce themselves")
        time.sleep(0.2)


async def singles(stubs, keys: list[str], seconds: float, concurrency: int) -> float:
    """Verify calls per second; ``stubs(key)`` picks the stub to call."""
    done, stop = 0, time.monotonic() + seconds

    async def worker() -> None:
        nonlocal done
        while time.monotonic() < stop:
            key = random.choice(keys)
            request = verification_pb2.VerifyRequest(resource=RES, key=key, claims=CLAIMS, context=CONTEXT)
            response = await stubs(key).Verify(request, timeout=30)
            assert response.found
            done += 1

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.monotonic() - started)


async def batches(split, keys: list[str], seconds: float, concurrency: int) -> float:
    """Keys verified per second in 1,000-key batches; ``split(keys)`` gives (stub, keys) per call."""
    done, stop = 0, time.monotonic() + seconds

    async def worker() -> None:
        nonlocal done
        while time.monotonic() < stop:
            batch = random.sample(keys, BATCH)
            calls = [
                stub.VerifyBatch(
                    verification_pb2.VerifyBatchRequest(resource=RES, keys=part, context=CONTEXT), timeout=60
                )
                for stub, part in split(batch)
            ]
            for response in await asyncio.gather(*calls):
                assert all(response.found)
            done += BATCH

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(max(1, concurrency // 4))))
    return done / (time.monotonic() - started)


async def throughput(addresses: list[str], count: int, keys: list[str], seconds: float, concurrency: int) -> dict:
    stubs = {a: verification_pb2_grpc.VerificationStub(open_aio_channel(a, department=DEPARTMENT)) for a in addresses}
    first = stubs[addresses[0]]
    figures = {
        "forwarded single": await singles(lambda key: first, keys, seconds, concurrency),
        "forwarded batch": await batches(lambda batch: [(first, batch)], keys, seconds, concurrency),
    }
    if count:
        routes = ShardRoutes(open_channel(addresses[0], department=DEPARTMENT), lambda a: open_channel(a))
        owner = [stubs[routes.channel_address(i)] for i in range(count)]
        routes.close()

        def split(batch: list[str]) -> list:
            shards = shards_of(batch, 6, count)
            return [(owner[i], [batch[j] for j in np.flatnonzero(shards == i)]) for i in range(count)]

        figures["routed single"] = await singles(lambda key: owner[shard_of(key, 6, count)], keys, seconds, concurrency)
        figures["routed batch"] = await batches(split, keys, seconds, concurrency)
    else:
        figures["routed single"], figures["routed batch"] = figures["forwarded single"], figures["forwarded batch"]
    return figures


def measure(bootstrap: str, tmp: Path, count: int, keys: list[str], args) -> dict:
    started = time.monotonic()
    procs, addresses = start(bootstrap, tmp / f"layout-{count}", count)
    try:
        wait_ready(addresses, count, args.timeout)
        serving_s = time.monotonic() - started
        memory = [rss_mib(p.pid) for p in procs]
        figures = asyncio.run(throughput(addresses, count, keys, args.seconds, args.concurrency))
        return {"serving_s": serving_s, "memory": memory, **figures}
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=10_000_000)
    parser.add_argument("--layouts", default="2,4", help="shard counts to measure after the unsharded hub")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=7200.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-shards-") as tmp_dir:
        tmp = Path(tmp_dir)
        broker = EmbeddedBroker(tmp / "broker", "memory")
        bootstrap = broker.start()
        try:
            started = time.monotonic()
            produce_city(bootstrap, "hub.", CitySize(args.residents, 1), SEED)
            print(f"produced {args.residents:,} residents in {time.monotonic() - started:.0f}s", flush=True)
            everyone = resident_ids(SEED, args.residents)  # the IDs depend on the city's size
            keys = random.Random(SEED).sample(everyone, min(args.residents, 200_000))
            del everyone
            results = {}
            for count in (0, *(int(c) for c in args.layouts.split(","))):
                results[count] = measure(bootstrap, tmp, count, keys, args)
                r = results[count]
                print(f"{count or 'unsharded'}: {r}", flush=True)
        finally:
            broker.stop()
    base = results[0]
    print(f"\n== bench.shards: {args.residents:,} residents, ratios to the unsharded hub in the same run ==")
    print(
        f"{'layout':<10} {'max RSS MiB':>12} {'sum RSS MiB':>12} {'SERVING s':>10} {'routed single':>16} "
        f"{'fwd single':>16} {'routed batch':>16} {'fwd batch':>16}"
    )
    for count, r in results.items():
        cells = [
            f"{r[k]:,.0f} ({r[k] / base[k]:.2f}x)"
            for k in ("routed single", "forwarded single", "routed batch", "forwarded batch")
        ]
        name = f"{count} shards" if count else "unsharded"
        print(
            f"{name:<10} {max(r['memory']):>12,.0f} {sum(r['memory']):>12,.0f} {r['serving_s']:>10.1f} "
            + " ".join(f"{c:>16}" for c in cells)
        )
    print("(single: Verify calls/s; batch: keys/s in 1,000-key VerifyBatch; RSS per process after SERVING)")


if __name__ == "__main__":
    main()
