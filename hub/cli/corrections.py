"""``hub corrections list|resolve``: disputed values and the provider's answers."""

from __future__ import annotations

import argparse
from typing import cast

from hub.cli.options import add_client_options, tls_paths


def _corrections(args: argparse.Namespace) -> int:
    import datetime as dt

    from rich.console import Console
    from rich.table import Table

    from hub.client import open_channel
    from hub.v1 import corrections_pb2, corrections_pb2_grpc

    channel = open_channel(args.hub, department=args.department, tls=tls_paths(args))
    stub = corrections_pb2_grpc.CorrectionsStub(channel)

    def name(state: int) -> str:
        return corrections_pb2.CorrectionState.Name(state).removeprefix("CORRECTION_STATE_").lower()

    if args.corrections_command == "resolve":
        state = cast(
            corrections_pb2.CorrectionState,
            corrections_pb2.CorrectionState.Value(f"CORRECTION_STATE_{args.verdict.upper()}"),
        )
        done = stub.Resolve(corrections_pb2.ResolveRequest(id=args.id, state=state, note=args.note)).request
        print(f"{done.id}: {name(done.state)}")
        return 0
    found = stub.List(corrections_pb2.CorrectionsListRequest(open_only=args.open)).requests
    table = Table("request", "resource", "key", "field", "proposed", "evidence", "filed by", "due", "state")
    for r in found:
        due = dt.datetime.fromtimestamp(r.due_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M")
        state_text = name(r.state) + (" (overdue)" if r.overdue else "")
        table.add_row(r.id, r.resource, r.key, r.field, r.proposed_value, r.evidence_ref, r.filed_by, due, state_text)
    Console(width=200).print(table)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    corr = sub.add_parser(
        "corrections",
        help="Disputed values: list them, or answer one as the provider.",
        description="Correction requests: consumers dispute values, the provider answers corrected or confirmed.",
    )
    rsub = corr.add_subparsers(dest="corrections_command", required=True, metavar="ACTION", help="list or resolve")
    p = rsub.add_parser(
        "list",
        help="Disputes the caller filed or must answer.",
        description="Disputes the caller filed or must answer.",
    )
    p.add_argument("--open", action="store_true", help="Only those still open.")
    add_client_options(p)
    p.set_defaults(func=_corrections)
    p = rsub.add_parser(
        "resolve",
        help="Answer a dispute as the provider.",
        description="Answer a dispute: corrected (the source was fixed) or confirmed (the value stands).",
    )
    p.add_argument("id", help="The request id, e.g. CR-20261121-1a2b3c4d.")
    p.add_argument("verdict", choices=["corrected", "confirmed"], help="The answer.")
    p.add_argument("--note", default="", help="Why; shown to the department that disputed.")
    add_client_options(p)
    p.set_defaults(func=_corrections)
