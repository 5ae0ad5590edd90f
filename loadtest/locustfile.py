"""The hub's departments under load: ``locust -f loadtest/locustfile.py --host 127.0.0.1:50051``.

One user class per kind of department, each with its own task mix:

- :class:`CaseClerk` (the administrative-approval bureau's windows): submits cases, each resolved
  by several verifications in the hub; ``--cases-per-call`` > 1 sends back-office batches;
- :class:`Verifier` (human resources): single Verify calls, some Lookups, and invalid input;
- :class:`Publisher` (public security's connector): Publish batches of resident updates;
- :class:`Listener` (civil affairs): a change subscription, reporting each event's delivery lag;
- :class:`StepReporter` (the approval bureau's case system): every step of its licence cases, in
  ``Supervision.ReportSteps`` calls, on the power list the Justice Bureau publishes at test start.

Keys come from the seeded city generator (``--city-seed``, ``--residents``, ``--entities``, the same
as ``hub demo`` or ``python -m loadtest.city_year`` loaded), with ``--miss-share`` unknown and
``--invalid-share`` malformed keys. Grants are requested and approved at test start.
"""

from __future__ import annotations

import os

# Before gRPC starts: grpcio 1.81 and later restart their poller in a forked child, and a child forked
# for subprocess.Popen (close_fds) then aborts on epoll EBADF (grpc/grpc#43055); it aborted a Locust
# master here once. Locust's processes never fork with a channel to carry over.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import random
import time
import uuid
from functools import cache
from pathlib import Path

import gevent
import grpc
import orjson
from locust import between, events, task
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import WorkerRunner

from hub.client import ensure_grants
from hub.datagen.city import City, CitySize, resident_ids
from hub.v1 import (
    cases_pb2,
    cases_pb2_grpc,
    common_pb2,
    exchange_pb2,
    exchange_pb2_grpc,
    lookup_pb2,
    lookup_pb2_grpc,
    subscription_pb2,
    subscription_pb2_grpc,
    supervision_pb2,
    supervision_pb2_grpc,
    verification_pb2,
    verification_pb2_grpc,
)
from loadtest.grpc_user import GrpcUser, _credentials
from loadtest.workload import LEGAL, CaseFeed, Workload

COLLABORATION = common_pb2.PURPOSE_BUSINESS_COLLABORATION
GRANTS = [
    ("approval_bureau", "population.resident", [LEGAL]),
    ("human_resources", "population.resident", [LEGAL]),
    ("civil_affairs", "population.resident", [COLLABORATION]),
]


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    g = parser.add_argument_group("city exchange hub")
    g.add_argument("--city-seed", type=int, default=2017, help="Seed of the loaded city's data.")
    g.add_argument("--residents", type=int, default=1_000_000, help="Residents in the loaded city.")
    g.add_argument("--entities", type=int, default=340_000, help="Market entities in the loaded city.")
    g.add_argument("--miss-share", type=float, default=0.05, help="Share of well-formed keys nobody has.")
    g.add_argument("--invalid-share", type=float, default=0.01, help="Share of malformed keys.")
    g.add_argument("--cases-per-call", type=int, default=1, help="Cases per Submit (1) or SubmitBatch (more).")
    g.add_argument("--pki", default="", help="A 'hub certs init' directory: call with mutual TLS.")


@events.test_start.add_listener
def _grants(environment: Environment, **_: object) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return  # the master (or a local run) sets them up once
    pki = environment.parsed_options.pki if environment.parsed_options else ""
    ensure_grants(environment.host, GRANTS, (lambda d: _credentials(Path(pki), d)) if pki else None)
    _publish_power_list(environment.host, _credentials(Path(pki), "justice") if pki else None)


STEP_OFFICER = "DY-ZF-LOADTEST"


