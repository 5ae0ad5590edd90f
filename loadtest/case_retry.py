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
from locust import constant, events
from locust.env import Environment

from hub.v1 import cases_pb2
from loadtest.locustfile import CaseClerk, workload_of
from loadtest.workload import CaseFeed

RETRY = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
_feeds: dict[int, CaseFeed] = {}
_answered: dict[int, int] = {}
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

    def next_cases(self) -> list[cases_pb2.SubmitRequest]:
        return self.feed.take(1)  # none left: the user stops; the last answer ends the run

    def submit_one(self, case: cases_pb2.SubmitRequest) -> cases_pb2.CaseResult:
        delay = 0.05
        while True:
            try:
                return self.cases.Submit(case, timeout=30).result
            except grpc.RpcError as err:
                if err.code() not in RETRY:
                    raise
                retry_after = dict(err.trailing_metadata() or ()).get("retry-after-ms")
                gevent.sleep(int(retry_after) / 1000 if retry_after else delay)
                delay = min(delay * 2, 1.0)

    def handled(self, results: list[cases_pb2.CaseResult]) -> None:
        with open(os.environ["HUB_ANSWERED_CASES"], "a") as f:
            f.writelines(r.case_number + "\n" for r in results)
        with _lock:
            answered = _answered[id(self.environment)] = _answered.get(id(self.environment), 0) + len(results)
        if answered == self.feed.total:
            gevent.spawn(self.environment.runner.quit)  # not from this user's greenlet: quit kills it
