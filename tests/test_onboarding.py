"""The README's "Onboarding a new department", step by step: certificate, catalogue entry,
request, approval, first call, on a hub with mutual TLS."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc

from hub.childproc import free_port
from tests.readme import blocks


def test_onboarding_walkthrough(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PKI": str(tmp_path / "pki"),
        "PORT": str(port),
        "HUB_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "HUB_TOPIC_PREFIX": topic_prefix,
        "HUB_DATA_DIR": str(tmp_path / "hub"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    [(_, shell), (_, python)] = blocks("onboarding")
    background: list[subprocess.Popen] = []
    try:
        for line in shell.strip().splitlines():  # each line exactly as written, by bash
            command = line.strip()
            if command.endswith("&"):  # `exec` so the PID we stop is the hub's
                background.append(
                    subprocess.Popen(
                        ["bash", "-c", "exec " + command.removesuffix("&")], env=env, stderr=subprocess.DEVNULL
                    )
                )
                _wait_for_port(port)
            else:
                subprocess.run(["bash", "-c", command], env=env, check=True, capture_output=True)
        _publish_the_resident(env, port)
        out = io.StringIO()
        with contextlib.redirect_stdout(out), _environ(env):
            exec(compile(python, "README.md onboarding", "exec"), {})
        printed = out.getvalue()
        assert "registered tax.credit_rating version 1" in printed
        assert "found True match True" in printed
    finally:
        for proc in background:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


@contextlib.contextmanager
def _environ(env: dict[str, str]):
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            import socket

            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError("the hub did not start")


def _publish_the_resident(env: dict[str, str], port: int) -> None:
    """Not part of the walkthrough: the population registry has published the resident."""
    import glob

    import orjson

    from hub.v1 import common_pb2, exchange_pb2, exchange_pb2_grpc, verification_pb2, verification_pb2_grpc
    from tests.hubtest import resident

    pki = env["PKI"]
    [cert] = glob.glob(f"{pki}/issued/public_security-*.crt")
    credentials = grpc.ssl_channel_credentials(
        Path(f"{pki}/ca.crt").read_bytes(), Path(cert[:-4] + ".key").read_bytes(), Path(cert).read_bytes()
    )
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        deadline = time.monotonic() + 60
        while health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest()).status != 1:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        written = exchange_pb2_grpc.ExchangeStub(channel).Publish(
            exchange_pb2.PublishRequest(
                resource="population.resident",
                records=[exchange_pb2.Record(json=orjson.dumps(resident("510603199001011231")))],
            )
        )
        verification_pb2_grpc.VerificationStub(channel).Verify(
            verification_pb2.VerifyRequest(
                resource="population.resident",
                key="510603199001011231",
                context=common_pb2.CallContext(purpose=common_pb2.PURPOSE_DATA_CHECK, case_number="setup"),
                consistency=common_pb2.Consistency(min_offsets=written.offsets),
            )
        )
