"""gRPC benchmark: Verify and VerifyBatch through a real channel, against a trivial echo RPC on the
same server stack, and the cost of audit and of mutual TLS, all in one run.

    python -m bench.rpc [--residents 1000000] [--seconds 5] [--concurrency 16]

The echo methods parse the same request messages and return same-shaped responses without the
cache or the policy, so Verify/echo is the share of the server left after the hub's own work.
Calls are made as a consumer department holding a grant (the realistic policy path). The server
runs in its own process, started three times: plain with audit off, plain with audit on, and
mutual TLS with audit on. This process is the client (grpc.aio, N calls in flight).
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

from bench.common import Report
from hub.childproc import free_port
from hub.client import open_aio_channel, open_channel, wait_serving
from hub.datagen.city import CitySize, resident_ids
from hub.datagen.produce import produce_city
from hub.governance.pki import CertificateAuthority
from hub.kafka.embedded import EmbeddedBroker
from hub.v1 import common_pb2, governance_pb2, governance_pb2_grpc, verification_pb2

ECHO_SERVICE = "bench.Echo"
CONSUMER = "approval_bureau"
CONTEXT = common_pb2.CallContext(purpose=common_pb2.PURPOSE_LEGAL_BASIS, case_number="BENCH-1")
MODES = {"plain-audit-off": (False, False), "plain-audit-on": (False, True), "mtls-audit-on": (True, True)}


def echo_handlers() -> grpc.GenericRpcHandler:
    """Echo methods that parse the hub's request messages and answer like the hub, without the cache."""
    canned_bytes = verification_pb2.VerifyResponse(found=True, match=True, claims=[True]).SerializeToString()

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


def serve(bootstrap: str, port: int, data_dir: str, mode: str, pki: str) -> None:
    from hub.catalogue.model import load_builtin
    from hub.server.app import HubServer
    from hub.settings import HubSettings

    tls, audit = MODES[mode]

    async def run() -> None:
        settings = HubSettings(
            bootstrap_servers=bootstrap,
            port=port,
            data_dir=Path(data_dir),
            snapshot_interval_s=0,
            audit=audit,
            insecure_dev=not tls,
            tls_dir=Path(pki) if tls else None,
        )
        hub = HubServer(settings, bootstrap, load_builtin(), extra_handlers=[echo_handlers()])
        await hub.start()
        await hub.wait()

    asyncio.run(run())


class Target:
    """One server process in one mode, and how to reach it as a department."""

    def __init__(self, bootstrap: str, workdir: Path, mode: str, pki: CertificateAuthority) -> None:
        self.mode = mode
        self.pki = pki
        self.tls = MODES[mode][0]
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.rpc", "--serve", bootstrap, str(self.port), str(workdir), mode, str(pki.dir)],
            stderr=subprocess.DEVNULL,
            env={**os.environ, "HUB_LOG_LEVEL": "WARNING"},
        )

    def credentials(self, department: str) -> tuple[Path, Path, Path] | None:
        if not self.tls:
            return None
        issued = next((c for c in self.pki.list() if c.department == department), None) or self.pki.issue(department)
        return self.pki.ca_cert_path, Path(issued.cert_path), Path(issued.key_path)

    def channel(self, department: str) -> grpc.Channel:
        return open_channel(self.address, department=department, tls=self.credentials(department))

    def start(self) -> float:
        started = time.perf_counter()
        wait_serving(self.channel(CONSUMER), 600)
        return time.perf_counter() - started

    def grant(self) -> None:
        """The consumer asks for access to the population registry; the registry approves."""
        filed = (
            governance_pb2_grpc.GovernanceStub(self.channel(CONSUMER))
            .RequestAccess(
                governance_pb2.RequestAccessRequest(
                    resource="population.resident", purposes=[CONTEXT.purpose], legal_basis="benchmark"
                )
            )
            .request
        )
        governance_pb2_grpc.GovernanceStub(self.channel("public_security")).DecideAccess(
            governance_pb2.DecideAccessRequest(request_id=filed.id, decision=governance_pb2.DECISION_APPROVE)
        )

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


