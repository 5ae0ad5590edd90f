"""``hub governance requests|overdue``: access requests and their deadlines."""

from __future__ import annotations

import argparse

from hub.cli.options import add_client_options, tls_paths


def _governance(args: argparse.Namespace) -> int:
    import datetime as dt

    from rich.console import Console
    from rich.table import Table

    from hub.client import open_channel
    from hub.v1 import governance_pb2, governance_pb2_grpc

    channel = open_channel(args.hub, department=args.department, tls=tls_paths(args))
    stub = governance_pb2_grpc.GovernanceStub(channel)
    if args.governance_command == "overdue":
        requests = stub.ListOverdue(governance_pb2.ListOverdueRequest()).requests
    else:
        requests = stub.ListAccessRequests(governance_pb2.ListAccessRequestsRequest(state=args.state or "")).requests
    table = Table("request", "consumer", "resource", "state", "deadline", "overdue")
    for r in requests:
        deadline = dt.datetime.fromtimestamp(r.deadline_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M")
        table.add_row(r.id, r.consumer, r.resource, r.state, deadline, "yes" if r.overdue else "")
    Console().print(table)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    gov = sub.add_parser(
        "governance",
        help="Access requests and their deadlines.",
        description="List access requests, or those past their deadline.",
    )
    gsub = gov.add_subparsers(dest="governance_command", required=True, metavar="ACTION", help="requests or overdue")
    p = gsub.add_parser(
        "requests",
        help="Access requests the caller filed or must decide.",
        description="Access requests the caller filed or must decide.",
    )
    p.add_argument("--state", choices=["pending", "approved", "refused", "withdrawn"], help="Only this state.")
    add_client_options(p)
    p.set_defaults(func=_governance)
    p = gsub.add_parser(
        "overdue",
        help="Pending requests past their deadline.",
        description="Pending requests past their deadline (all of them for hub_admin).",
    )
    add_client_options(p)
    p.set_defaults(func=_governance)
