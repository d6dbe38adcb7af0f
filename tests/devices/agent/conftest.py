"""Agent fixtures: a real Mosquitto, a cuttable TCP proxy, the printer simulator on a pty.

The ``printer`` fixture gives the same printer two ways: the local driver, and
the driver behind an agent, reached over Mosquitto through the remote client.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import pytest

from devices.agent import BrokerSettings, DeviceAgent, RemoteDeviceClient
from protocols.mqtt import BranchTopics
from tests.conftest import free_port, missing_part
from tests.devices.printer.conftest import (  # the printer's fixtures, shared
    TEST_TIMEOUTS,
    DriverFactory,
    make_driver,  # noqa: F401 - a fixture
    pty_available,  # noqa: F401 - a fixture
    sim,  # noqa: F401 - a fixture
    sim_config,  # noqa: F401 - a fixture
)
from tests.fakes import FakeClock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    import aiomqtt

    from devices.agent import Printer, RemotePrinter
    from devices.clock import Clock
    from devices.printer import PrinterDriver

TOPICS = BranchTopics("650000", "T-652300-01")
AGENT = "agent-01"
DEVICE = "printer-1"


@dataclass
class Mosquitto:
    """A Mosquitto broker on a fixed loopback port, stopped and started at will."""

    binary: str
    config: Path
    port: int
    process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start and wait for its "running" line."""
        process = await asyncio.create_subprocess_exec(
            self.binary, "-c", str(self.config), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
        )
        assert process.stderr is not None
        while b"running" not in (line := await asyncio.wait_for(process.stderr.readline(), 10)):
            if not line:
                pytest.fail("mosquitto exited at start", pytrace=False)
        self.process = process

    async def stop(self) -> None:
        """Terminate and reap it."""
        if self.process is None:
            return
        self.process.terminate()
        await self.process.wait()
        self.process = None

    def settings(self, port: int | None = None) -> BrokerSettings:
        """Broker settings for our clients (quick reconnects)."""
        return BrokerSettings(
            host="127.0.0.1",
            port=port or self.port,
            keepalive=5,
            timeout=5.0,
            reconnect_initial=0.1,
            reconnect_max=1.0,
        )


def mosquitto_binary() -> str:
    """The mosquitto executable, or a missing part."""
    binary = shutil.which("mosquitto", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if binary is None:
        missing_part("Mosquitto broker: apt-get install mosquitto")
    return binary


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Mosquitto]:
    """Mosquitto on a free loopback port, anonymous, no persistence."""
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(
        f"user root\nlistener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n",
        encoding="utf-8",
    )
    server = Mosquitto(mosquitto_binary(), config, port)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@dataclass
class TcpProxy:
    """A loopback TCP proxy whose connections the test can cut (a dropped network link)."""

    target: int
    port: int = 0
    server: asyncio.Server | None = None
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def start(self) -> None:
        """Listen on a free port."""
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self.writers += [writer, up_writer]

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    def cut(self) -> None:
        """Abort every connection (no MQTT DISCONNECT reaches the broker)."""
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()

    async def stop(self) -> None:
        """Stop listening and cut everything."""
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def proxy(broker: Mosquitto) -> AsyncIterator[TcpProxy]:
    """A cuttable proxy in front of the broker."""
    relay = TcpProxy(broker.port)
    await relay.start()
    try:
        yield relay
    finally:
        await relay.stop()


#: A cancelled task that has not ended by then never will (a guard, not a wait).
CLOSE_SECONDS: Final = 10


class Tasks:
    """Background tasks of one test, cancelled and awaited at its end."""

    def __init__(self) -> None:
        """Start with none."""
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, coro: Callable[[], object], name: str) -> asyncio.Task[None]:
        """Run ``coro()`` as a named task."""
        task: asyncio.Task[None] = asyncio.create_task(coro(), name=name)  # type: ignore[arg-type]
        self.tasks.append(task)
        return task

    async def close(self) -> None:
        """Cancel and await every task; one that will not end fails the test, by name."""
        if not self.tasks:
            return
        for task in self.tasks:
            task.cancel()
        _, pending = await asyncio.wait(self.tasks, timeout=CLOSE_SECONDS)
        assert not pending, (
            f"not ended {CLOSE_SECONDS} s after cancel: {sorted(t.get_name() for t in pending)}"
        )


@pytest.fixture
async def tasks() -> AsyncIterator[Tasks]:
    """Background tasks, cancelled at the end of the test."""
    group = Tasks()
    try:
        yield group
    finally:
        await group.close()


def make_agent(
    settings: BrokerSettings, driver: PrinterDriver, clock: Clock | None = None
) -> DeviceAgent:
    """An agent serving ``driver`` as ``DEVICE``."""
    return DeviceAgent(
        settings,
        agent_id=AGENT,
        topics=TOPICS,
        clock=clock or FakeClock(),
        rng=random.Random(3),
        printers={DEVICE: driver},
    )


def make_client(settings: BrokerSettings, clock: Clock | None = None) -> RemoteDeviceClient:
    """The daemon's remote device client."""
    return RemoteDeviceClient(
        settings,
        topics=TOPICS,
        client_id="daemon-01",
        clock=clock or FakeClock(),
        rng=random.Random(5),
    )


def remote_printer(client: RemoteDeviceClient) -> RemotePrinter:
    """The remote printer with the test timeouts and a short broker margin."""
    return client.printer(AGENT, DEVICE, timeouts=TEST_TIMEOUTS, margin=2.0)


@pytest.fixture(params=["local", "remote"])
async def printer(
    request: pytest.FixtureRequest,
    make_driver: DriverFactory,  # noqa: F811 - the fixture, requested by name
    tasks: Tasks,
    broker: Mosquitto,
) -> AsyncIterator[Printer]:
    """A printer: the local driver on the pty, or the same driver behind an agent over MQTT.

    The broker runs for both, so the two variants differ only in the path.
    """
    driver = make_driver()
    await driver.connect()
    if request.param == "local":
        yield driver
        return
    settings = broker.settings()
    agent = make_agent(settings, driver)
    client = make_client(settings)
    tasks.start(agent.run, "agent")
    tasks.start(client.run, "client")
    await asyncio.wait_for(client.wait_online(AGENT), 10)
    yield remote_printer(client)


async def next_message(client: aiomqtt.Client, topic: str) -> aiomqtt.Message:
    """The next message on ``topic`` (retained ones first), waiting at most 10 s."""
    async with asyncio.timeout(10):
        async for message in client.messages:
            if message.topic.matches(topic):
                return message
    msg = "message iteration ended"
    raise AssertionError(msg)
