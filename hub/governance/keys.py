"""Key material the hub needs beyond TLS: the audit signing key and the subject-digest key.

With mutual TLS both come from the PKI directory (``hub certs init`` creates them), so every
replica shares them. In insecure development mode they are created once in the data directory.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519


def write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def audit_signing_key(directory: Path) -> ed25519.Ed25519PrivateKey:
    path = directory / "audit.key"
    if not path.exists():
        key = ed25519.Ed25519PrivateKey.generate()
        write_private(
            path,
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
        (directory / "audit.pub").write_bytes(
            key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
    return serialization.load_pem_private_key(path.read_bytes(), None)  # type: ignore[return-value]


def audit_public_key(path: Path) -> ed25519.Ed25519PublicKey:
    return serialization.load_pem_public_key(path.read_bytes())  # type: ignore[return-value]


def subject_key(directory: Path) -> bytes:
    path = directory / "audit-subject.key"
    if not path.exists():
        write_private(path, secrets.token_hex(32).encode())
    return path.read_bytes().strip()
