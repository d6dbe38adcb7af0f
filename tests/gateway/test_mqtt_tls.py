"""The TLS contexts of security.pki against a real broker (Mosquitto) with mutual TLS."""

import asyncio
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from security.pki import Role, client_context, init_ca, issue
from tests.conftest import free_port, missing_part
from tests.fakes import FakeClock

pytestmark = pytest.mark.integration


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[tuple[int, Path]]:
    """Mosquitto on a free loopback port requiring client certificates from a branch CA."""
    binary = shutil.which("mosquitto", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if binary is None:
        missing_part("Mosquitto broker: apt-get install mosquitto")
    pki = tmp_path / "pki"
    now = FakeClock().now()
    init_ca(pki, "T-652300-01", now)
    issue(pki, "broker", Role.SERVER, now)
    issue(pki, "agent-01", Role.CLIENT, now)
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(
        f"user root\nlistener {port} 127.0.0.1\nallow_anonymous true\n"
        f"cafile {pki / 'ca.pem'}\ncertfile {pki / 'broker.pem'}\nkeyfile {pki / 'broker.key'}\n"
        "require_certificate true\ntls_version tlsv1.2\n",
        encoding="utf-8",
    )
    process = await asyncio.create_subprocess_exec(
        binary, "-c", str(config), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    assert process.stderr is not None
    try:
        while b"running" not in (line := await asyncio.wait_for(process.stderr.readline(), 10)):
            if not line:
                pytest.fail("mosquitto exited at start", pytrace=False)
        yield port, pki
    finally:
        process.terminate()
        await process.wait()


async def test_agent_with_branch_certificate_round_trips(broker: tuple[int, Path]) -> None:
    """A client with a branch certificate publishes and receives over mutual TLS."""
    port, pki = broker
    tls = client_context(pki / "agent-01.pem", pki / "agent-01.key", pki / "ca.pem")
    async with aiomqtt.Client("localhost", port, tls_context=tls, identifier="agent-01") as client:
        await client.subscribe("branch/T-652300-01/#", qos=1)
        await client.publish("branch/T-652300-01/state", b"online", qos=1)
        message = await asyncio.wait_for(anext(aiter(client.messages)), 10)
    assert message.payload == b"online"


async def test_client_without_certificate_is_refused(broker: tuple[int, Path]) -> None:
    """Without a client certificate the broker refuses the connection."""
    port, pki = broker
    tls = client_context(None, None, pki / "ca.pem")
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client("localhost", port, tls_context=tls, timeout=5):
            pass
