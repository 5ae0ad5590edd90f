"""What signed receipts cost: Verify with a receipt against Verify without, and VerifyBatch of 1,000
keys with one receipt (Merkle root, a proof per key) against without, in one run on one server.

    python -m bench.receipts [--residents 100000] [--seconds 3] [--rounds 3] [--concurrency 16]

The server is bench.rpc's (its own process, plain gRPC, audit on, as a grantee department). The
with/without runs alternate, ``--rounds`` times each, so a neighbour's load on a shared machine
falls on both; each figure is the median of its rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
from pathlib import Path

from bench.common import Report
from bench.rpc import CONTEXT, Target, drive
from hub.datagen.city import CitySize, resident_ids
from hub.datagen.produce import produce_city
from hub.governance.pki import CertificateAuthority
from hub.kafka.embedded import EmbeddedBroker
from hub.v1 import verification_pb2

BATCH = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    ids = resident_ids(2017, args.residents)
    rng = random.Random(5)
    sample = [ids[rng.randrange(len(ids))] for _ in range(50 * BATCH)]
    prefix = [verification_pb2.Claim(field="district_code", op=verification_pb2.CLAIM_OP_PREFIX, values=["5106"])]
    column = [verification_pb2.ClaimColumn(field="district_code", op=verification_pb2.CLAIM_OP_PREFIX, values=["5106"])]

    def singles(receipt: bool) -> list:
        return [
            verification_pb2.VerifyRequest(
                resource="population.resident", key=k, claims=prefix, context=CONTEXT, receipt=receipt
            )
            for k in sample[:20_000]
        ]

    def batches(receipt: bool) -> list:
        return [
            verification_pb2.VerifyBatchRequest(
                resource="population.resident",
                keys=sample[i : i + BATCH],
                claims=column,
                context=CONTEXT,
                receipt=receipt,
            )
            for i in range(0, len(sample), BATCH)
        ]

    calls = {
        "Verify": ("/hub.v1.Verification/Verify", verification_pb2.VerifyResponse, singles),
        "VerifyBatch": ("/hub.v1.Verification/VerifyBatch", verification_pb2.VerifyBatchResponse, batches),
    }
    rates: dict[tuple[str, bool], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(Path(tmp) / "broker") as broker:
        produce_city(broker.bootstrap, "hub.", CitySize(args.residents, 1000))
        pki = CertificateAuthority(Path(tmp) / "pki")
        target = Target(broker.bootstrap, Path(tmp) / "hub", "plain-audit-on", pki)
        try:
            print(f"SERVING {target.start():.1f}s after start", flush=True)
            target.grant()
            for label, (method, response, build) in calls.items():
                requests = {receipt: build(receipt) for receipt in (False, True)}
                for r in range(args.rounds):
                    for receipt in (False, True):
                        value = asyncio.run(
                            drive(target, method, requests[receipt], response, args.seconds, args.concurrency)
                        )
                        rates.setdefault((label, receipt), []).append(value)
                        print(f"  round {r + 1} {label} {'with' if receipt else 'without'} receipts: {value:,.0f}/s")
        finally:
            target.stop()

    median = {k: statistics.median(v) for k, v in rates.items()}
    report = Report(
        f"receipts, one server process, {args.concurrency} calls in flight, {args.residents:,} residents, "
        f"median of {args.rounds} alternating rounds of {args.seconds:g} s"
    )
    report.add(
        "Verify RPC/s with receipts", median["Verify", True], "without", median["Verify", False], "/s", ">= 0.8x"
    )
    report.add(
        f"VerifyBatch keys/s with receipts ({BATCH:,} per call)",
        median["VerifyBatch", True] * BATCH,
        "without",
        median["VerifyBatch", False] * BATCH,
        "keys/s",
        ">= 0.9x",
    )
    report.print_summary()


if __name__ == "__main__":
    main()
