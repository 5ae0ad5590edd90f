"""Health probe of the hub in this container, for the image's HEALTHCHECK and Kubernetes exec probes.

Exit 0 when the hub's gRPC health service says SERVING (the cache has caught up), or with ``--live``
when it answers at all (NOT_SERVING while loading is alive). Under mutual TLS (``HUB_TLS_DIR`` set)
the probe presents its own certificate, ``HUB_PROBE_CERT`` and ``HUB_PROBE_KEY``, issued by the
hub's CA: the hub accepts no connection without one, which is also why the kubelet's own gRPC
probe (which presents no client certificate) cannot check it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def _channel(address: str) -> grpc.Channel:
    tls_dir = os.environ.get("HUB_TLS_DIR")
    if not tls_dir:
        return grpc.insecure_channel(address)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(Path(tls_dir) / "ca.crt").read_bytes(),
        private_key=Path(os.environ.get("HUB_PROBE_KEY", "/etc/hub/probe/tls.key")).read_bytes(),
        certificate_chain=Path(os.environ.get("HUB_PROBE_CERT", "/etc/hub/probe/tls.crt")).read_bytes(),
    )
    # The server certificate names localhost and 127.0.0.1 whatever the pod is called.
    return grpc.secure_channel(address, credentials, options=[("grpc.ssl_target_name_override", "localhost")])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default=f"127.0.0.1:{os.environ.get('HUB_PORT', '50051')}")
    parser.add_argument("--live", action="store_true", help="Succeed on any answer, NOT_SERVING included.")
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args(argv)
    try:
        with _channel(args.address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=args.timeout)
    except (grpc.RpcError, OSError) as exc:
        print(f"hub at {args.address}: {exc.code().name if isinstance(exc, grpc.RpcError) else exc}", file=sys.stderr)
        return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"hub at {args.address}: {status}")
    return 0 if args.live or reply.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main())
