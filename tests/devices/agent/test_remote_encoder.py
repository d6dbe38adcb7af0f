"""An encoder behind the agent: the card application over Mosquitto, errors typed."""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING

import pytest

from devices.agent import DeviceAgent
from devices.encoder import CardAbsentError, InProcessEncoder, SocialSecurityApplication
from simulators.card import SimulatedCard
from simulators.card.cli import DEMO_MASTER_KEYS, demo_holder, demo_issuer
from tests.devices.agent.conftest import AGENT, TOPICS, make_client
from tests.fakes import FakeClock

if TYPE_CHECKING:
    from pathlib import Path

    from tests.devices.agent.conftest import Mosquitto, Tasks

pytestmark = pytest.mark.integration

READER = "Virtual PCD 00 00"


async def test_card_application_through_the_agent(
    broker: Mosquitto, tasks: Tasks, tmp_path: Path
) -> None:
    """Select and read the card through the agent; a removed card is CardAbsentError."""
    card = SimulatedCard.issue(
        issuer=demo_issuer(3, 1),
        holder=demo_holder(3),
        masters=DEMO_MASTER_KEYS,
        retries=3,
        protocol="T=0",
        path=tmp_path / "card.json",
    )
    local = InProcessEncoder()
    local.insert(READER, card)
    agent = DeviceAgent(
        broker.settings(),
        agent_id=AGENT,
        topics=TOPICS,
        clock=FakeClock(),
        rng=random.Random(2),
        encoders={"encoder-1": (local, READER)},
    )
    client = make_client(broker.settings())
    tasks.start(agent.run, "agent")
    tasks.start(client.run, "client")
    await asyncio.wait_for(client.wait_online(AGENT), 10)
    remote = client.encoder(AGENT, "encoder-1", timeout=5.0)
    channel = await remote.connect(READER)
    assert channel.atr == card.atr
    assert channel.protocol == "T=0"
    application = SocialSecurityApplication(channel)
    await application.select()
    issuer = await application.read_issuer()
    assert issuer == demo_issuer(3, 1)
    local.remove(READER)
    with pytest.raises(CardAbsentError) as info:
        await application.select()
    assert info.value.reader == READER
    await channel.close()
    assert agent.registry.state("encoder-1").counters["apdus"] >= 3