def _publish_power_list(address: str, tls: tuple[Path, Path, Path] | None) -> None:
    """The seeded power list and the step reporter's officer, as the Justice Bureau publishes them."""
    from hub.client import endpoints, open_channel
    from hub.supervision.powers import load_seed

    [rid] = resident_ids(2017, 1)
    officer = {"cert_no": STEP_OFFICER, "resident_id": rid, "name": "压测员", "department": StepReporter.department}
    officer |= {"level": "city", "district_code": "510600", "field": "licensing"}
    officer |= {"valid_from": "2017-01-01", "valid_to": "2099-12-31", "status": "valid"}
    channel = open_channel(address, department="justice", tls=tls)
    exchange = exchange_pb2_grpc.ExchangeStub(channel)
    checks = [open_channel(endpoint, department="justice", tls=tls) for endpoint in endpoints(address)]
    for resource, records in (("power.item", [i.record() for i in load_seed()]), ("enforcement.officer", [officer])):
        pb = [exchange_pb2.Record(json=orjson.dumps(r)) for r in records]
        written = exchange.Publish(exchange_pb2.PublishRequest(resource=resource, records=pb), timeout=60)
        # read your writes on every worker: the step reporters' first calls, wherever they land, must find them
        for check in checks:
            verification_pb2_grpc.VerificationStub(check).Verify(
                verification_pb2.VerifyRequest(
                    resource=resource,
                    key=records[0]["code" if resource == "power.item" else "cert_no"],
                    consistency=common_pb2.Consistency(min_offsets=written.offsets),
                    context=_context(common_pb2.PURPOSE_DATA_CHECK, "LT-POWER-LIST"),
                ),
                timeout=60,
            )
    for opened in (channel, *checks):
        opened.close()


@cache
def workload_of(environment: Environment) -> Workload:
    o = environment.parsed_options
    return Workload(o.city_seed, CitySize(o.residents, o.entities), o.miss_share, o.invalid_share)


def _context(purpose: int, case_number: str) -> common_pb2.CallContext:
    return common_pb2.CallContext(purpose=purpose, case_number=case_number)


class CaseClerk(GrpcUser):
    """A window of the administrative-approval bureau: one case after another."""

    department = "approval_bureau"
    weight = 4
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        super().on_start()
        self.cases = cases_pb2_grpc.CasesStub(self.channel)
        self.per_call = max(1, self.environment.parsed_options.cases_per_call)
        self.feed = self.case_feed()
        self.rng = random.Random(id(self))

    def case_feed(self) -> CaseFeed:
        return CaseFeed(workload_of(self.environment))

    def next_cases(self) -> list[cases_pb2.SubmitRequest]:
        return [self.feed.case(self.rng.randrange(self.feed.total)) for _ in range(self.per_call)]

    @task
    def submit(self) -> None:
        cases = self.next_cases()
        if not cases:
            raise StopUser()
        if len(cases) == 1:
            results = [self.submit_one(cases[0])]
        else:
            results = self.cases.SubmitBatch(cases_pb2.SubmitBatchRequest(cases=cases), timeout=60).results
        self.handled(results)

    def submit_one(self, case: cases_pb2.SubmitRequest) -> cases_pb2.CaseResult:
        """Hook for scenarios that submit a single case their own way (a subclass's own ``@task`` would
        run beside this class's, as Locust collects the tasks of every base class)."""
        return self.cases.Submit(case, timeout=30).result

    def handled(self, results) -> None:
        """Hook for scenarios that count what the cases resolved."""


class Verifier(GrpcUser):
    """Human resources checking claims while handling its own matters."""

    department = "human_resources"
    weight = 3
    wait_time = between(0.2, 1.0)

    def on_start(self) -> None:
        super().on_start()
        self.verification = verification_pb2_grpc.VerificationStub(self.channel)
        self.lookup = lookup_pb2_grpc.LookupStub(self.channel)
        self.workload = workload_of(self.environment)
        self.rng = random.Random(id(self))

    @task(6)
    def verify(self) -> None:
        kind = self.workload.kind(self.rng)
        request = verification_pb2.VerifyRequest(
            resource="population.resident",
            key=self.workload.resident(self.rng, kind),
            claims=[
                verification_pb2.Claim(field="district_code", op=verification_pb2.CLAIM_OP_PREFIX, values=["5106"]),
                verification_pb2.Claim(field="status", values=["registered"]),
            ],
            context=_context(LEGAL, f"HR-{self.rng.randrange(10**6):06d}"),
        )
        if kind.invalid:
            with self.expect(grpc.StatusCode.INVALID_ARGUMENT):
                self.verification.Verify(request, timeout=10)
        else:
            self.verification.Verify(request, timeout=10)

    @task(1)
    def look_up(self) -> None:
        kind = self.workload.kind(self.rng)
        request = lookup_pb2.GetRequest(
            resource="population.resident",
            key=self.workload.resident(self.rng, kind),
            fields=["resident_id", "name", "district_code", "status"],
            context=_context(LEGAL, f"HR-{self.rng.randrange(10**6):06d}"),
        )
        if kind.invalid or kind.miss:
            with self.expect(grpc.StatusCode.INVALID_ARGUMENT if kind.invalid else grpc.StatusCode.NOT_FOUND):
                self.lookup.Get(request, timeout=10)
        else:
            self.lookup.Get(request, timeout=10)


