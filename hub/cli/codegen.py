"""``hub codegen``: regenerate the Python stubs from proto/."""

from __future__ import annotations

import argparse


def _codegen(args: argparse.Namespace) -> int:
    from hub.codegen import main

    main()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "codegen",
        help="Regenerate the Python stubs from proto/.",
        description="Run the one codegen entry point: proto/hub/v1/*.proto -> hub/v1/.",
    )
    p.set_defaults(func=_codegen)
