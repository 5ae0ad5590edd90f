"""``hub draws verify``: re-run a random-inspection draw from its published material."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def _verify(args: argparse.Namespace) -> int:
    from hub.inspections import recheck

    verified, lines = recheck.run(args.plan_id, args.site, args.file)
    print("\n".join(lines))
    return 0 if verified else 1


def register(sub: argparse._SubParsersAction) -> None:
    draws = sub.add_parser("draws", help="Random-inspection draws.", description="Check random-inspection draws.")
    p = draws.add_subparsers(dest="draws_command", required=True, metavar="ACTION", help="verify").add_parser(
        "verify",
        help="Re-run a draw from its published material and say what differs.",
        description="Fetches the plan's material from the public site (or a saved file). Exit code 1 if it differs.",
    )
    p.add_argument("plan_id", help="The plan, e.g. DP-food_drug-20261128-1a2b3c4d.")
    p.add_argument(
        "--site",
        default=os.environ.get("HUB_PUBLIC_URL", "http://127.0.0.1:8080"),
        help="The hub's public site (HUB_PUBLIC_URL). Default: http://127.0.0.1:8080.",
    )
    p.add_argument("--file", type=Path, help="Published material saved as JSON, instead of the site.")
    p.set_defaults(func=_verify)
