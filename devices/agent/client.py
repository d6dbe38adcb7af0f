"""The daemon's side of the device agent: remote printers and encoders.

:class:`RemoteDeviceClient` keeps one broker session, subscribes to its own
response topic and to every agent's presence and device states, and matches
responses to requests by correlation data. :class:`RemotePrinter` satisfies
:class:`~devices.agent.interfaces.Printer` and :class:`RemoteEncoder`
:class:`~devices.agent.interfaces.Encoder` (its channels are
:class:`~devices.encoder.CardChannel` objects), with the same errors as the
local drivers:

- the agent's driver error comes back as the same type with the same attributes;
- no broker session, a session lost while waiting, or the agent going offline
  (its Will, or its clean stop) is the device's connection error
  (:class:`~devices.printer.PrinterConnectionError`,
  :class:`~devices.encoder.EncoderConnectionError`), at once;
- no answer in time is the device's timeout error.

Each remote device runs one command at a time (a lock, like the local driver).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

import structlog

from devices.agent.errors import (
    AgentError,
    AgentTimeoutError,
    AgentUnreachableError,
    BrokerConnectionError,
)
from devices.agent.session import MqttSession, publish_properties
from devices.encoder.channel import exchange
from devices.encoder.errors import (
    CardAbsentError,
    EncoderConnectionError,
    EncoderError,
    EncoderProtocolError,
    EncoderTimeoutError,
    ReaderUnavailableError,
    ServiceUnavailableError,
)
from devices.printer.errors import (
    PrinterBadReplyError,
    PrinterConnectionError,
    PrinterError,
    PrinterTimeoutError,
    device_error,
)
from protocols.mqtt import rpc
from protocols.mqtt.errors import MqttProtocolError
from protocols.mqtt.rpc import RpcError, RpcRequest, RpcResponse
from protocols.mqtt.state import DeviceState, DeviceStatus, Presence, PresenceState
from protocols.mqtt.topics import BranchTopics, parse_topic
from protocols.printer import commands
from protocols.printer.commands import EncodingStation, Timeouts
from protocols.printer.frames import ErrorCode

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Mapping, Sequence

    import aiomqtt

    from devices.agent.settings import BrokerSettings
    from devices.clock import Clock
    from devices.encoder.channel import TransmissionProtocol
    from protocols.apdu import CommandApdu, ResponseApdu
    from protocols.printer.commands import PrinterStatus
    from protocols.printer.frames import Depth, Panel, Reply, Request

__all__ = ["RemoteChannel", "RemoteDeviceClient", "RemoteEncoder", "RemotePrinter"]

log = structlog.get_logger(__name__)

#: Time allowed on top of the device's own timeout for the trip through the broker.
DEFAULT_MARGIN: Final = 5.0


class RemoteDeviceClient:
    """One broker session for every remote device of the daemon."""

    def __init__(
        self,
        settings: BrokerSettings,
        *,
        topics: BranchTopics,
        client_id: str,
        clock: Clock,
        rng: random.Random,
    ) -> None:
        """Configure; :meth:`run` connects.

        Args:
            settings: The broker.
            topics: The branch's topic tree.
            client_id: MQTT client identifier and response topic segment.
            clock: Reconnect waits.
            rng: Reconnect jitter and correlation data.
        """
        self._topics = topics
        self._rng = rng
        self._response_topic = topics.client_response(client_id)
        self._pending: dict[bytes, tuple[str, asyncio.Future[bytes]]] = {}
        self._presence: dict[str, Presence] = {}
        self._presence_events: dict[str, asyncio.Event] = {}
        self._device_states: dict[tuple[str, str], DeviceState] = {}
        self._listeners: list[Callable[[str, str, DeviceState | None], None]] = []
        self.session = MqttSession(
            settings,
            identifier=client_id,
            clock=clock,
            rng=rng,
            on_connect=self._on_connect,
            on_message=self._on_message,
            on_disconnect=self._on_disconnect,
        )

    # ------------------------------------------------------------ public

    async def run(self) -> None:
        """Keep the session until cancelled."""
        await self.session.run()

    def printer(
        self,
        agent: str,
        device: str,
        *,
        timeouts: Timeouts | None = None,
        margin: float = DEFAULT_MARGIN,
    ) -> RemotePrinter:
        """A printer of ``agent``."""
        return RemotePrinter(self, agent, device, timeouts=timeouts, margin=margin)

    def encoder(
        self, agent: str, device: str, *, timeout: float = 10.0 + DEFAULT_MARGIN
    ) -> RemoteEncoder:
        """An encoder (one reader) of ``agent``."""
        return RemoteEncoder(self, agent, device, timeout=timeout)

    def presence(self, agent: str) -> Presence | None:
        """The agent's last known presence (``None`` before any news of it)."""
        return self._presence.get(agent)

    def device_state(self, agent: str, device: str) -> DeviceState | None:
        """The last state the agent published for ``device``."""
        return self._device_states.get((agent, device))

    def add_listener(self, listener: Callable[[str, str, DeviceState | None], None]) -> None:
        """Call ``listener(agent, device, state)`` on every device state news.

        ``state`` is ``None`` when the agent or the broker is out of reach.
        """
        self._listeners.append(listener)

    async def wait_online(self, agent: str) -> None:
        """Wait (on the broker, no timer) until ``agent`` is known to be online."""
        await self.wait_presence(agent, Presence.ONLINE)

    async def wait_presence(self, agent: str, presence: Presence) -> None:
        """Wait (on the broker, no timer) until ``agent`` is known to be ``presence``."""
        while self._presence.get(agent) is not presence:
            event = self._presence_events.setdefault(agent, asyncio.Event())
            event.clear()
            await event.wait()

    async def request(
        self,
        agent: str,
        device: str,
        request: RpcRequest,
        timeout: float,  # noqa: ASYNC109 - the deadline also becomes the message expiry
    ) -> RpcResponse:
        """Send one request and wait for its response.

        Raises:
            AgentUnreachableError: No session, session lost, or the agent is offline.
            AgentTimeoutError: No response within ``timeout`` seconds.
            MqttProtocolError: The response does not decode.
        """
        if not self.session.connected.is_set():
            raise AgentUnreachableError(agent, "broker not connected")
        if self._presence.get(agent) is Presence.OFFLINE:
            raise AgentUnreachableError(agent, "agent offline")
        correlation = self._rng.getrandbits(64).to_bytes(8, "big")
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[correlation] = (agent, future)
        try:
            properties = publish_properties(
                response_topic=self._response_topic, correlation=correlation, expiry=timeout
            )
            try:
                async with asyncio.timeout(timeout):
                    await self.session.publish(
                        self._topics.agent_request(agent, device),
                        request.to_bytes(),
                        properties=properties,
                    )
                    payload = await future
            except TimeoutError:
                raise AgentTimeoutError(agent, timeout) from None
            except BrokerConnectionError as exc:
                raise AgentUnreachableError(agent, exc.reason) from exc
        finally:
            self._pending.pop(correlation, None)
        return RpcResponse.from_bytes(payload)

    # ------------------------------------------------------------ session

    async def _on_connect(self) -> None:
        await self.session.subscribe(self._response_topic)
        await self.session.subscribe(self._topics.all_agent_states())
        await self.session.subscribe(self._topics.all_agent_device_states())

    def _on_disconnect(self) -> None:
        self._fail(None, "broker connection lost")
        self._presence.clear()
        for agent, device in list(self._device_states):
            self._notify(agent, device, None)

    def _fail(self, agent: str | None, reason: str) -> None:
        for owner, future in list(self._pending.values()):
            if (agent is None or owner == agent) and not future.done():
                future.set_exception(AgentUnreachableError(owner, reason))

    def _notify(self, agent: str, device: str, state: DeviceState | None) -> None:
        for listener in self._listeners:
            listener(agent, device, state)

    async def _on_message(self, message: aiomqtt.Message) -> None:
        payload = message.payload if isinstance(message.payload, bytes) else b""
        try:
            parsed = parse_topic(message.topic.value)
            if parsed.kind == "client_response":
                correlation = getattr(message.properties, "CorrelationData", None)
                entry = self._pending.get(bytes(correlation or b""))
                if entry is not None and not entry[1].done():
                    entry[1].set_result(payload)
            elif parsed.kind == "agent_state" and parsed.agent is not None:
                self._on_presence(parsed.agent, payload)
            elif parsed.kind == "agent_device_state" and parsed.agent and parsed.device:
                if not payload:  # a cleared retained message
                    return
                state = DeviceState.from_bytes(payload)
                self._device_states[parsed.agent, parsed.device] = state
                self._notify(parsed.agent, parsed.device, state)
        except MqttProtocolError as exc:
            log.warning("mqtt_message_refused", topic=message.topic.value, error=exc.code)

    def _on_presence(self, agent: str, payload: bytes) -> None:
        presence = PresenceState.from_bytes(payload).state if payload else Presence.OFFLINE
        self._presence[agent] = presence
        log.info("agent_presence", agent=agent, state=presence.value)
        self._presence_events.setdefault(agent, asyncio.Event()).set()
        if presence is Presence.OFFLINE:
            self._fail(agent, "agent offline")
            for owner, device in list(self._device_states):
                if owner == agent:
                    self._notify(agent, device, None)


