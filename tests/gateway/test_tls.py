import asyncio
import os
import signal
import ssl
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from security.pki import CertificateRole, client_context, init_ca, issue, server_context
from tests.fakes import FakeClock
from tests.gateway.test_daemon import start_serving

pytestmark = pytest.mark.integration


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """A branch CA with a daemon certificate and a teller terminal certificate."""
    clock = FakeClock()
    directory = tmp_path / "pki"
    init_ca(directory, "T-652300-01", clock.now())
    issue(directory, "branchd", CertificateRole.PEER, clock.now())
    issue(directory, "teller-01", CertificateRole.CLIENT, clock.now())
    return directory


def tls_settings(pki: Path) -> dict[str, str]:
    """The [server.tls] table for the daemon's certificate."""
    return {
        "cert": str(pki / "branchd.pem"),
        "key": str(pki / "branchd.key"),
        "ca": str(pki / "ca.pem"),
    }


async def test_mutual_tls_on_loopback(database_url: str, tmp_path: Path, pki: Path) -> None:
    """A teller with a branch certificate is served over TLS; one without is refused."""
    clock = FakeClock(autojump=False)
    task, daemon = await start_serving(database_url, tmp_path, clock, tls=tls_settings(pki))
    url = daemon.urls[0].replace("127.0.0.1", "localhost")
    assert url.startswith("https://")
    teller = client_context(pki / "teller-01.pem", pki / "teller-01.key", pki / "ca.pem")
    anonymous = client_context(None, None, pki / "ca.pem")
    try:
        async with aiohttp.ClientSession() as http:
            response = await http.get(f"{url}/readyz", ssl=teller)
            assert response.status == 200
            cert = (await response.json())["checks"]["certificates"][str(pki / "branchd.pem")]
            assert cert["ok"] is True
            assert cert["expires_soon"] is False
            with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
                await (await http.get(f"{url}/healthz", ssl=anonymous)).read()
    finally:
        os.kill(os.getpid(), signal.SIGTERM)
        assert await asyncio.wait_for(task, 20) == 0


async def test_expiring_certificate_shows_in_readyz(
    database_url: str, tmp_path: Path, pki: Path
) -> None:
    """A daemon certificate expiring within 30 days stays ready but is flagged with its date."""
    clock = FakeClock(autojump=False)
    issue(pki, "branchd", CertificateRole.PEER, clock.now() - timedelta(days=800))  # 25 days left
    task, daemon = await start_serving(database_url, tmp_path, clock, tls=tls_settings(pki))
    teller = client_context(pki / "teller-01.pem", pki / "teller-01.key", pki / "ca.pem")
    try:
        async with aiohttp.ClientSession() as http:
            url = daemon.urls[0].replace("127.0.0.1", "localhost")
            response = await http.get(f"{url}/readyz", ssl=teller)
            assert response.status == 200
            cert = (await response.json())["checks"]["certificates"][str(pki / "branchd.pem")]
    finally:
        os.kill(os.getpid(), signal.SIGTERM)
        assert await asyncio.wait_for(task, 20) == 0
    assert cert["expires_soon"] is True
    assert 24 < cert["days_left"] < 26


async def test_tls12_offers_aead_suites_only(pki: Path) -> None:
    """A TLS 1.2 client that offers only CBC suites is refused; AES-GCM is taken."""
    server = server_context(pki / "branchd.pem", pki / "branchd.key", pki / "ca.pem")
    tls12 = [c["name"] for c in server.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12
    assert all("GCM" in name or "CHACHA20" in name for name in tls12), tls12
    assert all(name.startswith("ECDHE-") for name in tls12), tls12

    async def answer(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"ok")
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server)
    port = listener.sockets[0].getsockname()[1]

    def teller(ciphers: str) -> ssl.SSLContext:
        context = client_context(pki / "teller-01.pem", pki / "teller-01.key", pki / "ca.pem")
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(ciphers)
        return context

    try:
        async with listener:
            reader, writer = await asyncio.open_connection(
                "localhost",
                port,
                ssl=teller("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"),
            )
            assert await reader.read() == b"ok"
            cipher = writer.get_extra_info("cipher")
            assert cipher is not None
            assert "GCM" in cipher[0]
            writer.close()
            cbc = teller("ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA")
            with pytest.raises((ssl.SSLError, ConnectionError)):
                await asyncio.open_connection("localhost", port, ssl=cbc)
    finally:
        listener.close()
