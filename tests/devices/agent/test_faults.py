"""Broker restart, agent killed, link dropped: typed errors, then recovery."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import aiomqtt
import pytest

from devices.printer import PrinterConnectionError
from protocols.mqtt import Presence, PresenceState
from protocols.printer.commands import CardPosition
from tests.devices.agent.conftest import (
    AGENT,
    TOPICS,
    make_agent,
    make_client,
    next_message,
    remote_printer,
)
from tests.fakes import FakeClock

if TYPE_CHECKING:
    from simulators.printer import PrinterSimulator
    from tests.devices.agent.conftest import Mosquitto, Tasks, TcpProxy
    from tests.devices.printer.conftest import DriverFactory

pytestmark = pytest.mark.integration


async def until_online(
    client_online: asyncio.Future[None] | asyncio.Task[None], clock: FakeClock
) -> None:
    """Advance the fake clock past reconnect delays until the agent is online again."""
    async with asyncio.timeout(20):
        while not client_online.done():
            await clock.advance(5.0)
            await asyncio.wait({client_online}, timeout=0.1)
    await client_online


async def test_broker_restart_is_a_connection_error_then_recovers(
    broker: Mosquitto, make_driver: DriverFactory, tasks: Tasks, sim: PrinterSimulator
) -> None:
    """With the broker down a command is PrinterConnectionError; after restart it works."""
    driver = make_driver()
    await driver.connect()
    clock = FakeClock(autojump=False)
    agent = make_agent(broker.settings(), driver, clock)
    client = make_client(broker.settings(), clock)
    tasks.start(agent.run, "agent")
    tasks.start(client.run, "client")
    await asyncio.wait_for(client.wait_online(AGENT), 10)
    printer = remote_printer(client)
    await broker.stop()
    await asyncio.wait_for(clock.wait_for_sleepers(2), 10)
    assert not printer.connected
    with pytest.raises(PrinterConnectionError) as info:
        await printer.insert_card()
    assert info.value.url == "mqtt://agent-01/printer-1"
    await broker.start()
    await until_online(asyncio.ensure_future(client.wait_online(AGENT)), clock)
    await printer.insert_card()
    assert sim.model.card is CardPosition.CONTACT


async def test_agent_killed_is_a_connection_error_then_recovers(
    broker: Mosquitto, make_driver: DriverFactory, tasks: Tasks, sim: PrinterSimulator
) -> None:
    """A cancelled agent says offline; commands fail typed at once; a new agent serves again."""
    driver = make_driver()
    await driver.connect()
    client = make_client(broker.settings())
    tasks.start(client.run, "client")
    running = tasks.start(make_agent(broker.settings(), driver).run, "agent")
    await asyncio.wait_for(client.wait_online(AGENT), 10)
    printer = remote_printer(client)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    await asyncio.wait_for(client.wait_presence(AGENT, Presence.OFFLINE), 10)
    with pytest.raises(PrinterConnectionError) as info:
        await printer.eject_card()
    assert info.value.reason == "agent offline"
    tasks.start(make_agent(broker.settings(), driver).run, "agent-again")
    await asyncio.wait_for(client.wait_online(AGENT), 10)
    await printer.insert_card()
    assert sim.model.card is CardPosition.CONTACT


async def test_last_will_says_offline_when_the_link_drops(
    broker: Mosquitto, proxy: TcpProxy, make_driver: DriverFactory, tasks: Tasks
) -> None:
    """The agent's link cut without DISCONNECT: the broker publishes its Will, retained."""
    driver = make_driver()
    await driver.connect()
    clock = FakeClock(autojump=False)
    agent = make_agent(broker.settings(proxy.port), driver, clock)
    tasks.start(agent.run, "agent")
    await asyncio.wait_for(agent.session.connected.wait(), 10)
    topic = TOPICS.agent_state(AGENT)
    async with aiomqtt.Client("127.0.0.1", broker.port) as observer:
        await observer.subscribe(topic, qos=1)
        first = PresenceState.from_bytes((await next_message(observer, topic)).payload)
        assert first.state is Presence.ONLINE
        proxy.cut()
        will = await next_message(observer, topic)
    state = PresenceState.from_bytes(will.payload)
    assert state == PresenceState(Presence.OFFLINE, "connection_lost")
    async with aiomqtt.Client("127.0.0.1", broker.port) as late:
        await late.subscribe(topic, qos=1)
        retained = await next_message(late, topic)
    assert retained.retain
    assert PresenceState.from_bytes(retained.payload).state is Presence.OFFLINE
