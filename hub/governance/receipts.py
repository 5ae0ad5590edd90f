"""Signed verification receipts, built and signed by the hub (the format: hub.proofs.receipt_format).

A receipt states which hub answered, when, for which caller, purpose and case number; the resource
and a salted digest of the subject's key; each claim (field, operator, a salted digest of its
values) and each answer; and the cache watermark the answer was read at. The salts go to the
caller only. A VerifyBatch gets one signature over the Merkle root of per-key leaves, each leaf
salted on its own, so one person's receipt reveals nothing about the others in the batch.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.cache.claims import Claim, Compiled
from hub.cache.table import Watermark
from hub.cache.verify import BatchOutcome, Outcome
from hub.governance.identity import Caller
from hub.governance.receipt_keys import ReceiptKeyring
from hub.proofs import merkle
from hub.proofs.receipt_format import (
    ALG,
    JWS_TYPE,
    SALT_BYTES,
    VERSION,
    b64u,
    canonical,
    subject_digest,
    values_digest,
)


@dataclass(frozen=True)
class Signed:
    """A receipt and the salt that opens its digests."""

    jws: str
    salt: bytes


@dataclass(frozen=True)
class SignedBatch:
    jws: str
    salt: bytes  # for the claim values shared by every key
    key_salts: bytes  # 16 bytes per key, in request order
    tree: bytes  # the Merkle tree, every level, leaves first (hub.proofs.merkle.pack)


@dataclass(frozen=True)
class EvidenceStatement:
    """One evidence item of a case, as its receipt states it."""

    name: str
    resource: str
    key_field: str
    role: str  # which subject of the case: "applicant" or a parameter's name
    subject: str
    claims: Sequence[Claim]
    outcome: str
    watermark: Watermark | None


def _watermark(wm: Watermark | None) -> dict | None:
    if wm is None:
        return None
    return {
        "offsets": list(wm.offsets),
        "caught_up_at_ms": wm.caught_up_at_ms,
        "last_record_at_ms": wm.last_record_at_ms,
    }


def _claim(salt: bytes, claim: Claim, per_key: bool | None = None) -> dict:
    """A claim as stated. In a batch (``per_key`` set), a column with one value per key leaves
    ``values`` empty: each leaf holds its own key's values digest."""
    entry = {
        "field": claim.field,
        "op": claim.op.value,
        "or_unset": claim.or_unset,
        "values": "" if per_key else b64u(values_digest(salt, claim.values)),
    }
    if per_key is not None:
        entry["per_key"] = per_key
    return entry


def _leaf_hashes(fixed: np.ndarray, keys: Sequence[str]) -> bytes:
    """The leaf hashes of rows ``fixed || UTF-8(key)``: all in NumPy when the keys share one length
    (IDs and credit codes do), else row by row."""
    encoded = "".join(keys)
    if encoded.isascii() and len(set(map(len, keys))) == 1:
        key_bytes = np.frombuffer(encoded.encode(), np.uint8).reshape(len(keys), len(keys[0]))
        return merkle.leaf_hashes(np.hstack([fixed, key_bytes]))
    rows, step = fixed.tobytes(), fixed.shape[1]
    return b"".join(merkle.leaf_hash(rows[i * step : (i + 1) * step] + k.encode()) for i, k in enumerate(keys))


