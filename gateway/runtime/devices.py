"""The branch's devices, assembled from ``[devices]``: drivers, remote clients, registry.

Local printers get a :class:`PrinterDriver`; devices behind a device agent get a
remote printer or encoder through one :class:`RemoteDeviceClient`; every
device is registered in the :class:`DeviceRegistry`, which publishes each state
change as retained MQTT telemetry through the daemon's :class:`MqttPublisher`
(whose Last Will says the daemon is offline). Each long-running part is a
supervised background task of the daemon.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from devices.agent.client import RemoteDeviceClient
from devices.encoder import PcscEncoder
from devices.pinpad import PinPadDriver
from devices.printer.driver import PrinterDriver
from devices.registry import DeviceRegistry
from devices.registry.publisher import MqttPublisher
from protocols.mqtt.state import DeviceKind, DeviceState, DeviceStatus
from protocols.mqtt.topics import BranchTopics

if TYPE_CHECKING:
    import random
    from collections.abc import Awaitable, Callable

    from devices.agent.interfaces import Encoder, Printer
    from devices.clock import Clock
    from devices.encoder.channel import EventListener, ReaderEvent
    from devices.pinpad import PinPadOfflineError
    from devices.registry.settings import DevicesSettings

__all__ = ["BranchDevices"]


class BranchDevices:
    """Everything the daemon runs for its devices."""

    def __init__(
        self,
        settings: DevicesSettings,
        *,
        clock: Clock,
        rng: random.Random,
        replaced: frozenset[str] = frozenset(),
    ) -> None:
        """Build the parts; nothing connects before the tasks run.

        ``replaced`` names encoders the daemon was given another encoder for
        (the demo's in-process readers): they are registered, not driven.
        """
        self._replaced = replaced
        self.settings = settings
        topics = BranchTopics(settings.province, settings.branch)
        self.topics = topics
        self.publisher: MqttPublisher | None = None
        self.remote: RemoteDeviceClient | None = None
        self.printers: dict[str, Printer] = {}
        self.encoders: dict[str, Encoder] = {}
        self._drivers: dict[str, PrinterDriver] = {}
        #: The windows' PIN pads (``[[devices.pinpads]]``), each kept connected by a task.
        self.pinpads: dict[str, PinPadDriver] = {}
        self.pcsc: PcscEncoder | None = None
        broker = settings.broker
        if broker is not None:
            self.publisher = MqttPublisher(
                broker,
                presence_topic=topics.daemon_state(),
                identifier=f"{settings.client_id}-telemetry",
                clock=clock,
                rng=rng,
                # The registry is made just below: bind late.
                on_connected=lambda: self.registry.republish_all(),  # noqa: PLW0108
            )
        self.registry = DeviceRegistry(
            self.publisher or _NoPublisher(), topic=topics.device_state, clock=clock
        )
        needs_remote = any(p.agent for p in settings.printers) or any(
            e.agent for e in settings.encoders
        )
        if needs_remote:
            if broker is None:
                raise ValueError("devices behind an agent need [devices.broker]")
            self.remote = RemoteDeviceClient(
                broker, topics=topics, client_id=settings.client_id, clock=clock, rng=rng
            )
            self.remote.add_listener(self._mirror)
        self._add_printers(settings, clock, rng)
        self._add_encoders(settings, clock, rng)
        self._add_pinpads(settings, clock, rng)

    def _add_printers(self, settings: DevicesSettings, clock: Clock, rng: random.Random) -> None:
        for printer in settings.printers:
            self.registry.add(printer.id, DeviceKind.PRINTER)
            if printer.url is not None:
                driver = PrinterDriver(
                    printer.url,
                    clock=clock,
                    rng=rng,
                    baudrate=printer.baudrate,
                    status_interval=printer.status_interval,
                    **self.registry.printer_hooks(printer.id),
                )
                self._drivers[printer.id] = driver
                self.printers[printer.id] = driver
            elif self.remote is not None and printer.agent is not None:
                self.printers[printer.id] = self.remote.printer(printer.agent, printer.id)

    def _add_encoders(self, settings: DevicesSettings, clock: Clock, rng: random.Random) -> None:
        listeners: list[EventListener] = []

        def fan_out(event: ReaderEvent) -> None:
            for listener in listeners:
                listener(event)

        if any(e.reader and e.id not in self._replaced for e in settings.encoders):
            # One PC/SC client for all local readers; each reader's events update its device.
            self.pcsc = PcscEncoder(clock=clock, rng=rng, listener=fan_out)
        for encoder in settings.encoders:
            self.registry.add(encoder.id, DeviceKind.ENCODER)
            if self.remote is not None and encoder.agent is not None:
                self.encoders[encoder.id] = self.remote.encoder(encoder.agent, encoder.id)
            elif self.pcsc is not None and encoder.reader is not None:
                listeners.append(self.registry.encoder_listener(encoder.id, encoder.reader))
                self.encoders[encoder.id] = self.pcsc

    # -- PIN pads --
    def _add_pinpads(self, settings: DevicesSettings, clock: Clock, rng: random.Random) -> None:
        """A driver per pad; its link state goes to the registry (online / offline)."""
        for pad in settings.pinpads:
            self.registry.add(pad.id, DeviceKind.PINPAD)

            def connected(_info: object, device: str = pad.id) -> None:
                self.registry.set_status(device, DeviceStatus.ONLINE)

            def lost(error: PinPadOfflineError, device: str = pad.id) -> None:
                self.registry.set_status(device, DeviceStatus.OFFLINE, error.code)

            self.pinpads[pad.id] = PinPadDriver.from_settings(
                pad, clock=clock, rng=rng, on_connected=connected, on_connection_lost=lost
            )

    @staticmethod
    def _keep_pad(driver: PinPadDriver) -> Callable[[], Awaitable[None]]:
        """The pad's supervised task: keep it connected; close its link when stopped."""

        async def keep() -> None:
            try:
                await driver.run()
            except asyncio.CancelledError:
                await driver.close()
                raise

        return keep

    # -- end of PIN pads --
    def _mirror(self, _agent: str, device: str, state: DeviceState | None) -> None:
        """Copy a remote device's state into the registry (offline when its agent is)."""
        if device not in self.registry.devices:
            return
        if state is None:
            self.registry.set_status(device, DeviceStatus.OFFLINE, "agent_offline")
        else:
            self.registry.mirror(device, state)

    def tasks(self) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        """The supervised tasks: publisher, registry, remote client, each local printer and pad."""
        found: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("device-registry", self.registry.run)
        ]
        if self.publisher is not None:
            found.append(("telemetry-publisher", self.publisher.run))
        if self.remote is not None:
            found.append(("remote-devices", self.remote.run))
        if self.pcsc is not None:
            found.append(("pcsc", self.pcsc.run))
        found.extend((f"printer-{name}", driver.run) for name, driver in self._drivers.items())
        found.extend((f"pinpad-{name}", self._keep_pad(pad)) for name, pad in self.pinpads.items())
        return found


class _NoPublisher:
    """Without a broker, states are kept for /readyz but published nowhere."""

    async def publish(self, topic: str, payload: bytes, retain: bool) -> None:  # noqa: FBT001
        """Drop the message."""
        del topic, payload, retain
