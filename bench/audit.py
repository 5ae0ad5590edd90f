"""What auditing before answering costs: Verify with the answer released once Kafka acknowledged the
call's audit entry (the hub's behaviour), against the entry only queued (the behaviour before, when
an entry became durable about 20 ms after its answer), in one run.

    python -m bench.audit [--residents 20000] [--seconds 5]

Two server processes, one per mode, on one embedded broker; this process is the client. Each mode
is driven with 1 call in flight (latency: the acknowledgement's round trip is on every call) and
with 16 and 64 in flight (throughput: group commit puts many calls' entries in one produce).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Report
from hub.childproc import free_port
from hub.client import open_aio_channel, open_channel, wait_serving
from hub.datagen.city import CitySize, resident_ids
from hub.datagen.produce import produce_city
from hub.kafka.embedded import EmbeddedBroker
from hub.v1 import common_pb2, verification_pb2, verification_pb2_grpc

MODES = ("acknowledged", "queued")
PROVIDER = "public_security"  # calls as the provider: the policy path is the same in both modes
CONTEXT = common_pb2.CallContext(purpose=common_pb2.PURPOSE_LEGAL_BASIS, case_number="BENCH-AUDIT")
IN_FLIGHT = (1, 16, 64)


def serve(bootstrap: str, port: int, data_dir: str, mode: str) -> None:
    from hub.catalogue.model import load_builtin
    from hub.server.app import HubServer
    from hub.settings import HubSettings

    async def run() -> None:
        settings = HubSettings(
            bootstrap_servers=bootstrap, port=port, data_dir=Path(data_dir), snapshot_interval_s=0, insecure_dev=True
        )
        hub = HubServer(settings, bootstrap, load_builtin())
        await hub.start()
        if mode == "queued":
            audit = hub.audit

            async def queue_only(event) -> None:
                audit.record(event)

            audit.write = queue_only
        await hub.wait()

    asyncio.run(run())


async def drive(address: str, requests: list, seconds: float, in_flight: int) -> tuple[float, float, float]:
    """Calls per second, and the p50 and p99 latency in ms, with ``in_flight`` calls at a time."""
    async with open_aio_channel(address, department=PROVIDER) as channel:
        stub = verification_pb2_grpc.VerificationStub(channel)
        for request in requests[:50]:
            await stub.Verify(request, timeout=30)
        latencies: list[float] = []
        stop = time.perf_counter() + seconds

        async def worker(i: int) -> None:
            while time.perf_counter() < stop:
                started = time.perf_counter()
                await stub.Verify(requests[i % len(requests)], timeout=30)
                latencies.append(time.perf_counter() - started)
                i += in_flight

        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(in_flight)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return len(latencies) / elapsed, latencies[len(latencies) // 2] * 1000, latencies[len(latencies) * 99 // 100] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--serve", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        bootstrap, port, data_dir, mode = args.serve
        serve(bootstrap, int(port), data_dir, mode)
        return

    requests = [
        verification_pb2.VerifyRequest(
            resource="population.resident",
            key=k,
            claims=[verification_pb2.Claim(field="status", values=["registered"])],
            context=CONTEXT,
        )
        for k in resident_ids(2017, args.residents)
    ]
    results: dict[tuple[str, int], tuple[float, float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(Path(tmp) / "broker") as broker:
        produce_city(broker.bootstrap, "hub.", CitySize(args.residents, 1000))
        for mode in MODES:
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.audit", "--serve", broker.bootstrap, str(port), f"{tmp}/{mode}", mode],
                stderr=subprocess.DEVNULL,
                env={**os.environ, "HUB_LOG_LEVEL": "WARNING"},
            )
            try:
                address = f"127.0.0.1:{port}"
                wait_serving(open_channel(address, department=PROVIDER), 300)
                print(f"{mode}:", flush=True)
                for n in IN_FLIGHT:
                    results[mode, n] = asyncio.run(drive(address, requests, args.seconds, n))
                    rps, p50, p99 = results[mode, n]
                    print(f"  {n:>2} in flight: {rps:,.0f} calls/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms", flush=True)
            finally:
                proc.terminate()
                proc.wait(60)
    report = Report(f"Verify, audit entry acknowledged before the answer vs only queued, {args.seconds:g}s each")
    for n in IN_FLIGHT:
        new, old = results["acknowledged", n], results["queued", n]
        report.add(f"calls/s, {n} in flight", new[0], "queued", old[0], "/s")
        report.add(f"p50 ms, {n} in flight", new[1], "queued", old[1], "ms")
    report.print_summary()


if __name__ == "__main__":
    main()