# ------------------------------------------------------------------ printer


def _printer_error(error: RpcError, label: str) -> PrinterError:
    attrs = error.attrs
    command = str(attrs.get("command", label))
    if error.code == PrinterTimeoutError.code:
        timeout = attrs.get("timeout")
        return PrinterTimeoutError(
            command, float(timeout) if isinstance(timeout, int | float) else 0.0
        )
    if error.code == PrinterConnectionError.code:
        return PrinterConnectionError(str(attrs.get("url", "")), str(attrs.get("reason", "")))
    code = attrs.get("printer_code")
    if isinstance(code, str) and error.code.startswith("printer."):
        return device_error(ErrorCode.of(code), command)
    return PrinterBadReplyError(command)


class RemotePrinter:
    """A printer behind an agent (a :class:`~devices.agent.interfaces.Printer`)."""

    def __init__(
        self,
        client: RemoteDeviceClient,
        agent: str,
        device: str,
        *,
        timeouts: Timeouts | None = None,
        margin: float = DEFAULT_MARGIN,
    ) -> None:
        """Made by :meth:`RemoteDeviceClient.printer`."""
        self._client = client
        self.agent = agent
        self.device = device
        self.url = f"mqtt://{agent}/{device}"
        self._timeouts = timeouts or Timeouts()
        self._margin = margin
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        """Broker session up, agent online, and the agent's printer not offline."""
        state = self._client.device_state(self.agent, self.device)
        return (
            self._client.session.connected.is_set()
            and self._client.presence(self.agent) is Presence.ONLINE
            and (state is None or state.state is not DeviceStatus.OFFLINE)
        )

    async def _call(
        self, op: str, args: Mapping[str, Any], label: str, limit: float
    ) -> Mapping[str, Any]:
        timeout = limit + self._margin
        async with self._lock:
            try:
                response = await self._client.request(
                    self.agent, self.device, RpcRequest(op, args), timeout
                )
            except AgentTimeoutError:
                raise PrinterTimeoutError(label, timeout) from None
            except AgentUnreachableError as exc:
                raise PrinterConnectionError(self.url, exc.reason) from None
            except MqttProtocolError:
                raise PrinterBadReplyError(label) from None
        if response.error is not None:
            raise _printer_error(response.error, label)
        return response.result

    async def command(self, request: Request) -> Reply:
        """Send one command and return its reply."""
        result = await self._call(
            "printer.command",
            rpc.request_to_json(request),
            request.label,
            self._timeouts.for_request(request),
        )
        try:
            return rpc.reply_from_json(result)
        except MqttProtocolError:
            raise PrinterBadReplyError(request.label) from None

    async def status(self) -> PrinterStatus:
        """Read every sensor, the card position and the ribbon."""
        requests = commands.status_requests()
        limit = sum(self._timeouts.for_request(r) for r in requests)
        result = await self._call("printer.status", {}, "status", limit)
        try:
            return rpc.status_from_json(result)
        except MqttProtocolError:
            raise PrinterBadReplyError("status") from None

    async def firmware_version(self) -> str:
        """The printer's firmware version text."""
        request = commands.read_firmware_version()
        result = await self._call(
            "printer.firmware_version", {}, request.label, self._timeouts.for_request(request)
        )
        text = result.get("text")
        if not isinstance(text, str):
            raise PrinterBadReplyError(request.label)
        return text

    async def insert_card(self, station: EncodingStation = EncodingStation.CONTACT) -> None:
        """Take a card from the feeder to a station."""
        request = commands.insert_card(station)
        await self._call(
            "printer.insert_card",
            {"station": station.value},
            request.label,
            self._timeouts.for_request(request),
        )

    async def print_card(self, panels: Sequence[tuple[Panel, Depth, bytes]]) -> None:
        """Print one card (``Ss``, ``Db`` per panel, ``Se``) as one transaction."""
        requests = [
            commands.start_sequence(),
            *(commands.download_panel(p, d, b) for p, d, b in panels),
            commands.end_sequence(),
        ]
        limit = sum(self._timeouts.for_request(r) for r in requests)
        await self._call("printer.print_card", {"panels": rpc.panels_to_json(panels)}, "Ss", limit)

    async def _motion(self, op: str, request: Request) -> None:
        await self._call(op, {}, request.label, self._timeouts.for_request(request))

    async def eject_card(self) -> None:
        """Eject the card to the output."""
        await self._motion("printer.eject_card", commands.eject_card())

    async def reject_card(self) -> None:
        """Move the card to the reject box."""
        await self._motion("printer.reject_card", commands.reject_card())

    async def clear_error(self) -> None:
        """Clear a mechanical error."""
        await self._motion("printer.clear_error", commands.clear_error())


