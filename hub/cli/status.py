"""``hub status``: what running hub processes report."""

from __future__ import annotations

import argparse


def _endpoints(spec: str) -> str:
    from hub.status import endpoints

    try:
        endpoints(spec)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{spec!r}: expected HOST:PORT[,HOST:PORT...] or HOST:FIRST-LAST") from None
    return spec


def _status(args: argparse.Namespace) -> int:
    from hub.status import print_status

    return print_status(args.hub, args.metrics)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "status",
        help="Health, call rates, latency, cache freshness and audit backlog of running hub processes.",
        description="Print what a running hub reports: gRPC health, and from each process's metrics endpoint "
        "its calls by method, latency, Kafka traffic, cache rows and lag, and audit backlog.",
    )
    p.add_argument(
        "--hub", default="127.0.0.1:50051", help="gRPC address for the health check. Default: 127.0.0.1:50051."
    )
    p.add_argument(
        "--metrics",
        default="127.0.0.1:9464",
        type=_endpoints,
        help="Metrics endpoints HOST:PORT[,HOST:PORT...], or HOST:FIRST-LAST for workers. Default: 127.0.0.1:9464.",
    )
    p.set_defaults(func=_status)