class ReceiptSigner:
    """Signs statements with the keyring's current key, as this hub replica."""

    def __init__(self, keyring: ReceiptKeyring, issuer: str) -> None:
        self._keyring = keyring
        self._issuer = issuer
        self._replica = f"{socket.gethostname()}/{os.getpid()}"
        self._header: tuple[str, str, Ed25519PrivateKey] | None = None

    def jwks(self) -> dict:
        """The public keys that check what this signer signs (see ReceiptKeyring.jwks)."""
        return self._keyring.jwks()

    def _sign(self, statement: dict) -> str:
        kid, key = self._keyring.signing_key()
        if self._header is None or self._header[0] != kid:
            header = canonical({"alg": ALG, "kid": kid, "typ": JWS_TYPE})
            self._header = (kid, b64u(header), cast(Ed25519PrivateKey, key.private_key))  # the keyring makes Ed25519
        _, header64, private = self._header
        signing_input = f"{header64}.{b64u(canonical(statement))}"
        # Compact JWS (RFC 7515) by hand: three base64url parts; joserfc would add ~30 µs a call.
        return f"{signing_input}.{b64u(private.sign(signing_input.encode()))}"

    def _head(self, kind: str, caller: Caller, purpose: str, case_number: str) -> dict:
        return {
            "v": VERSION,
            "kind": kind,
            "iss": self._issuer,
            "replica": self._replica,
            "iat": int(time.time()),
            "jti": b64u(os.urandom(12)),
            "caller": {"department": caller.department, "subsystem": caller.subsystem},
            "purpose": purpose,
            "case_number": case_number,
        }

    def verify(
        self,
        caller: Caller,
        purpose: str,
        case_number: str,
        resource: str,
        key_field: str,
        key: str,
        claims: Sequence[Claim],
        outcome: Outcome,
        watermark: Watermark,
    ) -> Signed:
        salt = os.urandom(SALT_BYTES)
        statement = self._head("verify", caller, purpose, case_number)
        statement |= {
            "resource": resource,
            "key_field": key_field,
            "subject": b64u(subject_digest(salt, key)),
            "claims": [_claim(salt, c) for c in claims],
            "answer": {"found": outcome.found, "match": outcome.match, "claims": list(outcome.claims)},
            "watermark": _watermark(watermark),
        }
        return Signed(self._sign(statement), salt)

    def verify_batch(
        self,
        caller: Caller,
        purpose: str,
        case_number: str,
        resource: str,
        key_field: str,
        keys: Sequence[str],
        claims: Sequence[Claim],
        compiled: Sequence[Compiled],
        outcome: BatchOutcome,
        watermark: Watermark,
    ) -> SignedBatch:
        n = len(keys)
        salt, key_salts = os.urandom(SALT_BYTES), os.urandom(SALT_BYTES * n)
        # Every key's leaf data as one row of a byte matrix (receipt_format.leaf_data, column by column).
        columns = [
            np.frombuffer(key_salts, np.uint8).reshape(n, SALT_BYTES),
            np.column_stack([outcome.found, outcome.match, *outcome.claims]).astype(np.uint8),
        ]
        for claim, c in zip(claims, compiled, strict=True):
            if c.per_key:  # this column's value differs per key: its salted digest goes into the leaf
                digests = b"".join(
                    values_digest(key_salts[i * SALT_BYTES : (i + 1) * SALT_BYTES], (v,))
                    for i, v in enumerate(claim.values)
                )
                columns.append(np.frombuffer(digests, np.uint8).reshape(n, 32))
        leaves = _leaf_hashes(np.hstack(columns), keys)
        levels = merkle.build_levels(leaves)
        statement = self._head("verify_batch", caller, purpose, case_number)
        statement |= {
            "resource": resource,
            "key_field": key_field,
            "keys": n,
            "claims": [_claim(salt, claim, c.per_key) for claim, c in zip(claims, compiled, strict=True)],
            "root": b64u(levels[-1]),
            "watermark": _watermark(watermark),
        }
        return SignedBatch(self._sign(statement), salt, key_salts, merkle.pack(levels))

    def case(
        self,
        caller: Caller,
        purpose: str,
        case_number: str,
        case_type: str,
        date: str,
        complete: bool,
        evidence: Sequence[EvidenceStatement],
        restrictions: Sequence[str],
    ) -> Signed:
        salt = os.urandom(SALT_BYTES)
        statement = self._head("case", caller, purpose, case_number)
        statement |= {
            "case_type": case_type,
            "date": date,
            "complete": complete,
            "evidence": [
                {
                    "name": e.name,
                    "resource": e.resource,
                    "key_field": e.key_field,
                    "role": e.role,
                    "subject": b64u(subject_digest(salt, e.subject)),
                    "claims": [_claim(salt, c) for c in e.claims],
                    "outcome": e.outcome,
                    "watermark": _watermark(e.watermark),
                }
                for e in evidence
            ],
            "restrictions": list(restrictions),
        }
        return Signed(self._sign(statement), salt)
