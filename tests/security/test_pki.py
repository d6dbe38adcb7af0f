import ssl
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from security.pki import (
    CertificateRole,
    PkiError,
    certificate_info,
    client_context,
    init_ca,
    issue,
    server_context,
)

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    """A directory holding a fresh branch CA."""
    init_ca(tmp_path / "pki", "B1", NOW)
    return tmp_path / "pki"


def load(path: Path) -> x509.Certificate:
    """Parse a PEM certificate."""
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_ca_is_a_ca_and_its_key_is_private(ca_dir: Path) -> None:
    """The CA certificate may sign certificates; its key file is owner-only."""
    ca = load(ca_dir / "ca.pem")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert stat.S_IMODE((ca_dir / "ca.key").stat().st_mode) == 0o600
    assert "OU=B1" in ca.subject.rfc4514_string()


def test_ca_never_replaced(ca_dir: Path) -> None:
    """A second init in the same directory is refused (it would orphan every certificate)."""
    with pytest.raises(PkiError, match="refusing to replace"):
        init_ca(ca_dir, "B1", NOW)


@pytest.mark.parametrize(
    ("role", "usages"),
    [
        (CertificateRole.SERVER, {ExtendedKeyUsageOID.SERVER_AUTH}),
        (CertificateRole.CLIENT, {ExtendedKeyUsageOID.CLIENT_AUTH}),
        (CertificateRole.PEER, {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}),
    ],
)
def test_roles_set_key_usage(
    ca_dir: Path, role: CertificateRole, usages: set[x509.ObjectIdentifier]
) -> None:
    """Each role gets exactly its extended key usages, signed by the branch CA."""
    cert_path, key_path = issue(ca_dir, f"x-{role}", role, NOW)
    cert = load(cert_path)
    assert set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == usages
    cert.verify_directly_issued_by(load(ca_dir / "ca.pem"))
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600


def test_server_names_default_to_loopback(ca_dir: Path) -> None:
    """Server certificates name localhost and the loopback addresses unless told otherwise."""
    cert = load(issue(ca_dir, "sim", CertificateRole.SERVER, NOW)[0])
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]


@pytest.mark.parametrize("name", ["", "../evil", ".hidden", "a b"])
def test_unsafe_names_refused(ca_dir: Path, name: str) -> None:
    """Certificate names become file names: path tricks are refused."""
    with pytest.raises(PkiError, match="must be letters"):
        issue(ca_dir, name, CertificateRole.CLIENT, NOW)


def test_issue_without_ca(tmp_path: Path) -> None:
    """Issuing needs a CA; the error names the directory."""
    with pytest.raises(PkiError, match="no branch CA"):
        issue(tmp_path, "x", CertificateRole.CLIENT, NOW)


def test_expiry_reported_30_days_ahead(ca_dir: Path) -> None:
    """A certificate is flagged from 30 days before its expiry; days left are reported."""
    info = certificate_info(issue(ca_dir, "short", CertificateRole.SERVER, NOW, days=40)[0])
    assert info.not_after == NOW + timedelta(days=40)
    assert not info.expires_soon(NOW)
    assert info.expires_soon(NOW + timedelta(days=11))
    assert info.days_left(NOW + timedelta(days=41)) < 0


def test_contexts_are_tls12_plus_and_mutual(ca_dir: Path) -> None:
    """Server contexts require a client certificate; client contexts check the host name."""
    cert, key = issue(ca_dir, "srv", CertificateRole.PEER, NOW)
    server = server_context(cert, key, ca_dir / "ca.pem")
    client = client_context(cert, key, ca_dir / "ca.pem")
    assert server.minimum_version == ssl.TLSVersion.TLSv1_2
    assert server.verify_mode == ssl.CERT_REQUIRED
    assert client.check_hostname
    with pytest.raises(PkiError, match="cannot load TLS files"):
        server_context(cert, ca_dir / "missing.key", ca_dir / "ca.pem")
