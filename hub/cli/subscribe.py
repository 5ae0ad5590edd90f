"""``hub subscribe``: follow a resource's changes into a JSON Lines file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import cast

from hub.cli.options import add_client_options, tls_paths


def _field_prefix(text: str) -> tuple[str, str]:
    field, sep, prefix = text.partition("=")
    if not sep or not field:
        raise argparse.ArgumentTypeError(f"{text!r}: expected FIELD=PREFIX, e.g. district_code=510603")
    return field, prefix


def _subscribe(args: argparse.Namespace) -> int:
    import signal

    from hub.client import open_channel
    from hub.connect.sink import JsonlSink, SinkRuntime
    from hub.v1 import common_pb2

    filters = dict(args.filter)
    context = common_pb2.CallContext(
        purpose=cast(common_pb2.Purpose, common_pb2.Purpose.Value(f"PURPOSE_{args.purpose.upper()}")),
        case_number=args.case_number,
    )
    channel = open_channel(args.hub, department=args.department, tls=tls_paths(args))
    runtime = SinkRuntime(JsonlSink(args.out), channel, args.resource, args.name, context, filters=filters)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: runtime.stop())
    written = runtime.run(until=args.count)
    print(f"{args.name}: {written:,} changes written to {args.out}", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "subscribe",
        help="Follow a resource's changes into a JSON Lines file.",
        description="Follow a resource's changes (masked per your grant) with a named subscription: the cursor "
        "is acknowledged after each write, so a restart resumes where it stopped.",
    )
    p.add_argument("resource", help="e.g. population.resident")
    p.add_argument("--name", required=True, help="The subscription's name; its cursor is kept by the hub.")
    p.add_argument("--out", type=Path, required=True, help="JSON Lines file to append the changes to.")
    p.add_argument(
        "--purpose",
        default="business_collaboration",
        choices=["legal_basis", "work_reference", "data_check", "business_collaboration"],
        help="The purpose your grant covers. Default: business_collaboration.",
    )
    p.add_argument("--case-number", default="", help="Case or work-order number, for the audit trail.")
    p.add_argument(
        "--filter",
        action="append",
        default=[],
        type=_field_prefix,
        metavar="FIELD=PREFIX",
        help="Only records whose field starts so.",
    )
    p.add_argument("--count", type=int, help="Stop after this many changes (default: follow until Ctrl-C).")
    add_client_options(p)
    p.set_defaults(func=_subscribe)
