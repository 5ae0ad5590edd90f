"""A retried Publish must not leave an older value of a key on top of a newer one that overtook it:
a whole call failing late, or one record of a call failing while a later one of the same key went in."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from hub.connect.runtime import RuntimeOptions
from hub.connect.testing import PublishInterceptor, cached, run_once, wait_visible
from tests.connector_kits import KITS
from tests.hubtest import running_hub


class FailFirstLate(PublishInterceptor):
    """The first Publish call is answered UNAVAILABLE, late: the second has been accepted by then."""

    def __init__(self) -> None:
        self.calls = 0
        self._second_accepted = asyncio.Event()

    async def publish(self, inner, request, context):
        self.calls += 1
        call = self.calls
        if call == 1:  # answered only once the second call's record is on Kafka
            await asyncio.wait_for(self._second_accepted.wait(), 60)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "a broker is changing leaders")
        response = await inner(request, context)
        if call == 2:
            self._second_accepted.set()
        return response


class FailFirstRecord(PublishInterceptor):
    """The first Publish call reports its first record UNAVAILABLE (the rest went in)."""

    def __init__(self) -> None:
        self.calls = 0

    async def publish(self, inner, request, context):
        self.calls += 1
        response = await inner(request, context)
        if self.calls == 1:
            response.results[0].code = grpc.StatusCode.UNAVAILABLE.value[0]
        return response


@pytest.mark.parametrize(
    ("fault", "batch_size", "in_flight"), [(FailFirstLate, 1, 2), (FailFirstRecord, 2, 1)], ids=["call", "record"]
)
def test_a_retry_does_not_overwrite_a_newer_value(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, fault: type, batch_size: int, in_flight: int
) -> None:
    kit = KITS["population"]
    [older] = kit.records(1, 41)
    newer = {**older, "address": older["address"] + "附1号"}
    fail = fault()
    with running_hub(kafka_bootstrap, topic_prefix, tmp_path / "hub", interceptors=[fail]) as hub:
        system = kit.system(tmp_path / "system", {})
        try:
            system.write([kit.render(older), kit.render(newer)])  # one key, changed
            connector = kit.make()
            options = RuntimeOptions(
                batch_size=batch_size, max_in_flight=in_flight, backoff_initial_s=0.01, stop_when_idle=True
            )
            runtime = run_once(hub, connector, connector.default_source(system.location()), tmp_path / "state", options)
        finally:
            system.close()
        assert fail.calls >= 2 and runtime.stats.retried == 1
        key = older["resident_id"]
        wait_visible(hub, connector, runtime, key)
        assert cached(hub, connector, [key])[key]["address"] == newer["address"]


class FailOn(PublishInterceptor):
    """Answers INTERNAL to every Publish call that carries ``poison``, as a hub bug would."""

    def __init__(self, poison: str) -> None:
        self.poison = poison.encode()

    async def publish(self, inner, request, context):
        if self.poison in (request.jsonl or b"\n".join(r.json for r in request.records)):  # JSON Lines, or one each
            await context.abort(grpc.StatusCode.INTERNAL, "Exception calling application: boom")
        return await inner(request, context)


def test_a_record_the_hub_keeps_failing_on_is_isolated(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    kit = KITS["population"]
    records = kit.records(3, 42)
    poison = records[1]["resident_id"]
    with running_hub(kafka_bootstrap, topic_prefix, tmp_path / "hub", interceptors=[FailOn(poison)]) as hub:
        system = kit.system(tmp_path / "system", {})
        try:
            system.write([kit.render(r) for r in records])
            connector = kit.make()
            options = RuntimeOptions(batch_size=3, backoff_initial_s=0.01, backoff_max_s=0.05, stop_when_idle=True)
            runtime = run_once(hub, connector, connector.default_source(system.location()), tmp_path / "state", options)
        finally:
            system.close()
        [letter] = runtime.dead_letter.entries()
        assert "INTERNAL" in letter["reason"] and letter["record"]["resident_id"] == poison
        others = [r["resident_id"] for r in records if r["resident_id"] != poison]
        wait_visible(hub, connector, runtime, others[-1])
        assert all(cached(hub, connector, others).values())