@cache
def _resident_records(seed: int, residents: int) -> list[dict]:
    city = City(seed, CitySize(residents, 1))
    out = []
    for record in city.residents():
        out.append(record)
        if len(out) == 2000:
            break
    return out


class Publisher(GrpcUser):
    """Public security's connector: resident records re-registered in batches."""

    department = "public_security"
    weight = 1
    wait_time = between(1.0, 3.0)

    def on_start(self) -> None:
        super().on_start()
        self.exchange = exchange_pb2_grpc.ExchangeStub(self.channel)
        o = self.environment.parsed_options
        self.records = _resident_records(o.city_seed, o.residents)
        self.rng = random.Random(id(self))

    @task
    def publish(self) -> None:
        batch = self.rng.sample(self.records, 100)
        self.exchange.Publish(
            exchange_pb2.PublishRequest(
                resource="population.resident", records=[exchange_pb2.Record(json=orjson.dumps(r)) for r in batch]
            ),
            timeout=30,
        )


class StepReporter(GrpcUser):
    """The approval bureau's case system: ten licence cases a call, each accepted, reviewed, decided and
    delivered (40 steps in one ReportSteps call), with step times a working day apart; with ``late_every``
    n, every n-th case is reviewed two months late, which supervision must raise as alerts."""

    department = "approval_bureau"
    weight = 1
    wait_time = between(0.5, 2.0)
    STEPS = ("accept", "review", "decide", "deliver")
    late_every = 0

    def on_start(self) -> None:
        super().on_start()
        self.supervision = supervision_pb2_grpc.SupervisionStub(self.channel)
        self.prefix = f"LT-{uuid.uuid4().hex[:10]}"
        self.next_case = 0

    @task
    def report(self) -> None:
        day = 86_400_000
        start = int(time.time() * 1000) - 120 * day
        steps = []
        for _ in range(10):
            case = f"{self.prefix}-{self.next_case:06d}"
            late = 60 * day if self.late_every and self.next_case % self.late_every == 0 else 0
            self.next_case += 1
            for n, name in enumerate(self.STEPS):
                decided = name == "decide"
                at_ms = start + n * day + (late if n else 0)
                steps.append(
                    supervision_pb2.ReportStepRequest(
                        case_number=case, item_code="approval_bureau.XK001", step=name,
                        officer_certificate=STEP_OFFICER, at_ms=at_ms, outcome="approved" if decided else "",
                        target_name="德阳市某某餐饮有限公司" if decided else "",
                        target_kind=supervision_pb2.TARGET_KIND_LEGAL if decided else 0,
                    )
                )  # fmt: skip
        results = self.supervision.ReportSteps(supervision_pb2.ReportStepsRequest(steps=steps), timeout=60).results
        refused = [r.error for r in results if r.code != "OK"]
        if refused:
            raise RuntimeError(f"{len(refused)} steps refused: {refused[0]}")
        self.reported(len(steps))

    def reported(self, steps: int) -> None:
        """Hook for scenarios that count the steps reported."""


class Listener(GrpcUser):
    """Civil affairs following residents of one district; each event is reported with its delivery
    lag (from the record's Kafka timestamp to its arrival here)."""

    department = "civil_affairs"
    weight = 1
    wait_time = between(1.0, 2.0)

    def on_start(self) -> None:
        super().on_start()
        self.subscription = subscription_pb2_grpc.SubscriptionStub(self.channel)
        self.stream = None

    def on_stop(self) -> None:
        if self.stream is not None:
            self.stream.cancel()
        super().on_stop()

    @task
    def follow(self) -> None:
        self.stream = self.subscription.Subscribe(
            subscription_pb2.SubscribeRequest(
                resource="population.resident",
                filters=[subscription_pb2.SubscriptionFilter(field="district_code", prefix="5106")],
                start=subscription_pb2.START_FROM_LATEST,
                context=_context(COLLABORATION, "CA-FOLLOW"),
            )
        )
        try:
            for event in self.stream:
                self.environment.events.request.fire(
                    request_type="grpc-stream",
                    name="Subscription/Subscribe event",
                    response_time=max(0.0, time.time() * 1000 - event.timestamp_ms),
                    response_length=event.ByteSize(),
                    exception=None,
                    context={"department": self.department},
                )
                gevent.sleep(0)
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.CANCELLED:
                self.environment.events.request.fire(
                    request_type="grpc-stream",
                    name="Subscription/Subscribe",
                    response_time=0,
                    response_length=0,
                    exception=err,
                    context={"department": self.department},
                )
