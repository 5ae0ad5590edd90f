"""gRPC benchmark: Verify and VerifyBatch through a real channel, against a trivial echo RPC on
the same server stack (same process, server, interceptors and protobuf messages) in the same run.

    python -m bench.rpc [--residents 1000000] [--seconds 5] [--concurrency 16]

The echo methods deserialize the same request messages and return a same-shaped response without
touching the cache, so Verify/Echo is the share of the server's capacity left after the hub's own work.
The server runs in its own process; this process is the client (grpc.aio, N calls in flight).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from grpc import aio

from bench.common import Report
from bench.seed import produce_city
from hub.childproc import free_port
from hub.datagen.city import CitySize, resident_ids
from hub.demo import wait_serving
from hub.kafka.embedded import EmbeddedBroker
from hub.v1 import verification_pb2, verification_pb2_grpc

ECHO_SERVICE = "bench.Echo"


def echo_handlers() -> grpc.GenericRpcHandler:
    """Echo methods that parse the hub's request messages and answer like the hub, without the cache."""
    canned = verification_pb2.VerifyResponse(found=True, match=True, claims=[True])
    canned_bytes = canned.SerializeToString()

    async def verify(request: verification_pb2.VerifyRequest, context) -> bytes:
        return canned_bytes

    async def verify_batch(request: verification_pb2.VerifyBatchRequest, context) -> bytes:
        n = len(request.keys)
        return verification_pb2.VerifyBatchResponse(
            found=[True] * n, match=[True] * n, claims=[verification_pb2.ClaimColumnResult(matched=[True] * n)]
        ).SerializeToString()

    return grpc.method_handlers_generic_handler(
        ECHO_SERVICE,
        {
            "Verify": grpc.unary_unary_rpc_method_handler(
                verify, request_deserializer=verification_pb2.VerifyRequest.FromString, response_serializer=bytes
            ),
            "VerifyBatch": grpc.unary_unary_rpc_method_handler(
                verify_batch,
                request_deserializer=verification_pb2.VerifyBatchRequest.FromString,
                response_serializer=bytes,
            ),
        },
    )


def serve(bootstrap: str, port: int, data_dir: str) -> None:
    from hub.catalogue.model import load_builtin
    from hub.server.app import HubServer
    from hub.settings import HubSettings

    async def run() -> None:
        settings = HubSettings(bootstrap_servers=bootstrap, port=port, data_dir=Path(data_dir), snapshot_interval_s=0)
        hub = HubServer(settings, bootstrap, load_builtin(), extra_handlers=[echo_handlers()])
        await hub.start()
        await hub.wait()

    asyncio.run(run())


async def drive(address: str, make_call, seconds: float, concurrency: int) -> float:
    """Calls per second with ``concurrency`` calls in flight for ``seconds``."""
    async with aio.insecure_channel(address, options=[("grpc.max_receive_message_length", 64 << 20)]) as channel:
        call = make_call(channel)
        for _ in range(50):
            await call()
        done = 0
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                await call()
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--serve", nargs=3, metavar=("BOOTSTRAP", "PORT", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.serve[2])
        return

    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(Path(tmp) / "broker") as broker:
        produce_city(broker.bootstrap, "hub.", CitySize(args.residents, 1000))
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "bench.rpc", "--serve", broker.bootstrap, str(port), tmp],
            stderr=subprocess.DEVNULL,
            env={**os.environ, "HUB_LOG_LEVEL": "WARNING"},
        )
        try:
            address = f"127.0.0.1:{port}"
            started = time.perf_counter()
            wait_serving(grpc.insecure_channel(address), 600)
            print(f"hub SERVING {time.perf_counter() - started:.1f}s after start", flush=True)
            results = asyncio.run(measure(address, args))
        finally:
            server.terminate()
            server.wait(30)
    single, echo, batch, echo_batch = results
    report = Report(f"gRPC, one server process, {args.concurrency} calls in flight, {args.residents:,} residents")
    report.add("Verify RPC/s", single, "echo RPC", echo, "/s", ">= 0.6x echo")
    report.add(
        "VerifyBatch keys/s (1,000 per call)",
        batch * 1000,
        "echo batch",
        echo_batch * 1000,
        "keys/s",
        ">= 500,000 keys/s",
    )
    report.print_summary()


async def measure(address: str, args) -> tuple[float, float, float, float]:
    ids = resident_ids(2017, args.residents)
    rng = random.Random(3)
    sample = [ids[rng.randrange(len(ids))] for _ in range(100_000)]
    claims = [verification_pb2.Claim(field="district_code", op=verification_pb2.CLAIM_OP_PREFIX, values=["5106"])]
    single_requests = [
        verification_pb2.VerifyRequest(resource="population.resident", key=k, claims=claims) for k in sample[:20000]
    ]
    batch_requests = [
        verification_pb2.VerifyBatchRequest(
            resource="population.resident",
            keys=sample[i : i + 1000],
            claims=[
                verification_pb2.ClaimColumn(
                    field="district_code", op=verification_pb2.CLAIM_OP_PREFIX, values=["5106"]
                )
            ],
        )
        for i in range(0, 100_000, 1000)
    ]

    def caller(method: str, requests, response_type):
        def make(channel):
            rpc = channel.unary_unary(
                method,
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=response_type.FromString,
            )
            position = 0

            async def call():
                nonlocal position
                position = (position + 1) % len(requests)
                return await rpc(requests[position], timeout=30)

            return call

        return make

    results = []
    for method, requests, response in (
        ("/hub.v1.Verification/Verify", single_requests, verification_pb2.VerifyResponse),
        (f"/{ECHO_SERVICE}/Verify", single_requests, verification_pb2.VerifyResponse),
        ("/hub.v1.Verification/VerifyBatch", batch_requests, verification_pb2.VerifyBatchResponse),
        (f"/{ECHO_SERVICE}/VerifyBatch", batch_requests, verification_pb2.VerifyBatchResponse),
    ):
        value = await drive(address, caller(method, requests, response), args.seconds, args.concurrency)
        print(f"{method}: {value:,.0f} calls/s", flush=True)
        results.append(value)
    assert verification_pb2_grpc  # the stubs module registers the services' descriptors
    return tuple(results)  # type: ignore[return-value]


if __name__ == "__main__":
    main()
