"""Device registry: every device's state, levels and counters, published on change.

Drivers and the agent report through plain callbacks (``printer_hooks``,
``encoder_listener``, :meth:`DeviceRegistry.activity`); each change updates the
device's :class:`~protocols.mqtt.state.DeviceState` and queues it for the
publisher. One writer task (:meth:`DeviceRegistry.run`) drains the queue, the
newest state per device only, as retained messages. When the publisher has no
session the state stays queued; :meth:`DeviceRegistry.republish_all` (called on
every reconnect) queues every device again, so the broker always ends with the
current states.

States: ``online`` (usable), ``busy`` (a command runs), ``error`` (the device
reported an error, or its status says it cannot issue; ``reason`` is the error
code) and ``offline`` (no link; ``reason`` says why). Reasons are masked with
:func:`security.redaction.mask_personal_numbers`.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from devices.encoder.channel import (
    CardInserted,
    CardRemoved,
    ReaderAdded,
    ReaderRemoved,
    ServiceLost,
    ServiceRestored,
)
from devices.encoder.errors import CardAbsentError, EncoderConnectionError, EncoderError
from devices.printer.errors import PrinterConnectionError, PrinterError
from devices.registry.errors import PublishError, UnknownDeviceError
from protocols.mqtt.state import (
    DeviceKind,
    DeviceState,
    DeviceStatus,
    FeederLevel,
    Levels,
)
from security.redaction import mask_personal_numbers

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from devices.clock import Clock
    from devices.encoder.channel import EventListener, ReaderEvent
    from protocols.printer.commands import PrinterStatus

__all__ = ["DeviceRegistry", "Publisher", "iso_now", "levels_of", "status_problem"]

log = structlog.get_logger(__name__)


class Publisher(Protocol):
    """Where retained telemetry goes (an MQTT session, or a fake in unit tests)."""

    async def publish(self, topic: str, payload: bytes, retain: bool) -> None:  # noqa: FBT001 - the interface's shape
        """Publish one message.

        Raises:
            PublishError: It could not be delivered now.
        """
        ...


def iso_now(clock: Clock) -> str:
    """The clock's wall time as ISO 8601 UTC with milliseconds."""
    return clock.now().isoformat(timespec="milliseconds").replace("+00:00", "Z")


def levels_of(status: PrinterStatus) -> Levels:
    """The consumable levels a printer status shows."""
    if not status.feeder_loaded:
        feeder = FeederLevel.EMPTY
    elif status.feeder_near_empty:
        feeder = FeederLevel.NEAR_EMPTY
    else:
        feeder = FeederLevel.LOADED
    return Levels(
        feeder=feeder,
        ribbon_type=status.ribbon_type,
        ribbon_remaining=status.ribbon_remaining,
        reject_box_full=status.reject_box_full,
        cover_open=status.cover_open,
    )


def status_problem(status: PrinterStatus) -> str | None:
    """The error code a printer status stands for, or ``None`` when it can issue."""
    if status.cover_open:
        return "printer.cover_open"
    if not status.feeder_loaded:
        return "printer.feeder_empty"
    if not status.ribbon_remaining:
        return "printer.ribbon"
    if status.reject_box_full:
        return "printer.reject_box_full"
    return None


@dataclass(slots=True)
class _Device:
    device: str
    kind: DeviceKind
    status: DeviceStatus
    reason: str | None
    since: str
    levels: Levels = field(default_factory=Levels)
    counters: dict[str, int] = field(default_factory=dict)

    def snapshot(self) -> DeviceState:
        return DeviceState(
            self.device,
            self.kind,
            self.status,
            self.reason,
            self.since,
            self.levels,
            dict(self.counters),
        )


