"""No secret leaves in what a run writes: a hub under mutual TLS with a real PKI, a PostgreSQL
connector whose DSN carries a password, calls that succeed and calls that fail. Everything the run
wrote (the hub's and the connector's stdout and stderr at DEBUG, the error messages callers got, the
metrics page) is searched for private keys, the password and every full resident ID used."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import urllib.request
from pathlib import Path

import grpc
import psycopg

from hub.childproc import free_port
from hub.client import open_channel
from hub.datagen import native
from hub.datagen.city import City, CitySize
from hub.datagen.departments import SI_CBRY_DDL, PostgresTable
from hub.governance.pki import CertificateAuthority
from hub.v1 import common_pb2, lookup_pb2, lookup_pb2_grpc, verification_pb2, verification_pb2_grpc
from tests.faults import health, wait_for

CTX = common_pb2.CallContext(purpose=common_pb2.PURPOSE_LEGAL_BASIS, case_number="DY-SECRETS-1")


def _channel(ca: CertificateAuthority, address: str, department: str) -> grpc.Channel:
    issued = ca.issue(department, "")
    return open_channel(address, tls=(ca.dir / "ca.crt", Path(issued.cert_path), Path(issued.key_path)))


def test_no_key_password_or_resident_id_in_anything_the_run_wrote(
    kafka_bootstrap: str, topic_prefix: str, postgres_dsn: str, tmp_path: Path
) -> None:
    ca = CertificateAuthority(tmp_path / "pki")
    ca.init()
    password = f"pw-{secrets.token_hex(8)}"
    role = f"reader_{secrets.token_hex(4)}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{password}'")
    info = psycopg.conninfo.conninfo_to_dict(postgres_dsn)
    dsn = psycopg.conninfo.make_conninfo(postgres_dsn, user=role, password=password)
    wrong_dsn = psycopg.conninfo.make_conninfo(postgres_dsn, user=role, password=password, port=free_port())
    rows = [native.insured(r) for r in City(71, CitySize(40, 10)).insured()][:10]
    table = PostgresTable(postgres_dsn, SI_CBRY_DDL, "si_cbry", "aac002", updated="aae036")
    table.write(rows)
    used = [r["aac002"] for r in rows]
    assert info.get("password") != password

    port, metrics = free_port(), free_port()
    address = f"127.0.0.1:{port}"
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "HUB_LOG_LEVEL": "DEBUG", "HUB_NOTICE_ENGINE": "false"}
    hub = subprocess.Popen(
        [
            *(
                sys.executable,
                "-m",
                "hub.cli",
                "serve",
                "--tls-dir",
                str(ca.dir),
                "--bootstrap-servers",
                kafka_bootstrap,
            ),
            *("--topic-prefix", topic_prefix, "--port", str(port), "--metrics-port", str(metrics)),
            *("--data-dir", str(tmp_path / "hub")),
        ],
        env=env,
        stdout=(out / "hub.out").open("wb"),
        stderr=(out / "hub.err").open("wb"),
    )
    messages: list[str] = []
    try:
        consumer = _channel(ca, address, "public_security")
        wait_for(lambda: health(consumer) == "SERVING", "the hub serving under mutual TLS")
        provider = ca.issue("human_resources", "")
        tls = ["--ca", str(ca.dir / "ca.crt"), "--cert", str(provider.cert_path), "--key", str(provider.key_path)]
        for name, source in (("good", dsn), ("bad", wrong_dsn)):
            done = subprocess.run(
                [
                    *(sys.executable, "-m", "hub.cli", "connector", "run", "social_security", "--source", source),
                    *("--hub", address, *tls, "--once", "--log-level", "DEBUG"),
                    *("--state-dir", str(tmp_path / f"state-{name}")),
                ],
                env=env,
                capture_output=True,
                timeout=180,
            )
            (out / f"connector-{name}.out").write_bytes(done.stdout)
            (out / f"connector-{name}.err").write_bytes(done.stderr)
            assert (done.returncode == 0) == (name == "good"), done.stderr[-2000:]

        verify = verification_pb2_grpc.VerificationStub(consumer)
        lookup = lookup_pb2_grpc.LookupStub(consumer)
        bad_check_digit = used[0][:17] + ("0" if used[0][17] != "0" else "1")
        calls = [
            lambda: verify.Verify(
                verification_pb2.VerifyRequest(resource="social_security.insured", key=used[1], context=CTX), timeout=10
            ),
            lambda: verify.Verify(
                verification_pb2.VerifyRequest(resource="population.resident", key=bad_check_digit, context=CTX),
                timeout=10,
            ),
            lambda: verify.Verify(
                verification_pb2.VerifyRequest(resource="social_security.insured", key=used[2]), timeout=10
            ),
            lambda: lookup.Get(
                lookup_pb2.GetRequest(resource="social_security.insured", key=used[3], context=CTX), timeout=10
            ),
            lambda: verify.VerifyBatch(
                verification_pb2.VerifyBatchRequest(resource="social_security.insured", keys=used[4:], context=CTX),
                timeout=10,
            ),
        ]
        for call in calls:
            try:
                call()
            except grpc.RpcError as err:
                messages.append(f"{err.code().name}: {err.details()}")
        assert messages, "no call failed: the failing paths were not exercised"
        (out / "metrics.txt").write_bytes(
            urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=10).read()
        )
    finally:
        hub.terminate()
        hub.wait(60)
    (out / "errors.txt").write_text("\n".join(messages))

    secrets_ = {"a private key": "PRIVATE KEY", "the DSN password": password}
    secrets_.update({f"resident ID {r}": r for r in [*used, bad_check_digit]})
    written = {p.name: p.read_bytes().decode("utf-8", "replace") for p in out.iterdir()}
    assert sum(len(t) for t in written.values()) > 10_000, {n: len(t) for n, t in written.items()}
    leaks = [
        f"{what} in {name}: {line[:300]}"
        for name, text in written.items()
        for line in text.splitlines()
        for what, s in secrets_.items()
        if s in line
    ]
    print(f"searched {len(written)} files, {sum(len(t) for t in written.values()):,} characters: {len(leaks)} leaks")
    assert not leaks, leaks
