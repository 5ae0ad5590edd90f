"""The command line: help texts generated from the settings, one clear line for every mistake,
`hub serve` stopping cleanly, and the demo end to end."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hub.childproc import free_port
from hub.cli import build_parser
from hub.cli.errors import BUG, run_guarded
from hub.settings import HubSettings, secret_fields

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


def test_serve_options_are_the_settings_fields() -> None:
    serve = build_parser().parse_args(["serve"])
    options = set(vars(serve))
    fields = set(HubSettings.model_fields)
    assert fields - set(secret_fields(HubSettings)) <= options  # every setting but the secrets
    assert not set(secret_fields(HubSettings)) & options  # secrets come from the environment only
    args = build_parser().parse_args(["serve", "--no-audit", "--holidays", "2026-10-01,2026-10-02", "--port", "7"])
    assert (args.audit, args.holidays, args.port) == (False, ("2026-10-01", "2026-10-02"), 7)


@pytest.fixture(scope="module")
def busy_port() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


# (command, what the one line must say); {tmp}, {busy} and {closed} are filled in.
MISTAKES = {
    "serve without TLS or insecure_dev": (["serve", "--data-dir", "{tmp}"], "insecure_dev"),
    "serve, port out of range": (["serve", "--insecure-dev", "--port", "99999"], "port"),
    "serve, unknown option": (["serve", "--bogus"], "--bogus"),
    "serve, no such catalogue": (["serve", "--insecure-dev", "--catalogue-path", "{tmp}/none.toml"], "none.toml"),
    "serve, TLS dir without certificates": (["serve", "--tls-dir", "{tmp}"], "ca.crt"),
    "serve, port in use": (["serve", "--insecure-dev", "--port", "{busy}"], "in use"),
    "serve, a worker's own port past 65535": (
        ["serve", "--insecure-dev", "--workers", "2", "--worker-port", "65535"],
        "invalid setting worker_port: 65535 + 2 workers passes port 65535",
    ),
    "serve, workers' own ports over the shared one": (
        ["serve", "--insecure-dev", "--workers", "3", "--port", "50052", "--worker-port", "50051"],
        "include the shared port 50052",
    ),
    "serve, a worker's own port in use": (
        ["serve", "--insecure-dev", "--port", "{closed}", "--worker-port", "{busy}"],
        "worker 0's own gRPC port",
    ),
    "serve, unreachable broker": (["serve", "--insecure-dev", "--bootstrap-servers", "127.0.0.1:{closed}"], "Kafka"),
    "broker, port in use": (["broker", "--broker-port", "{busy}", "--data-dir", "{tmp}"], "in use"),
    "status, nothing running": (
        ["status", "--hub", "127.0.0.1:{closed}", "--metrics", "127.0.0.1:{closed}"],
        "no metrics",
    ),
    "status, bad endpoint list": (["status", "--metrics", "nowhere"], "HOST:PORT"),
    "demo, port in use": (["demo", "--port", "{busy}", "--data-dir", "{tmp}"], "in use"),
    "demo, bad number": (["demo", "--residents", "many"], "--residents"),
    "connector list, extra argument": (["connector", "list", "extra"], "extra"),
    "connector run, no such config": (["connector", "run", "--config", "{tmp}/none.toml"], "none.toml"),
    "connector run, unknown connector": (["connector", "run", "nosuch", "--source", "{tmp}/x.csv"], "nosuch"),
    "connector run, bad batch size": (
        ["connector", "run", "population", "--source", "x", "--batch-size", "0"],
        "batch_size",
    ),
    "connector new, bad name": (
        ["connector", "new", "Bad-Name", "--resource", "population.resident", "--dir", "{tmp}"],
        "identifier",
    ),
    "certs issue before init": (["certs", "--pki-dir", "{tmp}/pki", "issue", "education"], "ca.key"),
    "certs revoke, bad serial": (["certs", "--pki-dir", "{tmp}/pki", "revoke", "zz"], "hex"),
    "audit verify without a cluster": (["audit", "verify", "--data-dir", "{tmp}"], "bootstrap-servers"),
    "audit verify, unreachable broker": (["audit", "verify", "--bootstrap-servers", "127.0.0.1:{closed}"], "Kafka"),
    "governance, unreachable hub": (
        ["governance", "overdue", "--hub", "127.0.0.1:{closed}", "--department", "x"],
        "reach",
    ),
    "governance, half the TLS files": (["governance", "requests", "--ca", "{tmp}/ca.crt"], "--cert"),
    "subscribe, bad filter": (
        ["subscribe", "population.resident", "--name", "n", "--out", "o", "--filter", "x"],
        "FIELD",
    ),
    "corrections, unreachable hub": (
        ["corrections", "list", "--hub", "127.0.0.1:{closed}", "--department", "x"],
        "reach",
    ),
    "corrections, bad verdict": (["corrections", "resolve", "CR-1", "maybe"], "verdict"),
    "codegen, extra argument": (["codegen", "now"], "now"),
    "no command": ([], "COMMAND"),
}


@pytest.mark.parametrize("case", MISTAKES)
def test_a_mistake_is_one_line_and_an_exit_code(case: str, tmp_path: Path, busy_port: int) -> None:
    command, expected = MISTAKES[case]
    values = {"tmp": str(tmp_path), "busy": str(busy_port), "closed": str(free_port())}
    result = subprocess.run(
        [*HUB, *(part.format(**values) for part in command)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("HUB_")},
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode not in (0, BUG), result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert expected in lines[0], lines[0]


def test_a_bad_environment_variable_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [*HUB, "serve", "--insecure-dev", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HUB_PORT": "eighty"},
    )
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "hub serve: error: invalid setting port: Input should be a valid integer, unable to parse string as an integer"
    ]


def test_a_bug_is_one_line_and_its_traceback_under_debug(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> int:
        return {}["missing"]

    assert run_guarded("hub x", broken) == BUG
    assert capsys.readouterr().err == (
        "hub x: error: unexpected KeyError: 'missing' (a bug; with --log-level DEBUG its traceback is logged)\n"
    )
    with caplog.at_level(logging.DEBUG, logger="hub.cli"):
        assert run_guarded("hub x", broken) == BUG
    assert caplog.records[-1].exc_info is not None


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
