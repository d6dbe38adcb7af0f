"""The agent and the daemon's remote client over mutual TLS on a real Mosquitto."""

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from devices.agent.settings import BrokerSettings, BrokerTlsSettings
from security.pki import CertificateRole, init_ca, issue
from tests.conftest import free_port, missing_part
from tests.devices.agent.conftest import AGENT, Tasks, make_agent, make_client, remote_printer
from tests.devices.printer.conftest import DriverFactory
from tests.fakes import FakeClock

if TYPE_CHECKING:
    from devices.printer.driver import PrinterDriver

pytestmark = pytest.mark.integration


@pytest.fixture
async def tls_broker(tmp_path: Path) -> AsyncIterator[tuple[int, Path]]:
    """Mosquitto requiring client certificates from the branch CA; its port and PKI dir."""
    binary = shutil.which("mosquitto", path="/usr/sbin:/usr/bin")
    if binary is None:
        missing_part("Mosquitto broker: apt-get install mosquitto")
    pki = tmp_path / "pki"
    now = FakeClock().now()
    init_ca(pki, "T-652300-01", now)
    issue(pki, "broker", CertificateRole.SERVER, now)
    issue(pki, "agent-01", CertificateRole.CLIENT, now)
    issue(pki, "branchd", CertificateRole.CLIENT, now)
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(
        f"user root\nlistener {port} 127.0.0.1\nallow_anonymous true\n"
        f"cafile {pki / 'ca.pem'}\ncertfile {pki / 'broker.pem'}\nkeyfile {pki / 'broker.key'}\n"
        "require_certificate true\n",
        encoding="utf-8",
    )
    process = await asyncio.create_subprocess_exec(
        binary, "-c", str(config), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    assert process.stderr is not None
    try:
        while b"running" not in await asyncio.wait_for(process.stderr.readline(), 10):
            pass
        yield port, pki
    finally:
        process.terminate()
        await process.wait()


def tls_settings(port: int, pki: Path, name: str) -> BrokerSettings:
    """Broker settings with this party's client certificate."""
    return BrokerSettings(
        host="localhost",
        port=port,
        tls=BrokerTlsSettings(ca=pki / "ca.pem", cert=pki / f"{name}.pem", key=pki / f"{name}.key"),
    )


async def test_printer_through_the_agent_over_mutual_tls(
    tls_broker: tuple[int, Path], make_driver: DriverFactory, tasks: Tasks
) -> None:
    """Agent and client each present a branch certificate; a status command round-trips."""
    port, pki = tls_broker
    driver: PrinterDriver = make_driver()
    await driver.connect()
    agent = make_agent(tls_settings(port, pki, "agent-01"), driver)
    client = make_client(tls_settings(port, pki, "branchd"))
    tasks.start(agent.run, "agent")
    tasks.start(client.run, "client")
    await asyncio.wait_for(client.wait_online(AGENT), 15)
    status = await remote_printer(client).status()
    assert status == await driver.status()
