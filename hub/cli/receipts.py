"""The ``hub receipts`` commands: check receipts offline, fetch a case's receipts and the signing
keys from a hub, and manage the keyring (rotate, revoke, list)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from hub.cli.options import add_client_options, tls_paths

if TYPE_CHECKING:
    import grpc


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r}: expected FIELD=VALUE, e.g. district_code=510603")
    return name, value


def _subject(text: str) -> tuple[str, str]:
    """``ID`` (the applicant, or the key of a Verify) or ``ROLE=ID`` (a case's other subject)."""
    from hub.proofs.receipt_check import APPLICANT

    role, sep, value = text.partition("=")
    return (role, value) if sep else (APPLICANT, text)


def _read_json(path: Path, what: str) -> dict:
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise SystemExit(f"{what} {path}: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise SystemExit(f"{what} {path}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise SystemExit(f"{what} {path}: expected a JSON object")
    return data


def verify_files(path: Path, jwks_path: Path, subjects: dict[str, str], claims: dict[str, list[str]]) -> int:
    """Checks every receipt in ``path``; prints one line per receipt and each problem. 1 if any fails."""
    from hub.proofs.receipt_check import check_receipt, documents_of

    jwks = _read_json(jwks_path, "JWKS")
    documents = documents_of(_read_json(path, "receipt file"))
    failed = 0
    for document in documents:
        check = check_receipt(document, jwks, subjects, claims)
        print(f"{'OK    ' if check.ok else 'FAILED'}  {check.summary()}")
        for problem in check.problems:
            print(f"        - {problem}")
        failed += not check.ok
    if failed:
        print(f"{failed} of {len(documents)} receipts FAILED")
        return 1
    print(f"all {len(documents)} receipts verified")
    return 0


def _rpc(call: Callable):
    import grpc

    try:
        return call()
    except grpc.RpcError as err:
        raise SystemExit(f"{err.code().name}: {err.details()}") from None


def _write(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text + "\n")
    else:
        out.write_text(text + "\n")


def fetch_case(channel: grpc.Channel, case_number: str, out: Path | None) -> int:
    """Writes a case file: every receipt stored with the case's events."""
    from hub.client import receipt_document
    from hub.v1 import receipts_pb2, receipts_pb2_grpc

    stub = receipts_pb2_grpc.ReceiptsStub(channel)
    found = _rpc(lambda: stub.GetCaseReceipts(receipts_pb2.GetCaseReceiptsRequest(case_number=case_number)))
    documents = [receipt_document(r.receipt) for r in found.receipts]
    _write(orjson.dumps({"case_number": case_number, "receipts": documents}, option=orjson.OPT_INDENT_2).decode(), out)
    if out is not None:
        print(f"{len(documents)} receipt(s) of case {case_number} written to {out}")
    return 0


def fetch_jwks(channel: grpc.Channel, out: Path | None) -> int:
    from hub.v1 import receipts_pb2, receipts_pb2_grpc

    stub = receipts_pb2_grpc.ReceiptsStub(channel)
    _write(_rpc(lambda: stub.GetKeys(receipts_pb2.GetKeysRequest())).jwks_json, out)
    return 0


def manage_keys(key_dir: Path, action: str, overlap_hours: float, kid: str, reason: str) -> int:
    from rich.console import Console
    from rich.table import Table

    from hub.governance.receipt_keys import ReceiptKeyring

    keyring = ReceiptKeyring(key_dir)
    if action == "rotate":
        new = keyring.rotate(int(overlap_hours * 3600))
        print(f"new receipt key {new.kid}; the previous keys stop signing in {overlap_hours:g} h")
    elif action == "revoke":
        if not kid:
            raise SystemExit("revoke: name the key id, as 'hub receipts keys list' shows it")
        try:
            keyring.revoke(kid, reason)
        except KeyError as exc:
            raise SystemExit(str(exc.args[0])) from None
        print(f"revoked receipt key {kid}: receipts it signed no longer verify; hubs reload within a second")
    else:
        now = int(dt.datetime.now(dt.UTC).timestamp())

        def when(t: int | None) -> str:
            return "" if t is None else dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M")

        table = Table("key id", "signs from", "signs until", "state", "reason")
        for k in keyring.manifest().keys:
            table.add_row(k.kid, when(k.not_before), when(k.not_after), k.state(now), k.reason)
        Console(width=160).print(table)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """The ``receipts`` command group."""

    def channel_of(args: argparse.Namespace) -> grpc.Channel:
        from hub.client import open_channel

        return open_channel(args.hub, department=args.department, tls=tls_paths(args))

    receipts = sub.add_parser(
        "receipts",
        help="Signed verification receipts: check them, fetch a case's, manage the signing keys.",
        description="Signed verification receipts (JWS, Ed25519), checkable offline with the hub's JWKS.",
    )
    rsub = receipts.add_subparsers(dest="receipts_command", required=True, metavar="ACTION", help="what to do")
    p = rsub.add_parser(
        "verify",
        help="Check receipts offline against the JWKS and what you hold.",
        description="Check every receipt in FILE (one receipt, or a case file). Exit code 1 if any fails.",
    )
    p.add_argument("file", type=Path, help="A receipt document or a case file from 'hub receipts case'.")
    p.add_argument("--jwks", type=Path, required=True, help="The hub's JWKS ('hub receipts jwks').")
    p.add_argument(
        "--subject", action="append", default=[], type=_subject, metavar="[ROLE=]ID", help="The ID you hold."
    )
    p.add_argument(
        "--claim", action="append", default=[], type=_pair, metavar="FIELD=VALUE", help="A claimed value you hold."
    )
    p.set_defaults(
        func=lambda a: verify_files(a.file, a.jwks, dict(a.subject), _grouped(a.claim)),
    )
    p = rsub.add_parser(
        "case",
        help="Fetch every receipt behind a case number.",
        description="Fetch every receipt stored with a case's events (the submitting department or hub_admin).",
    )
    p.add_argument("case_number", help="e.g. DY-2017-SW-000001")
    p.add_argument("--out", type=Path, help="Write the case file here (default: standard output).")
    add_client_options(p)
    p.set_defaults(func=lambda a: fetch_case(channel_of(a), a.case_number, a.out))
    p = rsub.add_parser(
        "jwks", help="Fetch the hub's receipt keys (JWKS).", description="Fetch the receipt-signing keys as a JWKS."
    )
    p.add_argument("--out", type=Path, help="Write the JWKS here (default: standard output).")
    add_client_options(p)
    p.set_defaults(func=lambda a: fetch_jwks(channel_of(a), a.out))
    p = rsub.add_parser(
        "keys",
        help="List, rotate or revoke the receipt-signing keys.",
        description="The receipt keyring in the PKI directory (or data_dir/dev-keys in insecure dev mode).",
    )
    p.add_argument("action", choices=["list", "rotate", "revoke"], help="What to do with the keyring.")
    p.add_argument("kid", nargs="?", default="", help="For revoke: the key id, as 'list' shows it.")
    p.add_argument(
        "--pki-dir", type=Path, default=Path(".hub-data/pki"), help="The PKI directory. Default: .hub-data/pki."
    )
    p.add_argument("--overlap-hours", type=float, default=24.0, help="Rotate: old keys sign this long. Default: 24.")
    p.add_argument("--reason", default="compromised", help="Revoke: why (receipts it signed stop verifying).")
    p.set_defaults(
        func=lambda a: manage_keys(a.pki_dir, a.action, a.overlap_hours, a.kid, a.reason), take_extra=_dash_led_kid
    )


def _dash_led_kid(args: argparse.Namespace, extra: list[str]) -> bool:
    """A key id may begin with "-" (base64url: one thumbprint in 64), which argparse takes for an unknown
    option: for revoke, the one such argument is the id."""
    if args.action == "revoke" and not args.kid and len(extra) == 1:
        args.kid = extra[0]
        return True
    return False


def _grouped(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Repeated ``--claim f=v`` for one field: the set of values of an IN claim, in order."""
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        out.setdefault(name, []).append(value)
    return out
