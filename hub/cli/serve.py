"""``hub serve`` and ``hub broker``: the processes that run in the foreground until stopped."""

from __future__ import annotations

import argparse

from hub.cli import checks
from hub.cli.options import COMMON_HUB_OPTIONS, add_hub_options, settings_from


def _serve(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    checks.ready_to_serve(settings)
    from hub.server.run import serve  # after the checks: a mistake is reported without importing the server

    serve(settings)
    return 0


def _broker(args: argparse.Namespace) -> int:
    import signal
    import threading

    from hub.kafka.embedded import EmbeddedBroker

    settings = settings_from(args)
    if args.broker_port:
        checks.port_free("127.0.0.1", args.broker_port, "broker")
    broker = EmbeddedBroker(settings.data_dir / "broker", settings.embedded_broker, port=args.broker_port)
    bootstrap = broker.start()
    print(f"HUB_BOOTSTRAP_SERVERS={bootstrap}", flush=True)
    if not broker.idempotent_producers:
        print("HUB_KAFKA_IDEMPOTENCE=false", flush=True)  # hubs sharing it must not be falsely acknowledged
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    broker.stop()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="Run the hub in the foreground (and the embedded broker if needed).",
        description="Run the hub's gRPC server in the foreground. Logs go to stderr; "
        "SIGTERM or SIGINT stop it cleanly.",
    )
    add_hub_options(p)
    p.set_defaults(func=_serve)

    p = sub.add_parser(
        "broker",
        help="Run only the embedded broker, for several hubs to share.",
        description="Start the embedded tansu broker and print its bootstrap address; stop with Ctrl-C.",
    )
    add_hub_options(p, COMMON_HUB_OPTIONS)
    p.add_argument("--broker-port", type=int, default=None, help="Port to listen on. Default: a free one.")
    p.set_defaults(func=_broker)
