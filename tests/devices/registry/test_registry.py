"""Device registry: states, levels, counters, publishing, and retained telemetry on Mosquitto."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from typing import TYPE_CHECKING, Any

import aiomqtt
import pytest

from devices.encoder import CardAbsentError, ReaderRemoved, ServiceLost
from devices.printer import PrinterConnectionError, PrinterJamError
from devices.registry import DeviceRegistry, MqttPublisher
from protocols.mqtt import (
    BranchTopics,
    DeviceKind,
    DeviceState,
    DeviceStatus,
    FeederLevel,
    Presence,
    PresenceState,
)
from protocols.printer.commands import CardPosition, PrinterStatus
from protocols.printer.frames import ErrorCode
from tests.devices.agent.conftest import next_message
from tests.fakes import FakeClock

if TYPE_CHECKING:
    from tests.devices.agent.conftest import Mosquitto, TcpProxy
    from tests.devices.registry.conftest import RecordingPublisher

TOPICS = BranchTopics("650000", "T-652300-01")


READY = PrinterStatus(
    feeder_loaded=True,
    feeder_near_empty=False,
    cover_open=False,
    card_at_output=False,
    reject_box_full=False,
    card_position=CardPosition.NONE,
    ribbon_type="YMCKO",
    ribbon_remaining=200,
)


def status(**changes: Any) -> PrinterStatus:  # noqa: ANN401 - PrinterStatus fields
    """A ready printer status with some fields changed."""
    return dataclasses.replace(READY, **changes)


def make_registry(publisher: RecordingPublisher) -> DeviceRegistry:
    """A registry with one printer and one encoder."""
    registry = DeviceRegistry(publisher, topic=TOPICS.device_state, clock=FakeClock())
    registry.add("printer-1", DeviceKind.PRINTER)
    registry.add("encoder-1", DeviceKind.ENCODER)
    return registry


def last(publisher: RecordingPublisher, device: str) -> DeviceState:
    """The last state published for ``device``."""
    topic = TOPICS.device_state(device)
    payload = next(p for t, p, _ in reversed(publisher.messages) if t == topic)
    return DeviceState.from_bytes(payload)


async def test_printer_life(publisher: RecordingPublisher) -> None:
    """Connected, busy, jam, cleared, levels, lost: each change is published, retained."""
    registry = make_registry(publisher)
    hooks = registry.printer_hooks("printer-1")
    hooks["on_connected"]()
    assert registry.state("printer-1").state is DeviceStatus.ONLINE
    async with registry.activity("printer-1", "cards_inserted"):
        assert registry.state("printer-1").state is DeviceStatus.BUSY
    with pytest.raises(PrinterJamError):
        async with registry.activity("printer-1"):
            raise PrinterJamError(ErrorCode.MECHANICAL, "Sis")
    state = registry.state("printer-1")
    assert (state.state, state.reason) == (DeviceStatus.ERROR, "printer.jam")
    assert state.counters == {"commands": 1, "cards_inserted": 1, "errors": 1}
    async with registry.activity("printer-1"):
        pass
    assert registry.state("printer-1").state is DeviceStatus.ONLINE
    hooks["on_status"](status(feeder_near_empty=True, ribbon_remaining=7))
    levels = registry.state("printer-1").levels
    assert (levels.feeder, levels.ribbon_remaining) == (FeederLevel.NEAR_EMPTY, 7)
    hooks["on_status"](status(cover_open=True))
    assert registry.state("printer-1").reason == "printer.cover_open"
    hooks["on_connection_lost"](PrinterConnectionError("/dev/ttyUSB0", "EOF"))
    await registry.flush()
    published = last(publisher, "printer-1")
    assert (published.state, published.reason) == (DeviceStatus.OFFLINE, "printer.connection")
    assert all(retain for _, _, retain in publisher.messages)


async def test_encoder_events_and_errors(publisher: RecordingPublisher) -> None:
    """Reader events move an encoder; a card taken away is not an encoder fault."""
    registry = make_registry(publisher)
    listen = registry.encoder_listener("encoder-1", "Virtual PCD 00 00")
    with pytest.raises(CardAbsentError):
        async with registry.activity("encoder-1"):
            raise CardAbsentError("gone", reader="Virtual PCD 00 00")
    assert registry.state("encoder-1").state is DeviceStatus.ONLINE
    listen(ReaderRemoved("another reader"))
    assert registry.state("encoder-1").state is DeviceStatus.ONLINE
    listen(ServiceLost())
    assert registry.state("encoder-1").reason == "encoder.service_unavailable"


async def test_unsent_states_wait_for_republish(publisher: RecordingPublisher) -> None:
    """A state that cannot be published stays queued; a reconnect republishes everything."""
    registry = make_registry(publisher)
    publisher.down = True
    registry.set_status("printer-1", DeviceStatus.ERROR, "id 11010519491231002X jammed")
    await registry.flush()
    assert not publisher.messages
    publisher.down = False
    registry.republish_all()
    await registry.flush()
    assert {t for t, _, _ in publisher.messages} == {
        TOPICS.device_state("printer-1"),
        TOPICS.device_state("encoder-1"),
    }
    reason = last(publisher, "printer-1").reason
    assert reason is not None
    assert "11010519491231002X" not in reason


@pytest.mark.integration
async def test_states_are_retained_on_the_broker(broker: Mosquitto, proxy: TcpProxy) -> None:
    """States and the daemon's presence are retained; the Will marks the daemon offline."""
    clock = FakeClock(autojump=False)
    mqtt = MqttPublisher(
        broker.settings(proxy.port),
        presence_topic=TOPICS.daemon_state(),
        identifier="daemon-01",
        clock=clock,
        rng=random.Random(1),
    )
    registry = DeviceRegistry(mqtt, topic=TOPICS.device_state, clock=clock)
    registry.add("printer-1", DeviceKind.PRINTER)
    mqtt_task = asyncio.create_task(mqtt.run(), name="publisher")
    writer = asyncio.create_task(registry.run(), name="registry")
    try:
        await asyncio.wait_for(mqtt.session.connected.wait(), 10)
        registry.republish_all()
        registry.set_status("printer-1", DeviceStatus.ONLINE)
        registry.printer_status("printer-1", status(feeder_loaded=False))
        async with aiomqtt.Client("127.0.0.1", broker.port) as observer:
            await observer.subscribe(TOPICS.all_device_states(), qos=1)
            await observer.subscribe(TOPICS.daemon_state(), qos=1)
            seen: dict[str, bytes] = {}
            async with asyncio.timeout(10):
                async for message in observer.messages:
                    seen[message.topic.value] = message.payload
                    state = seen.get(TOPICS.device_state("printer-1"))
                    done = state and DeviceState.from_bytes(state).state is DeviceStatus.ERROR
                    if done and TOPICS.daemon_state() in seen:
                        break
            device = DeviceState.from_bytes(seen[TOPICS.device_state("printer-1")])
            assert device.reason == "printer.feeder_empty"
            assert device.levels.feeder is FeederLevel.EMPTY
            presence = PresenceState.from_bytes(seen[TOPICS.daemon_state()])
            assert presence.state is Presence.ONLINE
            proxy.cut()
            will = await next_message(observer, TOPICS.daemon_state())
            assert PresenceState.from_bytes(will.payload).reason == "connection_lost"
    finally:
        writer.cancel()
        mqtt_task.cancel()
        await asyncio.gather(writer, mqtt_task, return_exceptions=True)
