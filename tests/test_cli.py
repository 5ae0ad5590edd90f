"""The command line: help texts, `hub serve` stopping cleanly, and the demo end to end."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hub.childproc import free_port
from hub.cli import build_parser

HUB = [sys.executable, "-m", "hub"]


def test_every_option_has_help() -> None:
    def check(parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    check(sub)
            if action.dest != "help":
                assert action.help, f"{parser.prog} {action.option_strings or action.dest} has no help"

    check(build_parser())


def test_serve_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "HUB_LOG_LEVEL": "INFO"}
    proc = subprocess.Popen(
        [*HUB, "serve", "--port", str(port), "--data-dir", str(tmp_path), "--insecure-dev"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + 60
        while True:
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                    break
            except grpc.RpcError:
                pass
            assert time.monotonic() < deadline, "hub serve never became SERVING"
            time.sleep(0.2)
        channel.close()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "hub stopped" in err and "stopped tansu" in err


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            *HUB,
            "demo",
            "--no-wait",
            "--residents",
            "3000",
            "--entities",
            "600",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "250"},  # a table row per line
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "verifies, case" in out and "approved as grant" in out
    assert "masked: name" in out
    # each refusal by its own line: a claim on a field outside the grant, and a purpose outside it
    [field_refusal] = [line for line in out.splitlines() if "(field outside the grant)" in line]
    assert "PERMISSION_DENIED: " in field_refusal and "does not cover field(s) address" in field_refusal
    [purpose_refusal] = [line for line in out.splitlines() if line.startswith("Lookup.Get for WORK_REFERENCE")]
    assert "PERMISSION_DENIED: " in purpose_refusal and "does not cover purpose WORK_REFERENCE" in purpose_refusal
    assert "asks who looked at their data" in out
    assert "INVALID_ARGUMENT" in out and "check digit" in out
    assert "records visible to Verify" in out
