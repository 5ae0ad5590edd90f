"""The keyring that signs verification receipts: Ed25519 keys in the hub's key directory, rotated
with overlapping validity, published as a JWKS.

The key directory is the one the audit key lives in (the PKI directory from ``hub certs init``, or
``data_dir/dev-keys`` in insecure development mode), so every replica shares the keyring. Layout:
``receipt-keys/keyring.json`` (the manifest) and ``receipt-keys/<kid>.key`` (PKCS#8 PEM, mode 0600).
A key id is the key's RFC 7638 thumbprint.

A key signs from ``not_before`` until ``not_after`` (open while it is the newest). Rotation adds a
new key and closes the old ones ``overlap`` later, so replicas that have not reloaded yet still sign
with a key that verifies. A *retired* key (past ``not_after``) stays in the JWKS: what it signed in
its window still verifies. A key *revoked* for compromise leaves the JWKS's ``keys`` (off-the-shelf
verifiers then refuse it) and is listed under ``revoked`` with when and why, so the hub's checker
can say so.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from joserfc.jwk import OKPKey
from pydantic import BaseModel, ConfigDict

from hub.governance.keys import write_private

RELOAD_EVERY_S = 1.0


class KeyEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kid: str
    not_before: int  # unix seconds
    not_after: int | None = None  # the last second it may sign; None while it is the newest
    revoked_at: int | None = None
    reason: str = ""

    def state(self, now: int) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.not_after is not None and now > self.not_after:
            return "retired"
        return "active" if now >= self.not_before else "pending"


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: list[KeyEntry] = []


class ReceiptKeyring:
    """Reads and changes the keyring; the hub's replicas reload it when the manifest changes."""

    def __init__(self, key_dir: Path) -> None:
        self.dir = key_dir / "receipt-keys"
        self._manifest_path = self.dir / "keyring.json"
        self._lock = threading.Lock()
        self._loaded_mtime = -1
        self._checked_at = 0.0
        self._signing: tuple[str, OKPKey] | None = None
        self._jwks: dict = {}

    # -- changing it (operators, `hub certs`) -------------------------------------------------

    def manifest(self) -> Manifest:
        if not self._manifest_path.exists():
            return Manifest()
        return Manifest.model_validate_json(self._manifest_path.read_bytes())

    def _save(self, manifest: Manifest) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self._manifest_path.with_suffix(".tmp")
        tmp.write_text(manifest.model_dump_json(indent=2))
        os.replace(tmp, self._manifest_path)

    def _new_key(self, now: int) -> KeyEntry:
        key = OKPKey.generate_key("Ed25519")
        kid = key.thumbprint()
        write_private(self.dir / f"{kid}.key", key.as_pem(private=True))
        return KeyEntry(kid=kid, not_before=now)

    def ensure(self) -> None:
        """A first key, if the keyring has none that can sign."""
        now = int(time.time())
        manifest = self.manifest()
        if not any(k.state(now) == "active" for k in manifest.keys):
            manifest.keys.append(self._new_key(now))
            self._save(manifest)

    def rotate(self, overlap_s: int) -> KeyEntry:
        """A new signing key; the keys signing now stop ``overlap_s`` seconds later."""
        if overlap_s < 0:
            raise ValueError("overlap: must not be negative")
        now = int(time.time())
        manifest = self.manifest()
        for k in manifest.keys:
            if k.state(now) == "active":
                k.not_after = now + overlap_s if k.not_after is None else min(k.not_after, now + overlap_s)
        new = self._new_key(now)
        manifest.keys.append(new)
        self._save(manifest)
        return new

    def revoke(self, kid: str, reason: str) -> KeyEntry:
        """Revoked for compromise: nothing it signed verifies any more. A new key signs from now on."""
        now = int(time.time())
        manifest = self.manifest()
        found = [k for k in manifest.keys if k.kid == kid]
        if not found:
            raise KeyError(f"{kid}: no such receipt key (see 'hub receipts keys list')")
        found[0].revoked_at, found[0].reason = now, reason or "compromised"
        if not any(k.state(now) == "active" for k in manifest.keys):
            manifest.keys.append(self._new_key(now))
        self._save(manifest)
        return found[0]

    # -- using it (the hub) --------------------------------------------------------------------

    def _reload(self) -> None:
        """Re-reads the manifest when it changed; checked at most once a second."""
        monotonic = time.monotonic()
        if monotonic - self._checked_at < RELOAD_EVERY_S and self._signing is not None:
            return
        with self._lock:
            self._checked_at = monotonic
            mtime = self._manifest_path.stat().st_mtime_ns if self._manifest_path.exists() else 0
            if mtime == self._loaded_mtime and self._signing is not None:
                return
            manifest = self.manifest()
            self._jwks = self._build_jwks(manifest)
            now = int(time.time())
            active = [k for k in manifest.keys if k.state(now) == "active"]
            if not active:
                raise RuntimeError(f"no receipt key can sign now; run 'hub receipts keys rotate' ({self.dir})")
            newest = max(active, key=lambda k: k.not_before)
            self._signing = (newest.kid, OKPKey.import_key((self.dir / f"{newest.kid}.key").read_bytes()))
            self._loaded_mtime = mtime

    def signing_key(self) -> tuple[str, OKPKey]:
        """(kid, private key) of the newest key that may sign now."""
        self._reload()
        assert self._signing is not None
        return self._signing

    def jwks(self) -> dict:
        """The public keys as a JWK Set, with their validity and the revoked keys."""
        self._reload()
        return self._jwks

    def _build_jwks(self, manifest: Manifest) -> dict:
        keys, validity, revoked = [], [], []
        for k in manifest.keys:
            if k.revoked_at is not None:
                revoked.append({"kid": k.kid, "revoked_at": k.revoked_at, "reason": k.reason})
                continue
            public = OKPKey.import_key((self.dir / f"{k.kid}.key").read_bytes()).as_dict(private=False)
            keys.append({**public, "kid": k.kid, "alg": "EdDSA", "use": "sig"})
            validity.append({"kid": k.kid, "not_before": k.not_before, "not_after": k.not_after})
        return {"keys": keys, "key_validity": validity, "revoked": revoked}
