"""``hub supervise``: the power list loaded, alerts listed and answered, the monthly report, ledgers reconciled."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import cast

import grpc

from hub.cli.options import add_client_options, tls_paths

CST = dt.timezone(dt.timedelta(hours=8))


def register(sub: argparse._SubParsersAction) -> None:
    """Registers ``supervise`` and its actions on the ``hub`` parser's subcommands."""
    sup = sub.add_parser(
        "supervise",
        help="The administrative-power platform: power list, alerts, monthly report, ledgers.",
        description="Electronic supervision of the administrative-power platform.",
    )
    ssub = sup.add_subparsers(
        dest="supervise_command", required=True, metavar="ACTION", help="load-powers, alerts, answer, report, reconcile"
    )
    p = ssub.add_parser("load-powers", help="Publish the power list (as the Justice Bureau).")
    p.add_argument("--generated", action="store_true", help="The generated 2,686 items instead of the seeded list.")
    p = ssub.add_parser("alerts", help="List alerts (the caller's; the supervising office sees all).")
    p.add_argument("--status", choices=["open", "answered", "escalated"], help="Only alerts in this state.")
    p.add_argument("--of", dest="of_department", default="", help="Only this department's alerts.")
    p = ssub.add_parser("answer", help="Answer one of the department's alerts.")
    p.add_argument("alert_id", help="The alert's id, e.g. 510600-CF-2017-0815::case_overrun.")
    p.add_argument("answer", help="What the department did about it.")
    p = ssub.add_parser("report", help="The monthly report: a table, and optionally CSV and a chart.")
    p.add_argument("--month", required=True, help="YYYY-MM.")
    p.add_argument("--csv", type=Path, help="Write the rows to this CSV file.")
    p.add_argument("--chart", type=Path, help="Write a chart (PNG) of on-time rates and alerts.")
    p = ssub.add_parser("reconcile", help="Compare a department's ledger with the platform's decisions.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--ledger", type=Path, help="The ledger as .xlsx or .csv.")
    source.add_argument("--postgres", metavar="DSN", help="The department's PostgreSQL holding the ledger.")
    p.add_argument("--table", default="ledger", help="With --postgres: the ledger table (needs updated_at).")
    p.add_argument("--of", dest="of_department", default="", help="The department (default: the caller).")
    for action in ssub.choices.values():
        add_client_options(action)
        action.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from hub.client import open_channel
    from hub.v1 import supervision_pb2_grpc

    channel = open_channel(args.hub, department=args.department, tls=tls_paths(args))
    try:
        if args.supervise_command == "load-powers":
            return _load_powers(channel, args)
        stub = supervision_pb2_grpc.SupervisionStub(channel)
        return {"alerts": _alerts, "answer": _answer, "report": _report, "reconcile": _reconcile}[
            args.supervise_command
        ](stub, args)
    except grpc.RpcError as err:
        raise SystemExit(f"{err.code().name}: {err.details()}") from None
    except (OSError, ValueError) as err:
        raise SystemExit(str(err)) from None
    finally:
        channel.close()


def _load_powers(channel: grpc.Channel, args: argparse.Namespace) -> int:
    import orjson

    from hub.v1 import exchange_pb2, exchange_pb2_grpc

    if args.generated:
        from hub.datagen.supervision import power_list

        items = power_list()
    else:
        from hub.supervision.powers import load_seed

        items = load_seed()
    stub = exchange_pb2_grpc.ExchangeStub(channel)
    for start in range(0, len(items), 1000):
        records = [exchange_pb2.Record(json=orjson.dumps(i.record())) for i in items[start : start + 1000]]
        stub.Publish(exchange_pb2.PublishRequest(resource="power.item", records=records), timeout=60)
    print(f"published {len(items):,} power items of {len({i.department for i in items})} departments")
    return 0


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, CST).strftime("%Y-%m-%d %H:%M") if ms else ""


def _alerts(stub, args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from hub.v1 import supervision_pb2 as sv

    status = cast(sv.AlertStatus, sv.AlertStatus.Value(f"ALERT_STATUS_{args.status.upper()}") if args.status else 0)
    found = stub.ListAlerts(sv.SupervisionListAlertsRequest(department=args.of_department, status=status)).alerts
    table = Table("alert", "level", "department", "case", "detail", "raised", "answer due", "status", "answer")
    for a in found:
        level = sv.AlertLevel.Name(a.level).removeprefix("ALERT_LEVEL_").lower()
        state = sv.AlertStatus.Name(a.status).removeprefix("ALERT_STATUS_").lower()
        colour = "red" if level == "red" else "yellow"
        table.add_row(
            a.id, f"[{colour}]{level}[/]", a.department, a.case_number, a.detail, _when(a.raised_at_ms),
            _when(a.answer_due_ms), state, a.answer,
        )  # fmt: skip
    Console(width=220).print(table)
    print(f"{len(found)} alerts")
    return 0


def _answer(stub, args: argparse.Namespace) -> int:
    from hub.v1 import supervision_pb2 as sv

    alert = stub.AnswerAlert(sv.AnswerAlertRequest(alert_id=args.alert_id, answer=args.answer)).alert
    print(f"{alert.id}: answered by {alert.answered_by}")
    return 0


def _report(stub, args: argparse.Namespace) -> int:
    import pyarrow as pa

    from hub.supervision.report_output import print_table, write_chart, write_csv
    from hub.v1 import supervision_pb2 as sv

    response = stub.MonthlyReport(sv.MonthlyReportRequest(month=args.month), timeout=120)
    fields = [f.name for f in sv.ReportRow.DESCRIPTOR.fields]
    rows = pa.Table.from_pylist([{f: getattr(r, f) for f in fields} for r in response.rows])
    steps = pa.Table.from_pylist(
        [{"department": s.department, "step": s.step, "steps": s.steps, "average_days": s.average_days}
         for s in response.steps]
    )  # fmt: skip
    print_table(rows, steps, args.month, len(response.unused_items), response.seconds)
    if args.csv:
        write_csv(rows, args.csv)
        write_csv(steps, args.csv.with_name(f"{args.csv.stem}-steps.csv"))
        print(f"CSV: {args.csv} and {args.csv.stem}-steps.csv")
    if args.chart:
        write_chart(rows, args.month, args.chart)
        print(f"chart: {args.chart}")
    return 0


def _reconcile(stub, args: argparse.Namespace) -> int:
    import pyarrow as pa

    from hub.supervision.reconcile import FIELDS, read_file, read_postgres, reconcile
    from hub.v1 import supervision_pb2 as sv

    ledger = read_file(args.ledger) if args.ledger else read_postgres(args.postgres, args.table)
    decisions = stub.ListDecisions(sv.ListDecisionsRequest(department=args.of_department), timeout=120).decisions
    platform = pa.table({f: pa.array([getattr(d, f) for d in decisions], pa.string()) for f in FIELDS})
    result = reconcile(ledger, platform)
    print(f"ledger {ledger.num_rows:,} decisions, platform {platform.num_rows:,}")
    print(f"off the platform ({len(result.off_platform)}): {' '.join(result.off_platform)}")
    print(f"differing ({len(result.differing)}): {' '.join(f'{c} [{why}]' for c, why in result.differing)}")
    print(f"missing from the ledger ({len(result.missing)}): {' '.join(result.missing)}")
    return 0