class DeviceRegistry:
    """The devices of one daemon or agent (see the module docstring)."""

    def __init__(self, publisher: Publisher, *, topic: Callable[[str], str], clock: Clock) -> None:
        """Start empty.

        Args:
            publisher: Where states go.
            topic: The state topic of a device identifier.
            clock: Timestamps of state changes.
        """
        self._publisher = publisher
        self._topic = topic
        self._clock = clock
        self._devices: dict[str, _Device] = {}
        self._pending: dict[str, DeviceState] = {}
        self._dirty = asyncio.Event()
        self.published = 0

    # ------------------------------------------------------------ reading

    @property
    def devices(self) -> list[str]:
        """Registered device identifiers, in registration order."""
        return list(self._devices)

    def state(self, device: str) -> DeviceState:
        """The current state of ``device``.

        Raises:
            UnknownDeviceError: It is not registered.
        """
        return self._get(device).snapshot()

    def _get(self, device: str) -> _Device:
        try:
            return self._devices[device]
        except KeyError:
            raise UnknownDeviceError(device) from None

    # ------------------------------------------------------------ changing

    def _now(self) -> str:
        return iso_now(self._clock)

    def add(
        self,
        device: str,
        kind: DeviceKind,
        *,
        status: DeviceStatus = DeviceStatus.OFFLINE,
        reason: str | None = "not_connected",
    ) -> None:
        """Register a device (offline until its driver says otherwise)."""
        self._devices[device] = _Device(device, kind, status, reason, self._now())
        self._queue(device)

    def set_status(self, device: str, status: DeviceStatus, reason: str | None = None) -> None:
        """Move ``device`` to ``status`` (``reason`` for error and offline)."""
        entry = self._get(device)
        reason = None if reason is None else mask_personal_numbers(reason)[:200]
        if entry.status is status and entry.reason == reason:
            return
        log.info("device_state", device=device, state=status.value, reason=reason)
        entry.status, entry.reason, entry.since = status, reason, self._now()
        self._queue(device)

    def set_levels(self, device: str, levels: Levels) -> None:
        """Record new consumable levels."""
        entry = self._get(device)
        if entry.levels != levels:
            entry.levels = levels
            self._queue(device)

    def count(self, device: str, counter: str, amount: int = 1) -> None:
        """Add to one counter of ``device``."""
        entry = self._get(device)
        entry.counters[counter] = entry.counters.get(counter, 0) + amount
        self._queue(device)

    def printer_status(self, device: str, status: PrinterStatus) -> None:
        """Apply a printer status: levels, and error while it cannot issue."""
        self.set_levels(device, levels_of(status))
        entry = self._get(device)
        if entry.status is DeviceStatus.BUSY:
            return
        problem = status_problem(status)
        if problem is not None:
            self.set_status(device, DeviceStatus.ERROR, problem)
        elif entry.status is DeviceStatus.ERROR:
            self.set_status(device, DeviceStatus.ONLINE)

    def mirror(self, device: str, state: DeviceState) -> None:
        """Take over a state reported by the device's agent (status, levels, counters)."""
        entry = self._get(device)
        entry.levels = state.levels
        entry.counters = dict(state.counters)
        self._queue(device)
        self.set_status(device, state.state, state.reason)

    @contextlib.asynccontextmanager
    async def activity(self, device: str, counter: str | None = None) -> AsyncIterator[None]:
        """Mark ``device`` busy around one command and record how it ended.

        Success counts ``commands`` (and ``counter``) and leaves the device
        online; a connection error leaves it offline, a device error in error
        (reason: the error's code). The exception passes through.
        """
        entry = self._get(device)
        if entry.status is not DeviceStatus.OFFLINE:
            self.set_status(device, DeviceStatus.BUSY)
        try:
            yield
        except (PrinterError, EncoderError) as exc:
            self.count(device, "errors")
            self._after_error(device, exc)
            raise
        except BaseException:
            self.count(device, "errors")
            if entry.status is DeviceStatus.BUSY:
                self.set_status(device, DeviceStatus.ONLINE)
            raise
        self.count(device, "commands")
        if counter is not None:
            self.count(device, counter)
        if entry.status in {DeviceStatus.BUSY, DeviceStatus.ERROR, DeviceStatus.OFFLINE}:
            self.set_status(device, DeviceStatus.ONLINE)

    def _after_error(self, device: str, exc: PrinterError | EncoderError) -> None:
        if isinstance(exc, CardAbsentError):
            self.set_status(device, DeviceStatus.ONLINE)
        elif isinstance(exc, PrinterConnectionError | EncoderConnectionError):
            self.set_status(device, DeviceStatus.OFFLINE, exc.code)
        else:
            self.set_status(device, DeviceStatus.ERROR, exc.code)

    # ------------------------------------------------------------ driver hooks

    def printer_hooks(self, device: str) -> dict[str, Any]:
        """Keyword arguments for :class:`~devices.printer.PrinterDriver` that report here."""

        def lost(error: PrinterConnectionError) -> None:
            self.set_status(device, DeviceStatus.OFFLINE, error.code)

        return {
            "on_connected": lambda: self.set_status(device, DeviceStatus.ONLINE),
            "on_connection_lost": lost,
            "on_status": lambda status: self.printer_status(device, status),
        }

    def encoder_listener(self, device: str, reader: str) -> EventListener:
        """A reader-event listener that keeps ``device`` (the reader ``reader``) current."""

        def listen(event: ReaderEvent) -> None:
            if isinstance(event, ServiceLost):
                self.set_status(device, DeviceStatus.OFFLINE, "encoder.service_unavailable")
            elif isinstance(event, ServiceRestored) or getattr(event, "reader", None) != reader:
                return
            elif isinstance(event, ReaderAdded | CardInserted | CardRemoved):
                if isinstance(event, CardInserted):
                    self.count(device, "cards_seen")
                if self._get(device).status is DeviceStatus.OFFLINE:
                    self.set_status(device, DeviceStatus.ONLINE)
            elif isinstance(event, ReaderRemoved):
                self.set_status(device, DeviceStatus.OFFLINE, "encoder.reader_unavailable")

        return listen

    # ------------------------------------------------------------ publishing

    def _queue(self, device: str) -> None:
        self._pending[device] = self._devices[device].snapshot()
        self._dirty.set()

    def republish_all(self) -> None:
        """Queue every device's state again (after a reconnect)."""
        for device in self._devices:
            self._queue(device)

    async def flush(self) -> None:
        """Publish what is queued now; states that fail stay queued."""
        while self._pending:
            device = next(iter(self._pending))
            state = self._pending.pop(device)
            try:
                await self._publisher.publish(self._topic(device), state.to_bytes(), retain=True)
            except PublishError as exc:
                self._pending.setdefault(device, state)
                log.info("device_state_unsent", device=device, reason=exc.reason)
                return
            self.published += 1

    async def run(self) -> None:
        """Publish queued states until cancelled (one writer task)."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await self.flush()
