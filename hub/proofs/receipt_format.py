"""The receipt format, shared by the hub that signs and anyone who checks: canonical JSON, salted
digests, the batch leaf, base64url. Nothing here knows about the server or the cache.

A receipt is a compact JWS (RFC 7515), ``alg`` ``Ed25519`` (EdDSA over Ed25519, RFC 8037/9864),
``typ`` ``hub-receipt+jws``, ``kid`` the signing key's RFC 7638 thumbprint. Its payload is the RFC
8785 canonical JSON of the statement. The hub's statements hold only ASCII member names, strings,
integers and booleans, for which sorted-key orjson output is byte for byte RFC 8785 (a property
test holds it to the reference implementation), at a hundredth of the cost.

Digests (SHA-256, base64url without padding), each with the salt given to the caller (16 bytes):

    subject        = SHA-256(salt || UTF-8(key))
    claim values   = SHA-256(salt || RFC 8785 JSON array of the values as strings)

Batch leaf data, for key i with its own salt (a salted commitment to the key and its answers; the
key goes last, so the layout is unambiguous given the statement's claim columns):

    salt (16) || found (1) || match (1) || one byte per claim column (0/1)
        || the values digest (32) of each per-key claim column, in column order || UTF-8(key)

and the leaf hash is SHA-256(0x00 || leaf data) (see hub.proofs.merkle). One hash per key and
none for a separate subject digest: a batch receipt is checked with the subject's ID in hand.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from hashlib import sha256

import orjson

JWS_TYPE = "hub-receipt+jws"
ALG = "Ed25519"
SALT_BYTES = 16
VERSION = 1


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical(statement: object) -> bytes:
    """RFC 8785 canonical JSON of a statement made of ASCII-named objects, strings, ints and bools."""
    return orjson.dumps(statement, option=orjson.OPT_SORT_KEYS)


def subject_digest(salt: bytes, key: str) -> bytes:
    return sha256(salt + key.encode()).digest()


def values_digest(salt: bytes, values: Iterable[str]) -> bytes:
    return sha256(salt + canonical(list(values))).digest()


def leaf_data(
    salt: bytes, found: bool, match: bool, claims: Sequence[bool], value_digests: Sequence[bytes], key: str
) -> bytes:
    """One key's leaf in a batch receipt (see the module docstring)."""
    return salt + bytes([found, match, *claims]) + b"".join(value_digests) + key.encode()