# ------------------------------------------------------------------ encoder

_ENCODER_ERRORS: Final[dict[str, type[EncoderError]]] = {
    cls.code: cls
    for cls in (
        EncoderError,
        EncoderTimeoutError,
        EncoderConnectionError,
        ServiceUnavailableError,
        ReaderUnavailableError,
        CardAbsentError,
        EncoderProtocolError,
    )
}


def _encoder_error(error: RpcError, reader: str) -> EncoderError:
    attrs = error.attrs
    family = _ENCODER_ERRORS.get(error.code, EncoderProtocolError)
    pcsc_code = attrs.get("pcsc_code")
    return family(
        str(attrs.get("message", error.code)),
        reader=str(attrs.get("reader", reader)),
        pcsc_code=pcsc_code if type(pcsc_code) is int else None,
    )


class RemoteEncoder:
    """One reader behind an agent (a :class:`~devices.agent.interfaces.Encoder`)."""

    def __init__(
        self, client: RemoteDeviceClient, agent: str, device: str, *, timeout: float
    ) -> None:
        """Made by :meth:`RemoteDeviceClient.encoder`."""
        self._client = client
        self.agent = agent
        self.device = device
        self.timeout = timeout
        self._lock = asyncio.Lock()

    async def call(self, op: str, args: Mapping[str, Any], reader: str) -> Mapping[str, Any]:
        """Run one operation; errors are the encoder's own."""
        async with self._lock:
            try:
                response = await self._client.request(
                    self.agent, self.device, RpcRequest(op, args), self.timeout
                )
            except AgentTimeoutError:
                msg = f"agent did not answer within {self.timeout} s"
                raise EncoderTimeoutError(msg, reader=reader) from None
            except AgentUnreachableError as exc:
                raise EncoderConnectionError(exc.reason, reader=reader) from None
            except (AgentError, MqttProtocolError):
                msg = "undecodable answer from the agent"
                raise EncoderProtocolError(msg, reader=reader) from None
        if response.error is not None:
            raise _encoder_error(response.error, reader)
        return response.result

    async def connect(
        self, reader: str, protocols: tuple[TransmissionProtocol, ...] = ("T=0", "T=1")
    ) -> RemoteChannel:
        """Connect to the card in the agent's reader (``reader`` is informative).

        Raises:
            EncoderConnectionError: No broker, agent offline, no reader or no card.
            EncoderTimeoutError: The agent did not answer in time.
        """
        result = await self.call(
            "encoder.connect", {"reader": reader, "protocols": list(protocols)}, reader
        )
        try:
            handle = result["channel"]
            atr = rpc.bytes_from_hex(result.get("atr"), "atr")
            protocol = result["protocol"]
            name = result.get("reader", reader)
        except (KeyError, MqttProtocolError):
            msg = "undecodable connect answer"
            raise EncoderProtocolError(msg, reader=reader) from None
        if (
            not isinstance(handle, str)
            or protocol not in {"T=0", "T=1"}
            or not isinstance(name, str)
        ):
            msg = "undecodable connect answer"
            raise EncoderProtocolError(msg, reader=reader)
        return RemoteChannel(self, handle, name, atr, "T=1" if protocol == "T=1" else "T=0")


