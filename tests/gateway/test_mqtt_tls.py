"""The TLS contexts of security.pki against a real broker (Mosquitto).

Mutual TLS, and TLS with a password file (the daemon's own MQTT session).
"""

import asyncio
import contextlib
import os
import random
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest
from pydantic import SecretStr

from devices.agent.session import MqttSession, tls_context
from devices.agent.settings import BrokerSettings, BrokerTlsSettings
from security.pki import CertificateRole, client_context, init_ca, issue
from tests.conftest import free_port, missing_part
from tests.fakes import FakeClock

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def _mosquitto(binary: str, config: Path) -> AsyncIterator[None]:
    """Mosquitto with ``config``, from the moment it says it runs until the block ends."""
    process = await asyncio.create_subprocess_exec(
        binary, "-c", str(config), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    assert process.stderr is not None
    try:
        while b"running" not in (line := await asyncio.wait_for(process.stderr.readline(), 10)):
            if not line:
                pytest.fail("mosquitto exited at start", pytrace=False)
        yield
    finally:
        process.terminate()
        await process.wait()


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[tuple[int, Path]]:
    """Mosquitto on a free loopback port requiring client certificates from a branch CA."""
    binary = shutil.which("mosquitto", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if binary is None:
        missing_part("Mosquitto broker: apt-get install mosquitto")
    pki = tmp_path / "pki"
    now = FakeClock().now()
    init_ca(pki, "T-652300-01", now)
    issue(pki, "broker", CertificateRole.SERVER, now)
    issue(pki, "agent-01", CertificateRole.CLIENT, now)
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(
        f"user root\nlistener {port} 127.0.0.1\nallow_anonymous true\n"
        f"cafile {pki / 'ca.pem'}\ncertfile {pki / 'broker.pem'}\nkeyfile {pki / 'broker.key'}\n"
        "require_certificate true\ntls_version tlsv1.2\n",
        encoding="utf-8",
    )
    async with _mosquitto(binary, config):
        yield port, pki


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


@pytest.fixture
async def password_broker(tmp_path: Path) -> AsyncIterator[tuple[int, Path]]:
    """Mosquitto over TLS that takes only the users of its password file."""
    binary = shutil.which("mosquitto", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    passwd = shutil.which("mosquitto_passwd", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if binary is None or passwd is None:
        missing_part("Mosquitto broker and mosquitto_passwd: apt-get install mosquitto")
    pki = tmp_path / "pki"
    now = FakeClock().now()
    init_ca(pki, "T-652300-01", now)
    issue(pki, "broker", CertificateRole.SERVER, now)
    users = tmp_path / "passwd"
    made = await asyncio.create_subprocess_exec(
        passwd, "-c", "-b", str(users), "branchd", "s3cret-telemetry"
    )
    assert await made.wait() == 0
    users.chmod(0o600)
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(
        f"user root\nper_listener_settings true\nlistener {port} 127.0.0.1\n"
        f"allow_anonymous false\npassword_file {users}\n"
        f"cafile {pki / 'ca.pem'}\ncertfile {pki / 'broker.pem'}\nkeyfile {pki / 'broker.key'}\n"
        "tls_version tlsv1.2\n",
        encoding="utf-8",
    )
    async with _mosquitto(binary, config):
        yield port, pki


def _settings(port: int, pki: Path, password: str | None) -> BrokerSettings:
    """The daemon's broker settings: TLS against the branch CA, a user and password."""
    return BrokerSettings(
        host="localhost",
        port=port,
        tls=BrokerTlsSettings(ca=pki / "ca.pem"),
        username="branchd" if password is not None else None,
        password=SecretStr(password) if password is not None else None,
        timeout=5,
        protocol="3.1.1",
    )


async def test_telemetry_session_with_password_over_tls(
    password_broker: tuple[int, Path],
) -> None:
    """The daemon's MQTT session authenticates with its user and password over TLS."""
    port, pki = password_broker
    received: list[bytes] = []
    subscribed = asyncio.Event()

    async def on_connect() -> None:
        await session.subscribe("sscard/v1/650000/T-652300-01/#")
        subscribed.set()

    async def on_message(message: aiomqtt.Message) -> None:
        received.append(bytes(message.payload))

    session = MqttSession(
        _settings(port, pki, "s3cret-telemetry"),
        identifier="branchd-T-652300-01",
        clock=FakeClock(),
        rng=random.Random(1),
        on_connect=on_connect,
        on_message=on_message,
    )
    task = asyncio.create_task(session.run())
    try:
        await asyncio.wait_for(subscribed.wait(), 10)
        await session.publish("sscard/v1/650000/T-652300-01/state", b"online")
        for _ in range(200):
            if received:
                break
            await asyncio.sleep(0.02)  # the broker's round trip, not a timer
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert received == [b"online"]


@pytest.mark.parametrize("password", [None, "wrong-password"])
async def test_broker_refuses_anonymous_and_wrong_passwords(
    password_broker: tuple[int, Path], password: str | None
) -> None:
    """Without the user's password the broker refuses the connection."""
    port, pki = password_broker
    settings = _settings(port, pki, password)
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(
            "localhost",
            port,
            tls_context=tls_context(settings),
            username=settings.username,
            password=password,
            timeout=5,
        ):
            pass
