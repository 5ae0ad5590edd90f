"""Citizens browsing the public results feed while departments verify, in one Locust run:

    locust -f loadtest/public_feed.py --host 127.0.0.1:50051 --public-site http://127.0.0.1:8080 \\
        --plans DP-... Citizen DrawChecker Verifier

- :class:`Citizen` (WeChat city services): the feed page, a search by credit code, a result's page,
  and the JSON and Atom feeds;
- :class:`DrawChecker`: fetches a plan's published material and re-runs its draw (``hub draws verify``),
  reported as ``draws verify``;
- :class:`Verifier` (from ``loadtest/locustfile.py``): the departments' gRPC verification calls, the
  ones citizens' reading must not slow. ``python -m loadtest.public_feed_run`` compares runs with and
  without citizens.

``--iterations N`` bounds the run by work instead of time: each Citizen and DrawChecker runs N tasks
and stops, and Locust quits once they all have, however slow the machine (the test uses this).
"""

from __future__ import annotations

import random
import time

import gevent
from locust import FastHttpUser, between, events, task
from locust.env import Environment
from locust.exception import StopUser

from hub.inspections.draw import verify
from loadtest.locustfile import Verifier

__all__ = ["Citizen", "DrawChecker", "Verifier"]


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    g = parser.add_argument_group("public results feed")
    g.add_argument("--public-site", default="http://127.0.0.1:8080", help="The hub's public site.")
    g.add_argument("--plans", default="", help="Comma-separated drawn plan ids for DrawChecker.")
    g.add_argument("--verifiers", type=int, default=8, help="Verifier users (a fixed count, not a weight).")
    g.add_argument("--checkers", type=int, default=2, help="DrawChecker users.")
    g.add_argument("--citizens", type=int, default=40, help="Citizen users.")
    g.add_argument("--iterations", type=int, default=0, help="Tasks per site user, then quit (0: no bound).")


@events.init.add_listener
def _counts(environment: Environment, **_: object) -> None:
    """Fixed user counts, so runs with and without citizens have the same verifiers."""
    o = environment.parsed_options
    if o is not None:
        Verifier.fixed_count, DrawChecker.fixed_count, Citizen.fixed_count = o.verifiers, o.checkers, o.citizens
        _SiteUser.unfinished = o.checkers + o.citizens


class _SiteUser(FastHttpUser):
    """Reads the public site (--public-site); --host names the hub, for the gRPC users. Subclasses set
    ``pause`` (Locust calls ``wait_time`` after every task, which is where --iterations is counted)."""

    abstract = True
    unfinished = 0  # bounded site users still running, set by _counts

    def on_start(self) -> None:
        self.client.base_url = self.environment.parsed_options.public_site
        self.tasks_run = 0

    def wait_time(self) -> float:
        self.tasks_run += 1
        if self.tasks_run == self.environment.parsed_options.iterations:
            _SiteUser.unfinished -= 1
            if _SiteUser.unfinished == 0:
                gevent.spawn(self.environment.runner.quit)  # not from this user's greenlet: quit kills it
            raise StopUser
        return self.pause()


class Citizen(_SiteUser):
    weight = 4
    pause = between(0.2, 1.0)

    def on_start(self) -> None:
        super().on_start()
        self.rng = random.Random(id(self))
        self.client.get("/", name="/")  # a citizen lands on the feed page first
        self.items = self.client.get("/feed.json", name="/feed.json").json()["items"] or [{}]

    @task(4)
    def browse(self) -> None:
        self.client.get("/", name="/")

    @task(3)
    def search(self) -> None:
        code = self.rng.choice(self.items).get("credit_code", "91510600000000000X")
        self.client.get(f"/?code={code}", name="/?code=[credit code]")

    @task(3)
    def result(self) -> None:
        item = self.rng.choice(self.items)
        if "url" in item:
            self.client.get(item["url"], name="/results/[plan]/[code]")

    @task(1)
    def feeds(self) -> None:
        self.client.get("/feed.json", name="/feed.json")
        self.client.get("/feed.atom", name="/feed.atom")


class DrawChecker(_SiteUser):
    weight = 1
    pause = between(0.5, 1.5)

    def on_start(self) -> None:
        super().on_start()
        self.plans = [p for p in self.environment.parsed_options.plans.split(",") if p]
        self.rng = random.Random(id(self))

    @task
    def check(self) -> None:
        if not self.plans:
            return
        plan_id = self.rng.choice(self.plans)
        started = time.perf_counter()
        material = self.client.get(f"/plans/{plan_id}.json", name="/plans/[plan].json").json()
        problems = verify(material)
        self.environment.events.request.fire(
            request_type="draw",
            name="draws verify",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=len(material["target_pool"]),
            exception=AssertionError("; ".join(problems)) if problems else None,
            context={},
        )
