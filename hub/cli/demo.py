"""``hub demo``: the walking skeleton end to end."""

from __future__ import annotations

import argparse

from hub.cli import checks
from hub.cli.options import COMMON_HUB_OPTIONS, add_hub_options, settings_from


def _demo(args: argparse.Namespace) -> int:
    from hub.demo import DemoOptions, run_demo

    settings = settings_from(args)
    checks.port_free(settings.host, settings.port, "gRPC")
    if settings.bootstrap_servers:
        checks.kafka_reachable(settings.bootstrap_servers)
    options = DemoOptions(
        residents=args.residents,
        entities=args.entities,
        seed=args.seed,
        city_scale=args.city_scale,
        keep_serving=not args.no_wait,
    )
    return run_demo(settings, options)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="Start broker and hub, load synthetic city data through the connectors, show verifications, keep serving.",
        description="The walking skeleton end to end: starts the broker and the hub, generates "
        "seeded synthetic data, publishes it through the departmental connectors "
        "over gRPC, waits for the cache, runs sample verifications, then keeps "
        "serving until Ctrl-C.",
    )
    add_hub_options(p, COMMON_HUB_OPTIONS)
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
    p.set_defaults(func=_demo)
