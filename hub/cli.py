"""The ``hub`` command line.

Every option also has an environment variable (``HUB_<OPTION>``); an option
given on the command line wins.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from hub import logs
from hub.settings import HubSettings
from hub.supervision.commands import add_commands as add_supervise_commands


def _add_hub_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("hub settings (environment: HUB_<NAME>)")
    g.add_argument(
        "--bootstrap-servers",
        metavar="HOST:PORT,...",
        help="Kafka cluster to use. Unset: start the embedded tansu broker as a child process.",
    )
    g.add_argument(
        "--embedded-broker",
        choices=["memory", "durable"],
        help="Storage of the embedded broker: memory (fast, lost on stop) or durable "
        "(SeaweedFS S3, survives restarts). Default: memory.",
    )
    g.add_argument("--host", help="Address the gRPC server binds. Default: 127.0.0.1.")
    g.add_argument("--port", type=int, help="gRPC port; 0 picks a free one. Default: 50051.")
    g.add_argument("--data-dir", type=Path, help="Directory for logs, snapshots and broker data. Default: .hub-data.")
    g.add_argument("--topic-prefix", help="Prefix of every topic. Default: 'hub.'.")
    g.add_argument("--catalogue-path", type=Path, help="Catalogue TOML to use instead of the built-in one.")
    g.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="Default: INFO.")
    g.add_argument("--tls-dir", type=Path, help="PKI directory from 'hub certs init': serve with mutual TLS.")
    g.add_argument(
        "--insecure-dev",
        action="store_true",
        default=None,
        help="No TLS; callers name their department in a header. For demos and tests only.",
    )


def _add_client_options(p: argparse.ArgumentParser, department: bool = True) -> None:
    g = p.add_argument_group("connecting to the hub")
    g.add_argument("--hub", default="127.0.0.1:50051", help="Hub address HOST:PORT. Default: 127.0.0.1:50051.")
    g.add_argument("--ca", type=Path, help="The hub CA's certificate (ca.crt), for mutual TLS.")
    g.add_argument("--cert", type=Path, help="This department's certificate, for mutual TLS.")
    g.add_argument("--key", type=Path, help="This department's private key, for mutual TLS.")
    if department:
        g.add_argument("--department", help="Without a certificate: the department to claim (insecure dev mode).")


def _tls(args: argparse.Namespace) -> tuple[Path, Path, Path] | None:
    if args.cert or args.key or args.ca:
        if not (args.cert and args.key and args.ca):
            raise SystemExit("mutual TLS needs --ca, --cert and --key together")
        return args.ca, args.cert, args.key
    return None


def settings_from(args: argparse.Namespace) -> HubSettings:
    names = HubSettings.model_fields.keys()
    overrides = {k: v for k, v in vars(args).items() if k in names and v is not None}
    return HubSettings(**overrides)


def _cmd_serve(args: argparse.Namespace) -> int:
    from hub.server.run import serve

    serve(settings_from(args))
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from hub.status import print_status

    return print_status(args.hub, args.metrics)


def _cmd_demo(args: argparse.Namespace) -> int:
    from hub.demo import DemoOptions, run_demo

    options = DemoOptions(
        residents=args.residents,
        entities=args.entities,
        seed=args.seed,
        city_scale=args.city_scale,
        keep_serving=not args.no_wait,
    )
    return run_demo(settings_from(args), options)


def _cmd_broker(args: argparse.Namespace) -> int:
    import signal
    import threading

    from hub.kafka.embedded import EmbeddedBroker

    settings = settings_from(args)
    broker = EmbeddedBroker(settings.data_dir / "broker", settings.embedded_broker, port=args.broker_port)
    bootstrap = broker.start()
    print(f"HUB_BOOTSTRAP_SERVERS={bootstrap}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    broker.stop()
    return 0


def _cmd_connector_list(args: argparse.Namespace) -> int:
    from hub.connect.registry import available, resolve_connector

    for name in available():
        cls = resolve_connector(name)
        print(f"{name:<20} {cls.resource:<28} {cls.department:<20} {cls.title}")
    return 0


def _cmd_connector_run(args: argparse.Namespace) -> int:
    from pydantic import SecretStr, ValidationError

    from hub.connect.run import run_connector
    from hub.connect.settings import ConnectorSettings, TlsSettings

    try:
        if args.config:
            settings = ConnectorSettings.from_toml(args.config)
        else:
            if not args.name or not args.source:
                raise SystemExit("give NAME and --source, or --config FILE")
            tls = _tls(args)
            settings = ConnectorSettings(
                type=args.name,
                source=SecretStr(args.source),
                hub=args.hub,
                tls=TlsSettings(ca=tls[0], cert=tls[1], key=tls[2]) if tls else None,
                state_dir=args.state_dir,
                batch_size=args.batch_size,
                max_in_flight=args.max_in_flight,
                once=args.once,
                metrics_port=args.metrics_port,
            )
    except ValidationError as exc:
        raise SystemExit(f"connector settings: {exc}") from None
    return run_connector(settings)


def _cmd_connector_new(args: argparse.Namespace) -> int:
    from hub.connect.scaffold import scaffold

    for path in scaffold(args.name, args.resource, args.department, args.dir):
        print(f"wrote {path}")
    return 0


def _cmd_certs(args: argparse.Namespace) -> int:
    import datetime as dt

    from rich.console import Console
    from rich.table import Table

    from hub.governance.pki import CertificateAuthority

    ca = CertificateAuthority(args.pki_dir)
    if args.certs_command == "init":
        ca.init(server_names=args.server_name or [])
        print(f"created the hub CA, server certificate and audit keys in {args.pki_dir}")
    elif args.certs_command == "issue":
        issued = ca.issue(args.department, args.subsystem or "", days=args.days)
        print(
            f"issued certificate {issued.serial:x} for {args.department}"
            f"{'.' + args.subsystem if args.subsystem else ''}, valid until {issued.not_after}\n"
            f"  certificate: {issued.cert_path}\n  key:         {issued.key_path}\n  CA:          {ca.ca_cert_path}"
        )
    elif args.certs_command == "list":
        table = Table("serial", "department", "subsystem", "not after", "status")
        now = dt.datetime.now(dt.UTC)
        for c in ca.list():
            table.add_row(f"{c.serial:x}", c.department, c.subsystem, c.not_after[:19], c.status(now))
        Console().print(table)
    else:
        revoked = ca.revoke(int(args.serial, 16), args.reason)
        print(f"revoked {revoked.serial:x} ({revoked.department}); CRL written to {ca.crl_path}")
        if args.bootstrap_servers:
            from hub.governance.crl import publish_crl

            publish_crl(args.bootstrap_servers, args.topic_prefix, ca.crl_path.read_bytes())
            print("CRL published to the hub's governance topic: every replica applies it within a second")
        else:
            print(
                "hubs reading this PKI directory reload the CRL within a second; others need "
                "'hub certs revoke ... --bootstrap-servers' to receive it through Kafka"
            )
    return 0


def _cmd_audit_verify(args: argparse.Namespace) -> int:
    from hub.governance.audit_verify import read_topic, verify_entries
    from hub.governance.keys import audit_public_key

    settings = settings_from(args)
    if not settings.bootstrap_servers:
        raise SystemExit("--bootstrap-servers (or HUB_BOOTSTRAP_SERVERS) names the cluster holding the audit topic")
    key_path = args.public_key or (settings.tls_dir or settings.data_dir / "dev-keys") / "audit.pub"
    topic = args.topic or f"{settings.topic_prefix}_audit"
    report = verify_entries(
        read_topic(settings.bootstrap_servers, topic, settings.kafka_extra()), audit_public_key(key_path)
    )
    print(report.summary())
    return 0 if report.ok else 1


def _cmd_governance(args: argparse.Namespace) -> int:
    import datetime as dt

    from rich.console import Console
    from rich.table import Table

    from hub.client import open_channel
    from hub.v1 import governance_pb2, governance_pb2_grpc

    stub = governance_pb2_grpc.GovernanceStub(open_channel(args.hub, department=args.department, tls=_tls(args)))
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


def _field_prefix(text: str) -> tuple[str, str]:
    field, sep, prefix = text.partition("=")
    if not sep or not field:
        raise argparse.ArgumentTypeError(f"{text!r}: expected FIELD=PREFIX, e.g. district_code=510603")
    return field, prefix


def _cmd_subscribe(args: argparse.Namespace) -> int:
    import signal

    from hub.client import open_channel
    from hub.connect.sink import JsonlSink, SinkRuntime
    from hub.v1 import common_pb2

    filters = dict(args.filter)
    context = common_pb2.CallContext(
        purpose=common_pb2.Purpose.Value(f"PURPOSE_{args.purpose.upper()}"), case_number=args.case_number
    )
    channel = open_channel(args.hub, department=args.department, tls=_tls(args))
    runtime = SinkRuntime(JsonlSink(args.out), channel, args.resource, args.name, context, filters=filters)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: runtime.stop())
    written = runtime.run(until=args.count)
    print(f"{args.name}: {written:,} changes written to {args.out}", file=sys.stderr)
    return 0


def _cmd_corrections(args: argparse.Namespace) -> int:
    import datetime as dt

    from rich.console import Console
    from rich.table import Table

    from hub.client import open_channel
    from hub.v1 import corrections_pb2, corrections_pb2_grpc

    stub = corrections_pb2_grpc.CorrectionsStub(open_channel(args.hub, department=args.department, tls=_tls(args)))

    def name(state: int) -> str:
        return corrections_pb2.CorrectionState.Name(state).removeprefix("CORRECTION_STATE_").lower()

    if args.corrections_command == "resolve":
        state = corrections_pb2.CorrectionState.Value(f"CORRECTION_STATE_{args.verdict.upper()}")
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


def _cmd_codegen(args: argparse.Namespace) -> int:
    from hub.codegen import main

    main()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hub", description="Exchange hub for city government data: publish, verify, look up."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do")

    p = sub.add_parser(
        "serve",
        help="Run the hub in the foreground (and the embedded broker if needed).",
        description="Run the hub's gRPC server in the foreground. Logs go to stderr; "
        "SIGTERM or SIGINT stop it cleanly.",
    )
    _add_hub_options(p)
    g = p.add_argument_group("processes and metrics")
    g.add_argument(
        "--workers", type=int, help="Server processes sharing the port, each a full replica (SO_REUSEPORT). Default: 1."
    )
    g.add_argument("--metrics-port", type=int, help="Prometheus metrics port; worker i uses port + i. Default: 9464.")
    p.set_defaults(func=_cmd_serve)

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
        help="Metrics endpoints HOST:PORT[,HOST:PORT...], or HOST:FIRST-LAST for workers. Default: 127.0.0.1:9464.",
    )
    p.set_defaults(func=_cmd_status)

    p = sub.add_parser(
        "demo",
        help="Start broker and hub, load synthetic city data through the connectors, show verifications, keep serving.",
        description="The walking skeleton end to end: starts the broker and the hub, generates "
        "seeded synthetic data, publishes it through the departmental connectors "
        "over gRPC, waits for the cache, runs sample verifications, then keeps "
        "serving until Ctrl-C.",
    )
    _add_hub_options(p)
    p.add_argument("--residents", type=int, default=100_000, help="Residents to load. Default: 100000.")
    p.add_argument(
        "--entities",
        type=int,
        default=20_000,
        help="Market entities to load (credit records follow the city's proportions). Default: 20000.",
    )
    p.add_argument(
        "--city-scale",
        action="store_true",
        help="Load city scale instead: 1,000,000 residents, 340,000 entities, ~2.8M credit records.",
    )
    p.add_argument("--seed", type=int, default=2017, help="Seed of the data generator. Default: 2017.")
    p.add_argument("--no-wait", action="store_true", help="Exit after the samples instead of serving until Ctrl-C.")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser(
        "broker",
        help="Run only the embedded broker, for several hubs to share.",
        description="Start the embedded tansu broker and print its bootstrap address; stop with Ctrl-C.",
    )
    _add_hub_options(p)
    p.add_argument("--broker-port", type=int, default=None, help="Port to listen on. Default: a free one.")
    p.set_defaults(func=_cmd_broker)

    connector = sub.add_parser(
        "connector",
        help="Run or list departmental connectors.",
        description="Departmental connectors publish a department's records to the hub.",
    )
    csub = connector.add_subparsers(dest="connector_command", required=True, metavar="ACTION", help="list, run or new")
    p = csub.add_parser("list", help="List the connectors in connectors/.", description="List the connectors.")
    p.set_defaults(func=_cmd_connector_list)
    p = csub.add_parser(
        "run",
        help="Run one connector until its source is exhausted or Ctrl-C.",
        description="Run one connector: read the source, map rows, publish to the hub. Offsets are stored after "
        "the hub acknowledged, so a restart resumes where it stopped.",
    )
    p.add_argument("name", nargs="?", help="Short name (see 'hub connector list') or package.module:Class.")
    p.add_argument("--config", type=Path, help="A TOML file of connector settings instead of the options below.")
    p.add_argument("--source", help="Where the source reads: a file or drop folder, a PostgreSQL DSN, a URL.")
    p.add_argument("--metrics-port", type=int, help="Serve Prometheus metrics on this port (0: a free one).")
    p.add_argument(
        "--state-dir", type=Path, default=None, help="Offsets and dead letter. Default: .hub-data/connectors/NAME."
    )
    p.add_argument("--batch-size", type=int, default=2000, help="Records per Publish call. Default: 2000.")
    p.add_argument("--max-in-flight", type=int, default=4, help="Publish calls outstanding at once. Default: 4.")
    p.add_argument(
        "--once",
        action="store_true",
        default=False,
        help="Stop once a live source (table, endpoint, drop folder) has caught up. A file always stops.",
    )
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="Default: INFO.")
    _add_client_options(p, department=False)
    p.set_defaults(func=_cmd_connector_run)
    p = csub.add_parser(
        "new",
        help="Scaffold a connector: code, config, sample data and its test.",
        description="Write connectors/NAME.py (a mapping to start from), connectors/NAME.toml, "
        "connectors/samples/NAME.csv and tests/connectors/test_NAME.py (the universal suite).",
    )
    p.add_argument("name", help="Short name of the new connector, e.g. county_licences.")
    p.add_argument("--resource", required=True, help="The catalogue resource it publishes to.")
    p.add_argument("--department", help="The providing department. Default: the resource's provider.")
    p.add_argument("--dir", type=Path, default=Path("."), help="Project root to write into. Default: '.'.")
    p.set_defaults(func=_cmd_connector_new)

    certs = sub.add_parser(
        "certs",
        help="The hub's certificate authority: issue, list and revoke certificates.",
        description="Department certificates for mutual TLS, from the hub's own CA.",
    )
    certs.add_argument(
        "--pki-dir", type=Path, default=Path(".hub-data/pki"), help="The PKI directory. Default: .hub-data/pki."
    )
    csub = certs.add_subparsers(
        dest="certs_command", required=True, metavar="ACTION", help="init, issue, list or revoke"
    )
    p = csub.add_parser(
        "init",
        help="Create the CA, the hub's server certificate and audit keys.",
        description="Create the CA, the hub's server certificate and audit keys.",
    )
    p.add_argument("--server-name", action="append", help="Extra DNS name or IP of the hub (repeatable).")
    p = csub.add_parser(
        "issue",
        help="Issue a certificate for a department or one of its subsystems.",
        description="Issue a department certificate (O=department, OU=subsystem).",
    )
    p.add_argument("department", help="Department code, e.g. education.")
    p.add_argument("--subsystem", help="Subsystem of the department, e.g. enrolment.")
    p.add_argument("--days", type=int, default=397, help="Validity in days. Default: 397.")
    csub.add_parser("list", help="List issued certificates and their status.", description="List certificates.")
    p = csub.add_parser(
        "revoke",
        help="Revoke a certificate (effective without restarting the hub).",
        description="Revoke a certificate and write the CRL; with --bootstrap-servers also publish it.",
    )
    p.add_argument("serial", help="Serial number in hex, as 'hub certs list' shows it.")
    p.add_argument("--reason", default="", help="Why it is revoked.")
    p.add_argument("--bootstrap-servers", help="Publish the CRL to this cluster's governance topic.")
    p.add_argument("--topic-prefix", default="hub.", help="Topic prefix of the hubs. Default: 'hub.'.")
    for action in csub.choices.values():
        action.set_defaults(func=_cmd_certs)

    audit = sub.add_parser("audit", help="Check the audit trail.", description="The tamper-evident audit trail.")
    asub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION", help="verify")
    p = asub.add_parser(
        "verify",
        help="Recompute every hash chain and check every signed checkpoint.",
        description="Detects edited, removed and reordered audit entries. Exit code 1 if any.",
    )
    _add_hub_options(p)
    p.add_argument("--topic", help="Audit topic to verify. Default: <prefix>_audit.")
    p.add_argument("--public-key", type=Path, help="Audit public key. Default: audit.pub in the TLS or dev-key dir.")
    p.set_defaults(func=_cmd_audit_verify)

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
    _add_client_options(p)
    p.set_defaults(func=_cmd_governance)
    p = gsub.add_parser(
        "overdue",
        help="Pending requests past their deadline.",
        description="Pending requests past their deadline (all of them for hub_admin).",
    )
    _add_client_options(p)
    p.set_defaults(func=_cmd_governance)

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
    _add_client_options(p)
    p.set_defaults(func=_cmd_subscribe)

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
    _add_client_options(p)
    p.set_defaults(func=_cmd_corrections)
    p = rsub.add_parser(
        "resolve",
        help="Answer a dispute as the provider.",
        description="Answer a dispute: corrected (the source was fixed) or confirmed (the value stands).",
    )
    p.add_argument("id", help="The request id, e.g. CR-20261121-1a2b3c4d.")
    p.add_argument("verdict", choices=["corrected", "confirmed"], help="The answer.")
    p.add_argument("--note", default="", help="Why; shown to the department that disputed.")
    _add_client_options(p)
    p.set_defaults(func=_cmd_corrections)

    add_supervise_commands(sub, _add_client_options, _tls)

    p = sub.add_parser(
        "codegen",
        help="Regenerate the Python stubs from proto/.",
        description="Run the one codegen entry point: proto/hub/v1/*.proto -> hub/v1/.",
    )
    p.set_defaults(func=_cmd_codegen)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(getattr(args, "log_level", None) or os.environ.get("HUB_LOG_LEVEL") or "INFO")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
