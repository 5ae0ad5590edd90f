"""The hub's own certificate authority: department certificates for mutual TLS, and revocation.

Layout of a PKI directory (``hub certs init``)::

    ca.key, ca.crt            the CA (the key never leaves this directory; mode 0600)
    server.key, server.crt    the hub's server certificate (SAN: localhost, 127.0.0.1, ::1, --server-name)
    audit.key, audit.pub      Ed25519 key that signs audit checkpoints
    audit-subject.key         HMAC key of the audit trail's subject digests
    issued/                   department certificates and keys, <department>[.<subsystem>]-<serial>.{crt,key}
    index.json                every certificate issued, with revocations
    crl.pem                   the current certificate revocation list, signed by the CA

A department certificate names its department in O and its subsystem (if any) in OU, the way
X-Road names member and subsystem. Keys are created by the ``cryptography`` package.
"""

from __future__ import annotations

import builtins
import datetime as dt
import ipaddress
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hub.governance.keys import audit_signing_key, subject_key

# The server certificate names the hub's replicas (O=hub, OU=replica): with it a replica of a sharded
# hub calls another on a caller's behalf (hub.governance.identity trusts the caller it names).
REPLICA_DEPARTMENT, REPLICA_SUBSYSTEM = "hub", "replica"

CA_DAYS = 3650
LEAF_DAYS = 397


class UnknownCertificate(KeyError):
    """No certificate with that serial in the PKI directory."""


@dataclass
class IssuedCert:
    serial: int
    department: str
    subsystem: str
    not_before: str
    not_after: str
    cert_path: str
    key_path: str
    revoked_at: str = ""
    reason: str = ""

    def status(self, now: dt.datetime | None = None) -> str:
        now = now or dt.datetime.now(dt.UTC)
        if self.revoked_at:
            return "revoked"
        if dt.datetime.fromisoformat(self.not_after) < now:
            return "expired"
        return "valid"


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    if private:
        os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _key_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common: str, department: str = "", subsystem: str = "") -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "CN")]
    if department:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, department))
    if subsystem:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, subsystem))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common))
    return x509.Name(attrs)