async def drive(target: Target, method: str, requests, response_type, seconds: float, concurrency: int) -> float:
    """Calls per second with ``concurrency`` calls in flight for ``seconds``."""
    async with open_aio_channel(target.address, department=CONSUMER, tls=target.credentials(CONSUMER)) as channel:
        rpc = channel.unary_unary(
            method, request_serializer=lambda m: m.SerializeToString(), response_deserializer=response_type.FromString
        )
        for request in requests[:50]:
            await rpc(request, timeout=30)
        done = 0
        stop = time.perf_counter() + seconds

        async def worker(offset: int) -> None:
            nonlocal done
            i = offset
            while time.perf_counter() < stop:
                await rpc(requests[i % len(requests)], timeout=30)
                i += concurrency
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--serve", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        bootstrap, port, data_dir, mode, pki = args.serve
        serve(bootstrap, int(port), data_dir, mode, pki)
        return

    ids = resident_ids(2017, args.residents)
    rng = random.Random(3)
    sample = [ids[rng.randrange(len(ids))] for _ in range(100_000)]
    prefix = [verification_pb2.Claim(field="district_code", op=verification_pb2.CLAIM_OP_PREFIX, values=["5106"])]
    singles = [
        verification_pb2.VerifyRequest(resource="population.resident", key=k, claims=prefix, context=CONTEXT)
        for k in sample[:20000]
    ]
    batches = [
        verification_pb2.VerifyBatchRequest(
            resource="population.resident",
            keys=sample[i : i + 1000],
            context=CONTEXT,
            claims=[
                verification_pb2.ClaimColumn(
                    field="district_code", op=verification_pb2.CLAIM_OP_PREFIX, values=["5106"]
                )
            ],
        )
        for i in range(0, 100_000, 1000)
    ]
    results: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(Path(tmp) / "broker") as broker:
        produce_city(broker.bootstrap, "hub.", CitySize(args.residents, 1000))
        pki = CertificateAuthority(Path(tmp) / "pki")
        pki.init()
        for mode in MODES:
            target = Target(broker.bootstrap, Path(tmp) / mode, mode, pki)
            try:
                print(f"{mode}: SERVING {target.start():.1f}s after start", flush=True)
                target.grant()
                calls = [("Verify", "/hub.v1.Verification/Verify", singles, verification_pb2.VerifyResponse)]
                if mode == "plain-audit-on":
                    calls += [
                        ("echo", f"/{ECHO_SERVICE}/Verify", singles, verification_pb2.VerifyResponse),
                        (
                            "VerifyBatch",
                            "/hub.v1.Verification/VerifyBatch",
                            batches,
                            verification_pb2.VerifyBatchResponse,
                        ),
                        ("echo batch", f"/{ECHO_SERVICE}/VerifyBatch", batches, verification_pb2.VerifyBatchResponse),
                    ]
                for label, method, requests, response in calls:
                    value = asyncio.run(drive(target, method, requests, response, args.seconds, args.concurrency))
                    results[(mode, label)] = value
                    print(f"  {label}: {value:,.0f} calls/s", flush=True)
            finally:
                target.stop()
    r = results
    report = Report(
        f"gRPC, one server process, {args.concurrency} calls in flight, {args.residents:,} residents, "
        f"as a grantee department"
    )
    report.add(
        "Verify RPC/s (audit on)",
        r["plain-audit-on", "Verify"],
        "echo RPC",
        r["plain-audit-on", "echo"],
        "/s",
        ">= 0.6x echo",
    )
    report.add(
        "VerifyBatch keys/s (1,000 per call)",
        r["plain-audit-on", "VerifyBatch"] * 1000,
        "echo batch",
        r["plain-audit-on", "echo batch"] * 1000,
        "keys/s",
        ">= 500,000 keys/s",
    )
    report.add(
        "Verify RPC/s with audit",
        r["plain-audit-on", "Verify"],
        "audit off",
        r["plain-audit-off", "Verify"],
        "/s",
        "cost of audit",
    )
    report.add(
        "Verify RPC/s with mTLS + audit",
        r["mtls-audit-on", "Verify"],
        "plain + audit",
        r["plain-audit-on", "Verify"],
        "/s",
        "cost of mTLS",
    )
    report.print_summary()


if __name__ == "__main__":
    main()
