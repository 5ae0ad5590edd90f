"""Checks a receipt offline with nothing but the hub's published JWKS (``hub receipts verify`` and
``hub.client.verify_receipt``). Imports neither the server nor the cache.

A receipt document is JSON: ``{"receipt": JWS, "salt": b64url}``, plus for one key of a VerifyBatch
``"leaf"`` (its index, salt, answers and per-key values digests) and ``"proof"``
(the Merkle audit path). A case file is ``{"case_number": ..., "receipts": [document, ...]}``.
Every problem is named: a bad signature, an unknown or revoked key, a signature outside the key's
validity, a subject or claim value that does not match what the reviewer holds, a missing or wrong
inclusion proof.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import orjson
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from hub.proofs import merkle
from hub.proofs.receipt_format import ALG, JWS_TYPE, b64u, leaf_data, subject_digest, unb64u, values_digest

APPLICANT = "applicant"  # the subject role of a single or batch receipt, and a case's applicant


@dataclass
class ReceiptCheck:
    """What a receipt says and what is wrong with it (nothing, when ``ok``)."""

    statement: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    document: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        s = self.statement
        if not s:
            return "receipt"
        when = dt.datetime.fromtimestamp(s.get("iat", 0), dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        caller = s.get("caller", {}).get("department", "?")
        head = f"{s.get('kind')} receipt, case {s.get('case_number') or '-'}, {caller} ({s.get('purpose')}), {when}"
        if s.get("kind") == "case":
            outcomes = ", ".join(f"{e['name']}={e['outcome']}" for e in s.get("evidence", []))
            return f"{head}: {s.get('case_type')} {'complete' if s.get('complete') else 'incomplete'}; {outcomes}"
        answer = s.get("answer") or self.document.get("leaf") or {}
        return f"{head}: {s.get('resource')} found={answer.get('found')} match={answer.get('match')}"


def _public_key(jwks: Mapping, kid: str) -> tuple[OKPKey | None, str | None]:
    """The public key for ``kid``, or why receipts it signed cannot be trusted."""
    for revoked in jwks.get("revoked", []):
        if revoked.get("kid") == kid:
            at = dt.datetime.fromtimestamp(revoked["revoked_at"], dt.UTC).isoformat()
            return None, f"signed by key {kid}, revoked for compromise at {at} ({revoked.get('reason')}): not trusted"
    jwk = next((k for k in jwks.get("keys", []) if k.get("kid") == kid), None)
    if jwk is None:
        return None, f"signed by an unknown key {kid} (not in the JWKS)"
    # The algorithm is pinned to Ed25519 below; joserfc 1.8 files a JWK's "alg": "Ed25519" (RFC 9864)
    # under the older name EdDSA and would refuse the key for it.
    return OKPKey.import_key({k: v for k, v in jwk.items() if k != "alg"}), None


def _outside_validity(jwks: Mapping, kid: str, iat: int) -> str | None:
    """A retired key vouches only for what it signed in its window."""
    validity = next((v for v in jwks.get("key_validity", []) if v.get("kid") == kid), None)
    if validity is None:
        return None
    start, end = validity.get("not_before"), validity.get("not_after")
    if (start is not None and iat < start) or (end is not None and iat > end):
        return f"signed at {iat}, outside key {kid}'s validity ({start} to {end})"
    return None


def _decode(token: str, jwks: Mapping, check: ReceiptCheck) -> None:
    """Fills ``check.statement`` if the signature holds under a trusted key, else adds the problem."""
    try:
        header64, payload64, _ = token.split(".")
        header = orjson.loads(unb64u(header64))
        statement = orjson.loads(unb64u(payload64))
    except (ValueError, AttributeError, orjson.JSONDecodeError):
        check.problems.append("not a compact JWS receipt")
        return
    if header.get("alg") != ALG or header.get("typ") != JWS_TYPE:
        check.problems.append(f"not a hub receipt (alg {header.get('alg')!r}, typ {header.get('typ')!r})")
        return
    kid = str(header.get("kid"))
    key, problem = _public_key(jwks, kid)
    if key is not None:
        try:
            jws.deserialize_compact(token, key, algorithms=[ALG])
        except JoseError:
            problem = f"bad signature: the receipt was altered, or not signed by key {kid}"
        else:
            problem = _outside_validity(jwks, kid, int(statement.get("iat", 0)))
    check.statement = statement
    if problem:
        check.problems.append(problem)


def _salt(document: Mapping, name: str = "salt") -> bytes | None:
    try:
        return unb64u(document[name])
    except (KeyError, TypeError, ValueError):
        return None


def _check_claims(
    check: ReceiptCheck, entries: Sequence[dict], salt: bytes | None, held: Mapping[str, Sequence[str]]
) -> None:
    """Each field the reviewer holds values for must be claimed with exactly those values (by one claim at least)."""
    for name, values in held.items():
        matching = [e for e in entries if e.get("field") == name]
        if not matching:
            check.problems.append(f"claim on {name}: the receipt states none")
        elif salt is None:
            check.problems.append(f"claim on {name}: no salt in the document, cannot compare values")
        elif all(e.get("values") != b64u(values_digest(salt, values)) for e in matching):
            check.problems.append(f"claim on {name}: the value(s) {', '.join(values)} do not match the receipt")


def _check_batch_leaf(check: ReceiptCheck, subjects: Mapping[str, str], held: Mapping[str, Sequence[str]]) -> None:
    """A key's leaf is a salted commitment to its ID and answers: it is rebuilt from the ID held and
    must lead, through the inclusion proof, to the root the hub signed."""
    s, doc = check.statement, check.document
    leaf, proof = doc.get("leaf"), doc.get("proof")
    if not isinstance(leaf, dict) or not isinstance(proof, list):
        check.problems.append("missing inclusion proof: a batch receipt needs the key's leaf and proof")
        return
    if APPLICANT not in subjects:
        check.problems.append("a batch receipt is checked with the subject's ID: give the subject")
        return
    columns = s.get("claims", [])
    per_key = [c for c in columns if c.get("per_key")]
    try:
        key_salt = unb64u(leaf["salt"])
        digests = [unb64u(d) for d in leaf.get("values", [])]
        answers = [bool(b) for b in leaf["claims"]]
        if len(answers) != len(columns) or len(digests) != len(per_key):
            raise ValueError
        data = leaf_data(key_salt, bool(leaf["found"]), bool(leaf["match"]), answers, digests, subjects[APPLICANT])
        root = merkle.root_from_proof(
            merkle.leaf_hash(data), int(leaf["index"]), int(s["keys"]), [unb64u(p) for p in proof]
        )
    except (KeyError, TypeError, ValueError):
        check.problems.append("malformed leaf or inclusion proof")
        return
    if root is None or b64u(root) != s.get("root"):
        check.problems.append(
            "the leaf does not lead to the signed root: the subject is not the ID verified, "
            "or the leaf or the proof was altered"
        )
        return
    shared = {k: v for k, v in held.items() if any(c.get("field") == k and not c.get("per_key") for c in columns)}
    _check_claims(check, [c for c in columns if not c.get("per_key")], _salt(doc), shared)
    own = [{"field": c["field"], "values": d} for c, d in zip(per_key, leaf.get("values", []), strict=True)]
    _check_claims(check, own, key_salt, {k: v for k, v in held.items() if k not in shared})


def check_receipt(
    document: Mapping,
    jwks: Mapping,
    subjects: Mapping[str, str] | None = None,
    claims: Mapping[str, Sequence[str]] | None = None,
) -> ReceiptCheck:
    """Checks one receipt document against the JWKS and, if given, what the reviewer holds:
    ``subjects`` (role -> ID: "applicant" for a Verify or batch key, or a case's parameter name) and
    ``claims`` (field -> the values claimed)."""
    check = ReceiptCheck(document=dict(document))
    subjects, claims = subjects or {}, claims or {}
    token = document.get("receipt")
    if not isinstance(token, str):
        check.problems.append("no receipt in the document")
        return check
    _decode(token, jwks, check)
    if not check.ok:
        return check
    s, salt = check.statement, _salt(document)
    kind = s.get("kind")
    if kind == "verify_batch":
        _check_batch_leaf(check, subjects, claims)
        return check
    if kind not in ("verify", "case"):
        check.problems.append(f"unknown receipt kind {kind!r}")
        return check
    items = [s] if kind == "verify" else s.get("evidence", [])
    for role, held_id in subjects.items():
        of_role = [e for e in items if e.get("role", APPLICANT) == role]
        if not of_role:
            check.problems.append(f"subject {role}: the receipt has no subject in that role")
        elif salt is None:
            check.problems.append("no salt in the document, cannot compare the subject")
        elif any(e.get("subject") != b64u(subject_digest(salt, held_id)) for e in of_role):
            check.problems.append(f"subject {role} does not match: this receipt is not about the ID held")
    _check_claims(check, [c for e in items for c in e.get("claims", [])], salt, claims)
    return check


def documents_of(data: Mapping) -> list[Mapping]:
    """The receipt documents in a file: one document, or a case file's list."""
    if isinstance(data.get("receipts"), list):
        return data["receipts"]
    return [data]
