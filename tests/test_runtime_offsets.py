"""A connector's stored offsets never cover a record the hub has not acknowledged: looked at again and
again while one Publish call is held unanswered, or refused so that its retry is pending.

A runtime that stored a batch's offsets when it built the batch (before the hub answered) would lose
that batch if it crashed then; only a crash inside that window shows it, so this test looks inside it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import orjson
import pytest

from hub.connect.runtime import ConnectorRuntime, RunStats, RuntimeOptions
from hub.connect.testing import PublishInterceptor
from tests.connector_kits import KITS
from tests.hubtest import running_hub

ROWS = 30
BATCH = 10


class Fault(PublishInterceptor):
    """Holds (or refuses with UNAVAILABLE, as often as it is retried) every Publish call that carries
    ``poison`` until :attr:`release` is set; records each key the hub acknowledged, before the
    connector can learn of it."""

    def __init__(self, poison: str, refuse: bool) -> None:
        self.poison = poison.encode()
        self.refuse = refuse
        self.active = threading.Event()  # a call with the poison arrived and is not released
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._acknowledged: set[str] = set()

    def acknowledged(self, key: str) -> bool:
        with self._lock:
            return key in self._acknowledged

    async def publish(self, inner, request, context):
        carried = request.jsonl or b"\n".join(r.json for r in request.records)  # JSON Lines, or one record each
        if not self.release.is_set() and self.poison in carried:
            self.active.set()
            if self.refuse:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "a broker is changing leaders")
            while not self.release.is_set():
                await asyncio.sleep(0.01)
        response = await inner(request, context)
        with self._lock:
            self._acknowledged.update(r.key for r in response.results if r.code == grpc.StatusCode.OK.value[0])
        return response


@pytest.mark.parametrize("refuse", [False, True], ids=["held", "refused"])
def test_no_offset_is_stored_past_a_record_the_hub_has_not_acknowledged(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, refuse: bool
) -> None:
    kit = KITS["population"]
    records = kit.records(ROWS, 43)
    keys = [r["resident_id"] for r in records]
    fault = Fault(keys[BATCH + 3], refuse)  # in the second of three batches
    state = tmp_path / "state"
    looks_in_fault: list[int] = []  # the stored row count, each time it was looked at during the fault
    wrong: list[str] = []

    def look(_stats: RunStats) -> None:
        """On the runtime thread, after it stored what it stores: every row an offset covers is in."""
        path = state / "offsets.json"
        [offset] = orjson.loads(path.read_bytes()).values() if path.exists() else [0]
        covered = ROWS if offset == "done" else int(offset)
        missing = [k for k in keys[:covered] if not fault.acknowledged(k)]
        if missing:
            wrong.append(f"offset {offset!r} stored, the hub has not acknowledged {len(missing)} rows: {missing[:3]}")
        if fault.active.is_set() and not fault.release.is_set():
            looks_in_fault.append(covered)

    with running_hub(kafka_bootstrap, topic_prefix, tmp_path / "hub", interceptors=[fault]) as hub:
        system = kit.system(tmp_path / "system", {})
        try:
            system.write([kit.render(r) for r in records])
            connector = kit.make()
            options = RuntimeOptions(
                batch_size=BATCH, max_in_flight=2, backoff_initial_s=0.01, backoff_max_s=0.05, stop_when_idle=True
            )
            runtime = ConnectorRuntime(
                connector,
                connector.default_source(system.location()),
                hub.client(connector.department).channel,
                state,
                options,
                on_progress=look,
            )
            result: list[Any] = []
            worker = threading.Thread(target=lambda: result.append(runtime.run()), daemon=True)
            worker.start()
            try:
                assert _wait_for(lambda: len(looks_in_fault) >= 5 or not worker.is_alive()), "never looked"
            finally:
                fault.release.set()
            worker.join(120)
        finally:
            system.close()
    assert not worker.is_alive() and result, "the run did not end"
    assert not wrong, wrong[:3]
    assert len(looks_in_fault) >= 5 and max(looks_in_fault) <= BATCH, looks_in_fault
    assert runtime.stats.published == ROWS and runtime.stats.dead_lettered == 0
    assert list(orjson.loads((state / "offsets.json").read_bytes()).values()) == ["done"]


def _wait_for(condition: Callable[[], bool], timeout_s: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
