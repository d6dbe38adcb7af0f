"""The daemon's devices from its configuration: a local printer, telemetry on a real broker."""

import asyncio
import random
from pathlib import Path

import aiomqtt
import pytest

from devices.clock import SystemClock
from gateway.config import parse_config
from gateway.daemon import Daemon
from protocols.mqtt.state import DeviceState, DeviceStatus, Presence, PresenceState
from simulators.printer import PrinterSimulator
from tests.devices.agent.conftest import Mosquitto

pytestmark = pytest.mark.integration

PREFIX = "sscard/v1/650000/T-652300-01"


async def test_printer_state_and_daemon_presence_are_published(
    broker: Mosquitto, sim: PrinterSimulator, tmp_path: Path
) -> None:
    """A configured printer goes online and says so, retained; the daemon's presence too."""
    config = parse_config(
        {
            "data_dir": str(tmp_path),
            "branch": {"id": "T-652300-01", "region": "652300"},
            "server": {"host": "127.0.0.1", "port": 0},
            "devices": {
                "province": "650000",
                "branch": "T-652300-01",
                "broker": {"host": "127.0.0.1", "port": broker.port},
                "printers": [{"id": "printer-1", "url": sim.path, "status_interval": None}],
            },
        }
    )
    daemon = Daemon(config, clock=SystemClock(), rng=random.Random(3))
    await daemon.start(migrate=True)
    try:
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="observer") as observer:
            await observer.subscribe(f"{PREFIX}/#", qos=1)
            seen: dict[str, bytes] = {}
            async with asyncio.timeout(15):
                async for message in observer.messages:
                    seen[str(message.topic)] = bytes(message.payload)
                    printer = seen.get(f"{PREFIX}/devices/printer-1/state")
                    daemon_state = seen.get(f"{PREFIX}/daemon/state")
                    if (
                        printer is not None
                        and DeviceState.from_bytes(printer).state is DeviceStatus.ONLINE
                        and daemon_state is not None
                    ):
                        break
            assert PresenceState.from_bytes(seen[f"{PREFIX}/daemon/state"]).state is Presence.ONLINE
    finally:
        await daemon.stop()
    async with (
        aiomqtt.Client("127.0.0.1", broker.port, identifier="observer-2") as observer,
    ):
        await observer.subscribe(f"{PREFIX}/daemon/state", qos=1)
        async with asyncio.timeout(10):
            message = await anext(aiter(observer.messages))
    assert PresenceState.from_bytes(bytes(message.payload)).state is Presence.OFFLINE


def test_assembly_of_local_and_remote_devices() -> None:
    """Local readers share one PC/SC client; agent devices go through the remote client."""
    from devices.registry.settings import DevicesSettings  # noqa: PLC0415
    from gateway.runtime.devices import BranchDevices  # noqa: PLC0415

    settings = DevicesSettings.model_validate(
        {
            "province": "650000",
            "branch": "T-652300-01",
            "broker": {"host": "127.0.0.1", "port": 1883},
            "printers": [{"id": "printer-2", "agent": "agent-01"}],
            "encoders": [
                {"id": "encoder-1", "reader": "Virtual PCD 00 00"},
                {"id": "encoder-2", "agent": "agent-01"},
            ],
        }
    )
    assembled = BranchDevices(settings, clock=SystemClock(), rng=random.Random(1))
    names = [name for name, _ in assembled.tasks()]
    assert names == ["device-registry", "telemetry-publisher", "remote-devices", "pcsc"]
    assert assembled.encoders["encoder-1"] is assembled.pcsc
    assert set(assembled.printers) == {"printer-2"}
    assert set(assembled.registry.devices) == {"printer-2", "encoder-1", "encoder-2"}


async def test_certificate_expiry_is_published(broker: Mosquitto, tmp_path: Path) -> None:
    """The daemon's certificate expiry goes out as retained telemetry, flagged 30 days ahead."""
    import json  # noqa: PLC0415
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    from security.pki import CertificateRole, init_ca, issue  # noqa: PLC0415

    pki = tmp_path / "pki"
    now = datetime.now(UTC)
    init_ca(pki, "T-652300-01", now)
    issue(pki, "branchd", CertificateRole.PEER, now - timedelta(days=805))  # 20 days left
    config = parse_config(
        {
            "data_dir": str(tmp_path),
            "branch": {"id": "T-652300-01", "region": "652300"},
            "server": {
                "host": "127.0.0.1",
                "port": 0,
                "tls": {
                    "cert": str(pki / "branchd.pem"),
                    "key": str(pki / "branchd.key"),
                    "ca": str(pki / "ca.pem"),
                },
            },
            "devices": {
                "province": "650000",
                "branch": "T-652300-01",
                "broker": {"host": "127.0.0.1", "port": broker.port},
            },
        }
    )
    daemon = Daemon(config, clock=SystemClock(), rng=random.Random(4))
    await daemon.start(migrate=True)
    try:
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="observer") as observer:
            await observer.subscribe(f"{PREFIX}/daemon/certificates", qos=1)
            async with asyncio.timeout(15):
                message = await anext(aiter(observer.messages))
    finally:
        await daemon.stop()
    report = json.loads(bytes(message.payload))
    assert report["v"] == 1
    [certificate] = report["certificates"]
    assert certificate["expires_soon"] is True
    assert 19 < certificate["days_left"] < 21
    assert "CN=branchd" in certificate["subject"]
