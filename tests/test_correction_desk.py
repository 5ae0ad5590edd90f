"""Disputes routed to the provider's connector: answered from its PostgreSQL table, or by a clerk."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import psycopg

from hub.client import ensure_grants
from hub.connect.corrections import CorrectionDesk
from hub.connect.testing import run_once
from hub.v1 import common_pb2, corrections_pb2, corrections_pb2_grpc
from tests.connector_kits import KITS
from tests.hubtest import RunningHub

CONSUMER = "approval_bureau"


def _wait(predicate, timeout: float = 120) -> None:  # a guard only: the predicate ends the wait
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_provider_connector_corrects_and_a_clerk_confirms(hub: RunningHub, postgres_dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active")
    kit = KITS["social_security"]
    connector = kit.make()
    fixed, kept = kit.records(2, 7)
    table = kit.system(tmp_path / "system", {"postgres": postgres_dsn})
    table.write([kit.render(r) for r in (fixed, kept)])
    source = connector.default_source(table.location())
    run_once(hub, connector, source, tmp_path / "state")

    # disputing a value needs as much standing as reading it
    ensure_grants(hub.address, [(CONSUMER, connector.resource, [common_pb2.PURPOSE_DATA_CHECK])])
    consumer = corrections_pb2_grpc.CorrectionsStub(hub.client(CONSUMER).channel)

    def dispute(record: dict, value: str) -> corrections_pb2.CorrectionRequest:
        return consumer.Dispute(
            corrections_pb2.DisputeRequest(
                resource=connector.resource,
                key=record["resident_id"],
                field="contribution_months",
                proposed_value=value,
                evidence_ref="社保缴费凭证 2026-118",
            )
        ).request

    # The department has already fixed one row at the source; the other it will have to look into.
    months = (fixed["contribution_months"] or 0) + 12
    table.write([kit.render({**fixed, "contribution_months": months})])
    corrected = dispute(fixed, str(months))
    referred = dispute(kept, "999")

    inbox = tmp_path / "state" / "corrections-inbox.jsonl"
    desk = CorrectionDesk(connector, source, hub.client(connector.department).channel, inbox)
    thread = threading.Thread(target=desk.run, daemon=True)
    thread.start()
    try:
        _wait(lambda: desk.resolved == 1 and desk.referred == 1)
    finally:
        desk.stop()
        thread.join(10)
    answers = {r.id: r for r in consumer.List(corrections_pb2.CorrectionsListRequest()).requests}
    assert answers[corrected.id].state == corrections_pb2.CORRECTION_STATE_CORRECTED
    assert answers[corrected.id].resolved_by.startswith(connector.department)
    assert answers[referred.id].state == corrections_pb2.CORRECTION_STATE_OPEN
    assert [orjson.loads(line)["id"] for line in inbox.read_bytes().splitlines()] == [referred.id]

    # The clerk answers from the command line, as the provider.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    hub_cli = [sys.executable, "-m", "hub.cli"]
    common = ["--hub", hub.address, "--department", connector.department]
    listed = subprocess.run(
        [*hub_cli, "corrections", "list", "--open", *common], env=env, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0 and referred.id in listed.stdout and corrected.id not in listed.stdout, listed
    done = subprocess.run(
        [*hub_cli, "corrections", "resolve", referred.id, "confirmed", "--note", "缴费记录核实无误", *common],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.strip() == f"{referred.id}: confirmed", done
    table.close()