class CertificateAuthority:
    """Issues and revokes certificates in a PKI directory."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    @property
    def ca_cert_path(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def crl_path(self) -> Path:
        return self.dir / "crl.pem"

    def exists(self) -> bool:
        return (self.dir / "ca.key").exists()

    # -- set-up ----------------------------------------------------------------------------------

    def init(self, server_names: list[str] | None = None, city: str = "Deyang") -> None:
        """Creates the CA, the hub's server certificate, the audit signing key and an empty CRL."""
        if self.exists():
            raise FileExistsError(f"{self.dir} already holds a CA")
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        name = _name(f"{city} exchange hub CA")
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write(self.dir / "ca.key", _key_pem(key), private=True)
        _write(self.ca_cert_path, cert.public_bytes(serialization.Encoding.PEM))
        self._write_index([])
        self.issue_server(server_names or [])
        audit_signing_key(self.dir)
        subject_key(self.dir)
        self.write_crl()

    def _ca(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = serialization.load_pem_private_key((self.dir / "ca.key").read_bytes(), None)
        cert = x509.load_pem_x509_certificate(self.ca_cert_path.read_bytes())
        return key, cert  # type: ignore[return-value]

    def _leaf(
        self,
        subject: x509.Name,
        days: int,
        *,
        server_names: list[str] | None = None,
        not_before: dt.datetime | None = None,
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        ca_key, ca_cert = self._ca()
        key = ec.generate_private_key(ec.SECP256R1())
        start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        )
        if server_names is not None:
            alt: list[x509.GeneralName] = [x509.DNSName("localhost")]
            for n in ["127.0.0.1", "::1", *server_names]:
                try:
                    alt.append(x509.IPAddress(ipaddress.ip_address(n)))
                except ValueError:
                    alt.append(x509.DNSName(n))
            # Client too: a replica of a sharded hub forwards calls to another shard with this certificate.
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False).add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
        else:
            builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        return key, builder.sign(ca_key, hashes.SHA256())

    def issue_server(self, server_names: list[str]) -> None:
        key, cert = self._leaf(
            _name("exchange hub", REPLICA_DEPARTMENT, REPLICA_SUBSYSTEM), LEAF_DAYS, server_names=server_names
        )
        _write(self.dir / "server.key", _key_pem(key), private=True)
        _write(self.dir / "server.crt", cert.public_bytes(serialization.Encoding.PEM))

    # -- department certificates -----------------------------------------------------------------

    def issue(
        self, department: str, subsystem: str = "", days: int = LEAF_DAYS, not_before: dt.datetime | None = None
    ) -> IssuedCert:
        label = department + (f".{subsystem}" if subsystem else "")
        key, cert = self._leaf(_name(label, department, subsystem), days, not_before=not_before)
        stem = self.dir / "issued" / f"{label}-{cert.serial_number:x}"
        _write(stem.with_suffix(".key"), _key_pem(key), private=True)
        _write(stem.with_suffix(".crt"), cert.public_bytes(serialization.Encoding.PEM))
        issued = IssuedCert(
            cert.serial_number,
            department,
            subsystem,
            cert.not_valid_before_utc.isoformat(),
            cert.not_valid_after_utc.isoformat(),
            str(stem.with_suffix(".crt")),
            str(stem.with_suffix(".key")),
        )
        index = self.list()
        index.append(issued)
        self._write_index(index)
        return issued

    def list(self) -> list[IssuedCert]:
        path = self.dir / "index.json"
        if not path.exists():
            return []
        return [IssuedCert(**row) for row in json.loads(path.read_text())]

    def _write_index(self, certs: builtins.list[IssuedCert]) -> None:  # builtins: this class has a list()
        _write(self.dir / "index.json", json.dumps([asdict(c) for c in certs], indent=2).encode())

    def revoke(self, serial: int, reason: str = "") -> IssuedCert:
        certs = self.list()
        for c in certs:
            if c.serial == serial:
                if not c.revoked_at:
                    c.revoked_at = dt.datetime.now(dt.UTC).isoformat()
                    c.reason = reason
                self._write_index(certs)
                self.write_crl()
                return c
        raise UnknownCertificate(f"no certificate with serial {serial:x} in {self.dir}")

    def write_crl(self) -> bytes:
        """Writes and returns the CRL (PEM) listing every revoked certificate."""
        ca_key, ca_cert = self._ca()
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca_cert.subject)
            .last_update(now - dt.timedelta(minutes=1))
            .next_update(now + dt.timedelta(days=7))
        )
        for c in self.list():
            if c.revoked_at:
                builder = builder.add_revoked_certificate(
                    x509.RevokedCertificateBuilder()
                    .serial_number(c.serial)
                    .revocation_date(dt.datetime.fromisoformat(c.revoked_at))
                    .build()
                )
        pem = builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
        _write(self.crl_path, pem)
        return pem


def revoked_serials(crl_pem: bytes, ca_cert_pem: bytes) -> frozenset[int]:
    """The serials a CRL revokes, after checking the CA signed it."""
    crl = x509.load_pem_x509_crl(crl_pem)
    ca = x509.load_pem_x509_certificate(ca_cert_pem)
    if not crl.is_signature_valid(ca.public_key()):  # type: ignore[arg-type]
        raise ValueError("the CRL is not signed by the hub's CA")
    return frozenset(r.serial_number for r in crl)


def peer_identity(pem: bytes) -> tuple[str, str, int, dt.datetime]:
    """(department, subsystem, serial, not_after) of a department certificate."""
    cert = x509.load_pem_x509_certificate(pem)
    subject = cert.subject

    def attr(oid) -> str:
        values = subject.get_attributes_for_oid(oid)
        return str(values[0].value) if values else ""

    return (
        attr(NameOID.ORGANIZATION_NAME),
        attr(NameOID.ORGANIZATIONAL_UNIT_NAME),
        cert.serial_number,
        cert.not_valid_after_utc,
    )
