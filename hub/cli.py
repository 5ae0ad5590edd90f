"""The ``hub`` command line.

Every option also has an environment variable (``HUB_<OPTION>``); an option
given on the command line wins.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from hub import logs
from hub.settings import HubSettings


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


def settings_from(args: argparse.Namespace) -> HubSettings:
    names = HubSettings.model_fields.keys()
    overrides = {k: v for k, v in vars(args).items() if k in names and v is not None}
    return HubSettings(**overrides)


def _cmd_serve(args: argparse.Namespace) -> int:
    from hub.server.run import serve

    serve(settings_from(args))
    return 0


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
    from hub.connect.run import run_connector

    return run_connector(
        args.name,
        source=args.source,
        hub=args.hub,
        state_dir=args.state_dir,
        batch_size=args.batch_size,
        max_in_flight=args.max_in_flight,
    )


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
    p.set_defaults(func=_cmd_serve)

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
    csub = connector.add_subparsers(dest="connector_command", required=True, metavar="ACTION", help="list or run")
    p = csub.add_parser("list", help="List the connectors in connectors/.", description="List the connectors.")
    p.set_defaults(func=_cmd_connector_list)
    p = csub.add_parser(
        "run",
        help="Run one connector until its source is exhausted or Ctrl-C.",
        description="Run one connector: read the source, map rows, publish to the hub. Offsets are stored after "
        "the hub acknowledged, so a restart resumes where it stopped.",
    )
    p.add_argument("name", help="Short name (see 'hub connector list') or package.module:Class.")
    p.add_argument("--source", required=True, help="Where the source reads: a file path for file drops.")
    p.add_argument("--hub", default="127.0.0.1:50051", help="Hub address HOST:PORT. Default: 127.0.0.1:50051.")
    p.add_argument(
        "--state-dir", type=Path, default=None, help="Offsets and dead letter. Default: .hub-data/connectors/NAME."
    )
    p.add_argument("--batch-size", type=int, default=2000, help="Records per Publish call. Default: 2000.")
    p.add_argument("--max-in-flight", type=int, default=4, help="Publish calls outstanding at once. Default: 4.")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="Default: INFO.")
    p.set_defaults(func=_cmd_connector_run)

    p = sub.add_parser(
        "codegen",
        help="Regenerate the Python stubs from proto/.",
        description="Run the one codegen entry point: proto/hub/v1/*.proto -> hub/v1/.",
    )
    p.set_defaults(func=_cmd_codegen)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(getattr(args, "log_level", None) or "INFO")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
