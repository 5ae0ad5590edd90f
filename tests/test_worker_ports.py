"""``hub serve --workers 2 --worker-port P``: a channel naming each worker at its own port sends its
calls to the workers in turn (round_robin), or keeps to the one its list begins with (pick_first);
one through the shared port keeps to the worker that took its connection."""

from __future__ import annotations

from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import HealthServicer

from hub.client import endpoints, open_channel, starting_at, workers_target
from hub.governance.pki import CertificateAuthority
from hub.status import scrape
from hub.testing.served import ServedHub
from hub.v1 import cases_pb2, cases_pb2_grpc
from tests.faults import wait_for

METHOD = "Cases/ListTypes"


def _answered(hub: ServedHub) -> list[int]:
    return [int(scrape(e).get("hub_rpc_total", method=METHOD, code="OK")) for e in hub.metrics]


def test_a_channel_to_the_workers_own_ports_takes_turns_over_them(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    hub = ServedHub(kafka_bootstrap, tmp_path / "hub", workers=2, topic_prefix=topic_prefix)
    try:
        hub.wait_loaded({})
        one = cases_pb2_grpc.CasesStub(open_channel(hub.address, department="justice"))
        for _ in range(10):
            one.ListTypes(cases_pb2.ListTypesRequest())
        assert sorted(_answered(hub)) == [0, 10]  # one connection: one worker

        spread = cases_pb2_grpc.CasesStub(open_channel(hub.spread, department="justice"))

        def both_reached() -> bool:  # until each worker's connection is up, calls go to those that are
            spread.ListTypes(cases_pb2.ListTypesRequest())
            return min(_answered(hub)) > 0

        wait_for(both_reached, "a call on each worker")
        before = _answered(hub)
        for _ in range(20):
            spread.ListTypes(cases_pb2.ListTypesRequest())
        assert [n - b for n, b in zip(_answered(hub), before, strict=True)] == [10, 10]

        for turn in (0, 1):  # its own worker first; gRPC tries the next if that one is slow to connect
            before = _answered(hub)
            pinned = open_channel(starting_at(hub.spread, turn), department="justice", lb_policy="pick_first")
            for _ in range(5):
                cases_pb2_grpc.CasesStub(pinned).ListTypes(cases_pb2.ListTypesRequest())
            assert sorted(n - b for n, b in zip(_answered(hub), before, strict=True)) == [0, 5]  # keeps to one
    finally:
        hub.stop()


def test_workers_target_names_each_worker_at_its_own_port() -> None:
    assert workers_target("127.0.0.1", 7000, 3) == "ipv4:127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002"
    assert workers_target("::1", 7000, 2) == "ipv6:[::1]:7000,[::1]:7001"
    assert starting_at("ipv4:127.0.0.1:7000,127.0.0.1:7001", 3) == "ipv4:127.0.0.1:7001,127.0.0.1:7000"
    assert starting_at("127.0.0.1:7000", 1) == "127.0.0.1:7000"
    assert endpoints("ipv6:[::1]:7000,[::1]:7001") == ["ipv6:[::1]:7000", "ipv6:[::1]:7001"]
    assert endpoints("127.0.0.1:7000") == ["127.0.0.1:7000"]
    with pytest.raises(ValueError):
        workers_target("hub.example", 7000, 2)  # gRPC lists several endpoints only as addresses


def test_a_tls_channel_to_several_workers_checks_each_against_the_hosts_certificate(tmp_path: Path) -> None:
    """gRPC would check the server's certificate against the whole address list; the channel names the
    host instead (the hub's certificate holds 127.0.0.1)."""
    ca = CertificateAuthority(tmp_path / "pki")
    ca.init()
    issued = ca.issue("justice")
    server = grpc.server(futures.ThreadPoolExecutor(2))
    health_pb2_grpc.add_HealthServicer_to_server(HealthServicer(), server)
    credentials = grpc.ssl_server_credentials(
        [((ca.dir / "server.key").read_bytes(), (ca.dir / "server.crt").read_bytes())],
        root_certificates=ca.ca_cert_path.read_bytes(),
        require_client_auth=True,
    )
    first = server.add_secure_port("127.0.0.1:0", credentials)
    second = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    try:
        tls = (ca.ca_cert_path, Path(issued.cert_path), Path(issued.key_path))
        channel = open_channel(f"ipv4:127.0.0.1:{first},127.0.0.1:{second}", tls=tls)
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=30)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        channel.close()
    finally:
        server.stop(None)
