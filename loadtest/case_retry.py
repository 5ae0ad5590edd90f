"""Case clerks that keep going when a hub process dies: each case of a shared feed is submitted in
turn and retried (same case number, same content) until the hub answers, as a department's case
system does. Every answered case number is appended to ``$HUB_ANSWERED_CASES``; a case submission is
idempotent by number, so a retry after a lost answer gets the recorded result, never a second case.

    locust -f loadtest/case_retry.py RetryingClerk --headless --users 6 --host HUB --cases 600
"""

from __future__ import annotations

import os
import threading

import gevent
import grpc
from locust import constant, events, task
from locust.env import Environment

from loadtest.locustfile import CaseClerk, workload_of
from loadtest.workload import CaseFeed

RETRY = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
_feeds: dict[int, CaseFeed] = {}
_lock = threading.Lock()


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    parser.add_argument("--cases", type=int, default=600, help="Cases in the run; the run ends when all are answered.")


class RetryingClerk(CaseClerk):
    wait_time = constant(0)

    def case_feed(self) -> CaseFeed:
        environment: Environment = self.environment
        with _lock:  # one feed for every user: each case is handed out once
            feed = _feeds.setdefault(
                id(environment), CaseFeed(workload_of(environment), environment.parsed_options.cases)
            )
        return feed

    @task
    def submit(self) -> None:
        taken = self.feed.take(1)
        if not taken:
            self.environment.runner.quit()
            return
        case = taken[0]
        delay = 0.05
        while True:
            try:
                self.cases.Submit(case, timeout=30)
                break
            except grpc.RpcError as err:
                if err.code() not in RETRY:
                    raise
                retry_after = dict(err.trailing_metadata() or ()).get("retry-after-ms")
                gevent.sleep(int(retry_after) / 1000 if retry_after else delay)
                delay = min(delay * 2, 1.0)
        with open(os.environ["HUB_ANSWERED_CASES"], "a") as f:
            f.write(case.case_number + "\n")
