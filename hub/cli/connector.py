"""``hub connector list|run|new``: departmental connectors."""

from __future__ import annotations

import argparse
from pathlib import Path

from hub.cli.options import add_client_options, add_model_options, tls_paths
from hub.connect.settings import ConnectorSettings
from hub.settings import HubSettings

# Options of ``connector run`` generated from ConnectorSettings; type, source, hub and tls have their own.
_RUN_OPTIONS = ("metrics_port", "state_dir", "batch_size", "max_in_flight", "jsonl", "once")


def _list(args: argparse.Namespace) -> int:
    from hub.connect.registry import available, resolve_connector

    for name in available():
        cls = resolve_connector(name)
        print(f"{name:<20} {cls.resource:<28} {cls.department:<20} {cls.title}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from pydantic import SecretStr

    from hub.cli.errors import UsageError
    from hub.connect.run import run_connector
    from hub.connect.settings import TlsSettings

    if args.config:
        settings = ConnectorSettings.from_toml(args.config)
    else:
        if not args.name or not args.source:
            raise UsageError("give NAME and --source, or --config FILE")
        tls = tls_paths(args)
        given = {name: getattr(args, name) for name in _RUN_OPTIONS if getattr(args, name) is not None}
        settings = ConnectorSettings(
            type=args.name,
            source=SecretStr(args.source),
            hub=args.hub,
            tls=TlsSettings(ca=tls[0], cert=tls[1], key=tls[2]) if tls else None,
            **given,
        )
    return run_connector(settings)


def _new(args: argparse.Namespace) -> int:
    from hub.connect.scaffold import scaffold

    for path in scaffold(args.name, args.resource, args.department, args.dir):
        print(f"wrote {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    connector = sub.add_parser(
        "connector",
        help="Run or list departmental connectors.",
        description="Departmental connectors publish a department's records to the hub.",
    )
    csub = connector.add_subparsers(dest="connector_command", required=True, metavar="ACTION", help="list, run or new")
    p = csub.add_parser("list", help="List the connectors in connectors/.", description="List the connectors.")
    p.set_defaults(func=_list)

    p = csub.add_parser(
        "run",
        help="Run one connector until its source is exhausted or Ctrl-C.",
        description="Run one connector: read the source, map rows, publish to the hub. Offsets are stored after "
        "the hub acknowledged, so a restart resumes where it stopped.",
    )
    fields = ConnectorSettings.model_fields
    p.add_argument("name", nargs="?", help=fields["type"].description)
    p.add_argument("--config", type=Path, help="A TOML file of connector settings instead of the options below.")
    p.add_argument("--source", help=fields["source"].description)
    add_model_options(p, ConnectorSettings, _RUN_OPTIONS)
    add_model_options(p, HubSettings, ["log_level"])
    add_client_options(p, department=False)
    p.set_defaults(func=_run)

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
    p.set_defaults(func=_new)
