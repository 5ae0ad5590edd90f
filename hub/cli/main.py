"""The ``hub`` command: one module per command group, assembled here, run inside the error boundary.

Every hub option also has an environment variable (``HUB_<OPTION>``); an option given on the
command line wins.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import get_args

from hub import logs
from hub.cli import (
    audit,
    certs,
    codegen,
    connector,
    corrections,
    demo,
    draws,
    governance,
    receipts,
    serve,
    status,
    subscribe,
    supervise,
)
from hub.cli.errors import Parser, UsageError, run_guarded
from hub.settings import HubSettings

LOG_LEVELS = get_args(HubSettings.model_fields["log_level"].annotation)
GROUPS = (
    serve,
    status,
    demo,
    connector,
    certs,
    audit,
    governance,
    subscribe,
    corrections,
    receipts,
    draws,
    supervise,
    codegen,
)


def _name_commands(parser: argparse.ArgumentParser) -> None:
    """Each command's parser records its own name (``hub certs issue``) for the error boundary."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                sub.set_defaults(prog=sub.prog)
                _name_commands(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="hub", description="Exchange hub for city government data: publish, verify, look up.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do")
    for group in GROUPS:
        group.register(sub)
    _name_commands(parser)
    return parser


def _configure_logging(args: argparse.Namespace) -> None:
    level = (getattr(args, "log_level", None) or os.environ.get("HUB_LOG_LEVEL") or "INFO").upper()
    if level not in LOG_LEVELS:
        raise UsageError(f"log level {level!r}: expected one of {', '.join(LOG_LEVELS)}")
    logs.configure(level)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # What argparse took for unknown options, a command may claim as values (take_extra in its defaults).
    take_extra = getattr(args, "take_extra", None)
    if extra and not (take_extra is not None and take_extra(args, extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")

    def command() -> int:
        _configure_logging(args)
        return args.func(args)

    return run_guarded(args.prog, command)
