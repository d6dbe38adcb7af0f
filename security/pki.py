"""A development PKI for one branch, and the TLS contexts built from it.

``branchd pki`` creates a branch CA and issues certificates for the daemon,
teller terminals, device agents and simulators. Production branches receive
their certificates from the bank's or the province's CA instead; the contexts
below take any PEM files.

Keys are ECDSA P-256: TLS stacks (OpenSSL in Python's ``ssl``) negotiate it
everywhere, while SM2 certificates (GB/T 38636 TLCP) would need a separate TLS
stack. Message-level SM2 signatures are the envelope's job (``gm`` suite).

Every TLS context is TLS 1.2 or newer and, unless told otherwise, requires a
certificate from the peer (mutual authentication).
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from security.errors import SecurityError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "TLS12_CIPHERS",
    "CertificateInfo",
    "CertificateRole",
    "PkiError",
    "certificate_info",
    "client_context",
    "init_ca",
    "issue",
    "server_context",
]

CA_DAYS = 3650
LEAF_DAYS = 825  # the longest validity browsers and most TLS clients still accept
EXPIRY_WARNING = timedelta(days=30)


class PkiError(SecurityError):
    """A certificate or key file is missing, unreadable or not what it should be."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        """Keep the file concerned (never its content)."""
        super().__init__(message)
        self.path = path


class CertificateRole(StrEnum):
    """What a certificate is for (its extended key usage)."""

    SERVER = "server"  # serves TLS (simulated platform, bank, broker)
    CLIENT = "client"  # connects with a certificate (teller terminal, device agent)
    PEER = "peer"  # both (the daemon: serves tellers, connects upstream)


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """What operators need to know about one certificate file."""

    path: Path
    subject: str
    issuer: str
    not_after: datetime

    def days_left(self, now: datetime) -> float:
        """Days until expiry (negative once expired)."""
        return (self.not_after - now).total_seconds() / 86400

    def expires_soon(self, now: datetime, within: timedelta = EXPIRY_WARNING) -> bool:
        """True when the certificate expires within ``within`` of ``now`` (or has expired)."""
        return self.not_after - now <= within


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` readable by the owner only, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)


def _name(common_name: str, branch: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sscard-branchd"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, branch),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = directory / "ca.pem", directory / "ca.key"
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except OSError as exc:
        raise PkiError(f"no branch CA in {directory}: {exc.strerror}", directory) from None
    except ValueError:
        raise PkiError(f"the branch CA in {directory} is not readable PEM", directory) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError("the branch CA key is not an EC key", key_path)
    return cert, key


def init_ca(directory: Path, branch: str, now: datetime, days: int = CA_DAYS) -> Path:
    """Create ``ca.pem`` and ``ca.key`` for ``branch`` in ``directory``; refuse to overwrite."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_path = directory / "ca.pem"
    if cert_path.exists():
        raise PkiError(f"{cert_path} exists; refusing to replace a CA", cert_path)
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(f"sscard-branchd development CA {branch}", branch)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    usage = x509.KeyUsage(
        digital_signature=False, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True,
        crl_sign=True, encipher_only=False, decipher_only=False,
    )  # fmt: skip
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(
        directory / "ca.key",
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path


def issue(  # noqa: PLR0913 - every argument is a separate certificate property
    directory: Path,
    name: str,
    role: CertificateRole,
    now: datetime,
    *,
    dns_names: list[str] | None = None,
    ip_addresses: list[str] | None = None,
    days: int = LEAF_DAYS,
) -> tuple[Path, Path]:
    """Issue ``<name>.pem`` and ``<name>.key`` from the CA in ``directory``.

    Server and peer certificates get ``localhost`` and ``127.0.0.1``/``::1`` in their
    subject alternative names unless others are given.
    """
    if not name or not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
        raise PkiError(f"certificate name {name!r} must be letters, digits, '-', '_' or '.'")
    ca_cert, ca_key = _load_ca(directory)
    branch = ca_cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
    key = ec.generate_private_key(ec.SECP256R1())
    usage = x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=True, key_cert_sign=False,
        crl_sign=False, encipher_only=False, decipher_only=False,
    )  # fmt: skip
    usages = {
        CertificateRole.SERVER: [ExtendedKeyUsageOID.SERVER_AUTH],
        CertificateRole.CLIENT: [ExtendedKeyUsageOID.CLIENT_AUTH],
        CertificateRole.PEER: [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
    }[role]
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(name, str(branch)))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(min(now + timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if role is not CertificateRole.CLIENT or dns_names or ip_addresses:
        dns = dns_names if dns_names is not None else ["localhost"]
        ips = ip_addresses if ip_addresses is not None else ["127.0.0.1", "::1"]
        try:
            alt: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
            alt += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        except ValueError as exc:
            raise PkiError(f"invalid subject alternative name: {exc}") from None
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    key_path, cert_path = directory / f"{name}.key", directory / f"{name}.pem"
    _write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def certificate_info(path: Path) -> CertificateInfo:
    """Subject, issuer and expiry of the (first) certificate in the PEM file ``path``."""
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except OSError as exc:
        raise PkiError(f"cannot read certificate {path}: {exc.strerror}", path) from None
    except ValueError:
        raise PkiError(f"{path} is not a PEM certificate", path) from None
    return CertificateInfo(
        path=path,
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_after=cert.not_valid_after_utc.astimezone(UTC),
    )


def _load_chain(context: ssl.SSLContext, cert: Path, key: Path, ca: Path) -> None:
    try:
        context.load_cert_chain(cert, key)
        context.load_verify_locations(cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        raise PkiError(f"cannot load TLS files ({cert}, {key}, {ca}): {exc}", cert) from None


#: TLS 1.2 cipher suites allowed: forward-secret AEAD only (AES-GCM, ChaCha20-Poly1305);
#: no CBC, no RSA key exchange. TLS 1.3's suites are all AEAD and stay as OpenSSL has them.
TLS12_CIPHERS: Final = "ECDHE+AESGCM:ECDHE+CHACHA20"


def server_context(
    cert: Path, key: Path, ca: Path, *, require_client_cert: bool = True
) -> ssl.SSLContext:
    """A TLS 1.2+ server context with AEAD suites only.

    Clients must present a certificate from ``ca`` by default.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    _load_chain(context, cert, key, ca)
    context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return context


def client_context(cert: Path | None, key: Path | None, ca: Path) -> ssl.SSLContext:
    """A TLS 1.2+ client context (AEAD suites only) that verifies the server against ``ca``.

    The server's host name is checked too.

    With ``cert`` and ``key`` the client authenticates itself (mutual TLS): for
    upstream HTTPS, MQTT brokers and device agents.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_verify_locations(cafile=ca)
        if cert is not None and key is not None:
            context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise PkiError(f"cannot load TLS files ({cert}, {key}, {ca}): {exc}", ca) from None
    return context
