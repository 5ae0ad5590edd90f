"""Soak: mixed load (publish, verify, batch verify, cases, a live subscription) against one ``hub serve``
process for a long run at half its measured capacity. Prints the hub's peak RSS per minute and its growth
after warm-up (the last minute's peak against the first minute's after warm-up; target < 5%), the p99
latency of the first and the last minute, and the errors (target 0).

Warm-up lasts until the hub's bounded structures are full, and at least a minute: the resident topic's
change ring holds up to one and a half times ``change_ring_capacity`` changes, so it is full once that
many records were published; the table compacts its superseded rows long before (at a third of its
live rows). What still grows after that is growth; the case ledger, one entry per case number, is the
only structure the mix grows without bound by design.

``python -m bench.soak`` runs 10 minutes; ``--minutes 2`` a short run. Capacity is measured first,
in the same run, as closed-loop operations per second of the same mix.
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import orjson

from bench.common import rss_mib
from hub.client import open_channel
from hub.datagen.city import City, CitySize
from hub.datagen.produce import produce_city
from hub.kafka.embedded import EmbeddedBroker
from hub.settings import HubSettings
from hub.testing.served import ServedHub
from hub.v1 import (
    cases_pb2,
    cases_pb2_grpc,
    common_pb2,
    exchange_pb2,
    exchange_pb2_grpc,
    governance_pb2,
    governance_pb2_grpc,
    subscription_pb2,
    subscription_pb2_grpc,
    verification_pb2,
    verification_pb2_grpc,
)

LEGAL = common_pb2.CallContext(purpose=common_pb2.PURPOSE_LEGAL_BASIS, case_number="SOAK-1")
FOLLOW = common_pb2.CallContext(purpose=common_pb2.PURPOSE_BUSINESS_COLLABORATION, case_number="SOAK-FOLLOW")
# The mix, by weight: mostly verifications, as at a city's counters.
MIX = {"verify": 6, "batch": 1, "publish": 2, "case": 1}
# Records published before the change ring is at its bound (it trims at one and a half times its capacity).
RING_FULL = HubSettings.model_fields["change_ring_capacity"].default * 3 // 2


@dataclass
class Samples:
    """(finished at, seconds, operation) per call, and the errors; appended from many threads."""

    calls: list[tuple[float, float, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    events: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def p99(self, since: float, until: float) -> float:
        window = sorted(s for at, s, _ in self.calls if since <= at < until)
        return window[int(len(window) * 0.99)] * 1000 if window else float("nan")


class Mix:
    """One operation of the mix per call of :meth:`run`, each as its department."""

    def __init__(self, address: str, residents: list[dict], seed: int = 5) -> None:
        self.records = {r["resident_id"]: r for r in residents}
        self.residents = list(self.records)
        self.verify = verification_pb2_grpc.VerificationStub(open_channel(address, department="human_resources"))
        self.publisher = exchange_pb2_grpc.ExchangeStub(open_channel(address, department="public_security"))
        self.cases = cases_pb2_grpc.CasesStub(open_channel(address, department="approval_bureau"))
        self._numbers = itertools.count()
        self._rng = random.Random(seed)
        self._ops: list[str] = [op for op, weight in MIX.items() for _ in range(weight)]
        self._lock = threading.Lock()
        self.published = 0  # records acknowledged

    def run(self) -> str:
        with self._lock:
            op = self._rng.choice(self._ops)
            keys = [self.residents[self._rng.randrange(len(self.residents))] for _ in range(100)]
            number = next(self._numbers)
        if op == "verify":
            self.verify.Verify(
                verification_pb2.VerifyRequest(resource="population.resident", key=keys[0], context=LEGAL), timeout=30
            )
        elif op == "batch":
            self.verify.VerifyBatch(
                verification_pb2.VerifyBatchRequest(resource="population.resident", keys=keys, context=LEGAL),
                timeout=30,
            )
        elif op == "publish":
            records = [exchange_pb2.Record(json=orjson.dumps(self.records[k])) for k in keys[:10]]  # re-published
            response = self.publisher.Publish(
                exchange_pb2.PublishRequest(resource="population.resident", records=records), timeout=30
            )
            if response.rejected:
                raise RuntimeError(f"publish: {response.rejected} records not acknowledged")
            with self._lock:
                self.published += len(records)
        else:
            self.cases.Submit(
                cases_pb2.SubmitRequest(
                    case_number=f"SOAK-{number:08d}",
                    case_type="household_transfer",
                    applicant=keys[0],
                    date="2017-11-30",
                    params={"district": "510603"},
                    purpose=common_pb2.PURPOSE_LEGAL_BASIS,
                ),
                timeout=30,
            )
        return op


def grant(address: str) -> None:
    """The consumers ask the population registry for access; the registry approves."""
    registry = governance_pb2_grpc.GovernanceStub(open_channel(address, department="public_security"))
    for department, purpose in (("human_resources", LEGAL.purpose), ("civil_affairs", FOLLOW.purpose)):
        filed = (
            governance_pb2_grpc.GovernanceStub(open_channel(address, department=department))
            .RequestAccess(
                governance_pb2.RequestAccessRequest(
                    resource="population.resident", purposes=[purpose], legal_basis="soak"
                )
            )
            .request
        )
        registry.DecideAccess(
            governance_pb2.DecideAccessRequest(request_id=filed.id, decision=governance_pb2.DECISION_APPROVE)
        )


def _timed(mix: Mix, samples: Samples, scheduled: float) -> None:
    """One operation; its latency counts from when it was due, so a stalled hub shows in the tail."""
    try:
        op = mix.run()
    except grpc.RpcError as err:
        with samples.lock:
            samples.errors.append(f"{err.code().name}: {err.details()}")
        return
    except RuntimeError as exc:
        with samples.lock:
            samples.errors.append(str(exc))
        return
    now = time.monotonic()
    with samples.lock:
        samples.calls.append((now, now - scheduled, op))


def capacity(mix: Mix, seconds: float, threads: int) -> float:
    """Closed loop: operations per second with ``threads`` always in flight."""
    done = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            mix.run()
            with lock:
                done += 1

    started = time.monotonic()
    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return done / (time.monotonic() - started)


def follow(address: str, samples: Samples, stop: threading.Event) -> Callable[[], None]:
    """A subscription that stays open the whole run, counting the changes it receives."""
    stub = subscription_pb2_grpc.SubscriptionStub(open_channel(address, department="civil_affairs"))
    stream = stub.Subscribe(
        subscription_pb2.SubscribeRequest(
            resource="population.resident", start=subscription_pb2.START_FROM_LATEST, context=FOLLOW
        )
    )

    def read() -> None:
        try:
            for _ in stream:
                samples.events += 1
        except grpc.RpcError as err:
            if not stop.is_set():
                samples.errors.append(f"subscription: {err.code().name}: {err.details()}")

    threading.Thread(target=read, daemon=True).start()
    return stream.cancel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="Length of the soak. Default: 10.")
    parser.add_argument("--residents", type=int, default=20_000)
    parser.add_argument("--capacity-seconds", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=8, help="Calls in flight while measuring capacity.")
    args = parser.parse_args()
    seconds = args.minutes * 60
    minute = min(60.0, seconds / 4)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(Path(tmp) / "broker") as broker:
        size = CitySize(args.residents, 2000)
        produce_city(broker.bootstrap, "hub.", size)
        hub = ServedHub(broker.bootstrap, Path(tmp) / "hub", workers=1)
        try:
            hub.wait_loaded({"population.resident": args.residents})
            grant(hub.address)
            mix = Mix(hub.address, list(City(2017, size).residents()))
            full = capacity(mix, args.capacity_seconds, args.threads)
            rate = full / 2
            print(f"capacity: {full:,.0f} operations/s closed loop ({args.threads} in flight); soak at {rate:,.0f}/s")
            samples, stop = Samples(), threading.Event()
            cancel = follow(hub.address, samples, stop)
            rss: list[tuple[float, float, int]] = []  # (when, MiB, records published by then)
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=64) as pool:
                for i in itertools.count():
                    due = started + i / rate
                    if due - started >= seconds:
                        break
                    if (now := time.monotonic()) < due:
                        time.sleep(due - now)
                    if not rss or now - rss[-1][0] >= 5:
                        rss.append((now, rss_mib(hub.pid), mix.published))
                    pool.submit(_timed, mix, samples, due)
            ended = time.monotonic()
            rss.append((ended, rss_mib(hub.pid), mix.published))
            stop.set()
            cancel()
        finally:
            hub.stop()
    print(f"ran {ended - started:,.0f}s: {len(samples.calls):,} operations, {samples.events:,} subscription events")

    # RSS swings by tens of MiB as the table compacts and the ring trims, so two single samples measure where in
    # that cycle they fell: growth compares the peak of the minute after warm-up with the peak of the last minute.
    def peak(since: float) -> float:
        return max((m for t, m, _ in rss if since <= t <= since + minute), default=math.nan)

    peaks = [peak(started + k * minute) for k in range(round((ended - started) / minute))]
    print(f"hub RSS peak per {minute:.0f}s: " + ", ".join(f"{m:,.1f}" for m in peaks) + " MiB")
    warm = next((t for t, _, published in rss if t >= started + minute and published >= RING_FULL), ended)
    if warm + minute > ended - minute:
        print(f"hub RSS: warm-up ended at {warm - started:,.0f}s ({RING_FULL:,} records published); too late to tell")
    else:
        first, last = peak(warm), peak(ended - minute)
        print(
            f"hub RSS: warm-up ended at {warm - started:,.0f}s; peak {first:,.1f} MiB in the {minute:.0f}s after it, "
            f"{last:,.1f} MiB in the last {minute:.0f}s: {(last - first) / first * 100:+.1f}% (target < 5%)"
        )
    print(
        f"p99: {samples.p99(started, started + minute):,.1f} ms in the first {minute:.0f}s, "
        f"{samples.p99(ended - minute, ended + 1):,.1f} ms in the last {minute:.0f}s"
    )
    print(f"errors: {len(samples.errors)} (target 0)" + (f"; first: {samples.errors[0]}" if samples.errors else ""))


if __name__ == "__main__":
    main()
