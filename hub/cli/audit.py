"""``hub audit verify``: check the tamper-evident audit trail."""

from __future__ import annotations

import argparse
from pathlib import Path

from hub.cli import checks
from hub.cli.errors import UsageError
from hub.cli.options import COMMON_HUB_OPTIONS, add_hub_options, settings_from


def _verify(args: argparse.Namespace) -> int:
    from hub.governance.audit_verify import read_topic, verify_entries
    from hub.governance.keys import audit_public_key

    settings = settings_from(args)
    if not settings.bootstrap_servers:
        raise UsageError("--bootstrap-servers (or HUB_BOOTSTRAP_SERVERS) names the cluster holding the audit topic")
    checks.kafka_reachable(settings.bootstrap_servers)
    key_path = args.public_key or (settings.tls_dir or settings.data_dir / "dev-keys") / "audit.pub"
    topic = args.topic or f"{settings.topic_prefix}_audit"
    report = verify_entries(
        read_topic(settings.bootstrap_servers, topic, settings.kafka_extra()), audit_public_key(key_path)
    )
    print(report.summary())
    return 0 if report.ok else 1


def register(sub: argparse._SubParsersAction) -> None:
    audit = sub.add_parser("audit", help="Check the audit trail.", description="The tamper-evident audit trail.")
    asub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION", help="verify")
    p = asub.add_parser(
        "verify",
        help="Recompute every hash chain and check every signed checkpoint.",
        description="Detects edited, removed and reordered audit entries. Exit code 1 if any.",
    )
    add_hub_options(p, COMMON_HUB_OPTIONS)
    p.add_argument("--topic", help="Audit topic to verify. Default: <prefix>_audit.")
    p.add_argument("--public-key", type=Path, help="Audit public key. Default: audit.pub in the TLS or dev-key dir.")
    p.set_defaults(func=_verify)
