"""``hub certs init|issue|list|revoke``: the hub's certificate authority."""

from __future__ import annotations

import argparse
from pathlib import Path


def _serial(text: str) -> int:
    try:
        return int(text, 16)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a hex serial as 'hub certs list' shows it") from None


def _certs(args: argparse.Namespace) -> int:
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
        revoked = ca.revoke(args.serial, args.reason)
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


def register(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("serial", type=_serial, help="Serial number in hex, as 'hub certs list' shows it.")
    p.add_argument("--reason", default="", help="Why it is revoked.")
    p.add_argument("--bootstrap-servers", help="Publish the CRL to this cluster's governance topic.")
    p.add_argument("--topic-prefix", default="hub.", help="Topic prefix of the hubs. Default: 'hub.'.")
    for action in csub.choices.values():
        action.set_defaults(func=_certs)