class RemoteChannel:
    """A connection to the card in an agent's reader (a :class:`~devices.encoder.CardChannel`)."""

    def __init__(
        self,
        encoder: RemoteEncoder,
        handle: str,
        reader: str,
        atr: bytes,
        protocol: TransmissionProtocol,
    ) -> None:
        """Made by :meth:`RemoteEncoder.connect`."""
        self._encoder = encoder
        self._handle = handle
        self._reader = reader
        self._atr = atr
        self._protocol: TransmissionProtocol = protocol
        self._closed = False

    @property
    def reader(self) -> str:
        """The reader's name."""
        return self._reader

    @property
    def atr(self) -> bytes:
        """The card's answer to reset."""
        return self._atr

    @property
    def protocol(self) -> TransmissionProtocol:
        """The active transmission protocol."""
        return self._protocol

    async def transmit_raw(self, apdu: bytes) -> bytes:
        """Send bytes as they are and return the card's bytes as they are."""
        if self._closed:
            msg = "channel is closed"
            raise EncoderConnectionError(msg, reader=self._reader)
        result = await self._encoder.call(
            "encoder.transmit", {"channel": self._handle, "apdu": apdu.hex()}, self._reader
        )
        try:
            return rpc.bytes_from_hex(result.get("apdu"))
        except MqttProtocolError:
            msg = "undecodable transmit answer"
            raise EncoderProtocolError(msg, reader=self._reader) from None

    async def transmit(self, command: CommandApdu) -> ResponseApdu:
        """Send one command; ``61xx``/``6Cxx`` chaining is handled."""
        return await exchange(self.transmit_raw, command, self._reader)

    async def close(self) -> None:
        """Release the connection on the agent."""
        if self._closed:
            return
        self._closed = True
        await self._encoder.call("encoder.close", {"channel": self._handle}, self._reader)
