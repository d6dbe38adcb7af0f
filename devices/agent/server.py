"""The device agent: local printers and encoders served over MQTT 5 request/response.

Runs on the PC next to the hardware. It keeps one broker session
(:class:`~devices.agent.session.MqttSession`) whose Will publishes the agent's
presence ``offline`` (retained) when the link drops. After each connect it
publishes ``online`` and every device's state (retained), and subscribes to
its request topics.

A request names its device by topic and carries the MQTT 5 *Response Topic*
and *Correlation Data*; the answer goes to that topic with the same
correlation data (QoS 1). Each device has its own queue and worker task, so a
device runs one command at a time while different devices work in parallel.
The broker drops requests that expire before delivery (the client sets the
message expiry to its timeout), and the session starts clean, so no stale
command ever moves a card after its caller gave up.

Driver errors travel as their code and attributes (:mod:`protocols.mqtt.rpc`).
APDUs may carry PIN blocks: they are never logged, only their length.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Final

import aiomqtt
import structlog

from devices.agent.errors import BrokerConnectionError
from devices.agent.session import MqttSession, publish_properties
from devices.encoder.errors import EncoderConnectionError, EncoderError
from devices.printer.errors import PrinterError
from devices.registry.errors import PublishError
from devices.registry.registry import DeviceRegistry, iso_now
from protocols.mqtt import rpc
from protocols.mqtt.errors import MqttProtocolError
from protocols.mqtt.rpc import RpcError, RpcRequest, RpcResponse
from protocols.mqtt.state import DeviceKind, DeviceStatus, Presence, PresenceState
from protocols.mqtt.topics import BranchTopics, parse_topic

if TYPE_CHECKING:
    import random
    from collections.abc import Mapping

    from devices.agent.interfaces import Encoder, Printer
    from devices.agent.settings import BrokerSettings
    from devices.clock import Clock
    from devices.encoder.channel import CardChannel, TransmissionProtocol

__all__ = ["DeviceAgent", "error_attrs"]

log = structlog.get_logger(__name__)

MAX_CHANNELS: Final = 4  # open card channels per encoder; the oldest is closed beyond
QUEUE_LIMIT: Final = 64  # waiting requests per device; more are refused at once
_ATTRS: Final = ("command", "timeout", "url", "reason", "printer_code", "reader", "pcsc_code")
_COUNTERS: Final = {
    "printer.insert_card": "cards_inserted",
    "printer.print_card": "cards_printed",
    "printer.eject_card": "cards_ejected",
    "printer.reject_card": "cards_rejected",
    "encoder.transmit": "apdus",
}


def error_attrs(exc: PrinterError | EncoderError) -> dict[str, rpc.AttrValue]:
    """The attributes of a driver error that travel with its code."""
    attrs: dict[str, rpc.AttrValue] = {}
    for name in _ATTRS:
        value = getattr(exc, name, None)
        if value is None:
            continue
        attrs[name] = value if isinstance(value, int | float | str) else str(value)
    if isinstance(exc, EncoderError):
        attrs["message"] = str(exc)
    return attrs


class _Job:
    __slots__ = ("correlation", "payload", "response_topic")

    def __init__(self, payload: bytes, response_topic: str, correlation: bytes | None) -> None:
        self.payload = payload
        self.response_topic = response_topic
        self.correlation = correlation


class _SessionPublisher:
    """The registry's publisher over the agent's session."""

    def __init__(self, session: MqttSession) -> None:
        self._session = session

    async def publish(self, topic: str, payload: bytes, retain: bool) -> None:  # noqa: FBT001
        try:
            await self._session.publish(topic, payload, retain=retain)
        except BrokerConnectionError as exc:
            raise PublishError(exc.reason) from exc


class DeviceAgent:
    """Serves local devices over MQTT (see the module docstring)."""

    def __init__(  # noqa: PLR0913 - injected parts, keyword-only
        self,
        settings: BrokerSettings,
        *,
        agent_id: str,
        topics: BranchTopics,
        clock: Clock,
        rng: random.Random,
        printers: Mapping[str, Printer] | None = None,
        encoders: Mapping[str, tuple[Encoder, str]] | None = None,
    ) -> None:
        """Configure; :meth:`run` connects and serves.

        Args:
            settings: The broker.
            agent_id: This agent's identifier (topic segment and MQTT client id).
            topics: The branch's topic tree.
            clock: Reconnect waits and timestamps.
            rng: Reconnect jitter.
            printers: Printers by device identifier.
            encoders: Encoders by device identifier, each with its reader name.
        """
        self.agent_id = agent_id
        self._topics = topics
        self._clock = clock
        self._printers = dict(printers or {})
        self._encoders = dict(encoders or {})
        self._state_topic = topics.agent_state(agent_id)
        will = aiomqtt.Will(
            self._state_topic,
            PresenceState(Presence.OFFLINE, "connection_lost").to_bytes(),
            qos=1,
            retain=True,
        )
        self.session = MqttSession(
            settings,
            identifier=agent_id,
            clock=clock,
            rng=rng,
            will=will,
            on_connect=self._on_connect,
            on_message=self._on_message,
            on_close=self._publish_stopped,
        )
        self.registry = DeviceRegistry(
            _SessionPublisher(self.session),
            topic=lambda device: topics.agent_device_state(agent_id, device),
            clock=clock,
        )
        for device, printer in self._printers.items():
            if printer.connected:
                self.registry.add(
                    device, DeviceKind.PRINTER, status=DeviceStatus.ONLINE, reason=None
                )
            else:
                self.registry.add(device, DeviceKind.PRINTER)
        for device in self._encoders:
            self.registry.add(device, DeviceKind.ENCODER)
        self._queues: dict[str, asyncio.Queue[_Job]] = {
            device: asyncio.Queue(QUEUE_LIMIT) for device in (*self._printers, *self._encoders)
        }
        self._channels: dict[str, OrderedDict[str, CardChannel]] = {
            device: OrderedDict() for device in self._encoders
        }
        self._channel_ids = itertools.count(1)

    async def run(self) -> None:
        """Serve until cancelled; a cancelled agent publishes ``offline`` (``stopped``) first."""
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.session.run(), name=f"agent-{self.agent_id}-session")
                group.create_task(self.registry.run(), name=f"agent-{self.agent_id}-states")
                for device, queue in self._queues.items():
                    group.create_task(self._worker(device, queue), name=f"agent-device-{device}")
        finally:
            for channels in self._channels.values():
                for channel in channels.values():
                    with contextlib.suppress(EncoderError):
                        await channel.close()
                channels.clear()

    async def _publish_stopped(self) -> None:
        offline = PresenceState(Presence.OFFLINE, "stopped", iso_now(self._clock))
        await self.session.publish(self._state_topic, offline.to_bytes(), retain=True)

    # ------------------------------------------------------------ session

    async def _on_connect(self) -> None:
        online = PresenceState(Presence.ONLINE, at=iso_now(self._clock))
        await self.session.publish(self._state_topic, online.to_bytes(), retain=True)
        self.registry.republish_all()
        await self.session.subscribe(self._topics.agent_requests(self.agent_id))

    async def _on_message(self, message: aiomqtt.Message) -> None:
        try:
            parsed = parse_topic(message.topic.value)
        except MqttProtocolError:
            return
        properties = message.properties
        response_topic = getattr(properties, "ResponseTopic", None)
        correlation = getattr(properties, "CorrelationData", None)
        if parsed.kind != "agent_request" or parsed.device is None or not response_topic:
            log.warning("agent_request_dropped", topic=message.topic.value, reason="no reply topic")
            return
        payload = message.payload if isinstance(message.payload, bytes) else b""
        job = _Job(payload, str(response_topic), correlation)
        queue = self._queues.get(parsed.device)
        if queue is None:
            await self._answer(job, RpcResponse(error=RpcError("agent.unknown_device")))
            return
        try:
            queue.put_nowait(job)
        except asyncio.QueueFull:
            await self._answer(job, RpcResponse(error=RpcError("agent.busy")))

    async def _answer(self, job: _Job, response: RpcResponse) -> None:
        properties = publish_properties(correlation=job.correlation)
        try:
            await self.session.publish(
                job.response_topic, response.to_bytes(), properties=properties
            )
        except BrokerConnectionError as exc:
            log.warning("agent_response_lost", reason=exc.reason)

    # ------------------------------------------------------------ devices

    async def _worker(self, device: str, queue: asyncio.Queue[_Job]) -> None:
        while True:
            job = await queue.get()
            response = await self._handle(device, job.payload)
            await self._answer(job, response)

    async def _handle(self, device: str, payload: bytes) -> RpcResponse:
        try:
            request = RpcRequest.from_bytes(payload)
        except MqttProtocolError as exc:
            return RpcResponse(error=RpcError(exc.code, {"reason": exc.reason}))
        log.debug("agent_request", device=device, op=request.op)
        try:
            async with self.registry.activity(device, _COUNTERS.get(request.op)):
                result = await self._dispatch(device, request)
        except (PrinterError, EncoderError) as exc:
            log.info("agent_device_error", device=device, op=request.op, error=exc.code)
            return RpcResponse(error=RpcError(exc.code, error_attrs(exc)))
        except MqttProtocolError as exc:
            return RpcResponse(error=RpcError(exc.code, {"reason": exc.reason}))
        except _WrongKindError:
            return RpcResponse(error=RpcError("agent.wrong_device_kind"))
        return RpcResponse(result)

    async def _dispatch(self, device: str, request: RpcRequest) -> dict[str, Any]:
        family, _, operation = request.op.partition(".")
        if family == "printer":
            printer = self._printers.get(device)
            if printer is None:
                raise _WrongKindError
            return await self._printer_op(device, printer, operation, request.args)
        encoder = self._encoders.get(device)
        if encoder is None:
            raise _WrongKindError
        return await self._encoder_op(device, encoder, operation, request.args)

    async def _printer_op(
        self, device: str, printer: Printer, operation: str, args: Mapping[str, Any]
    ) -> dict[str, Any]:
        if operation == "command":
            return rpc.reply_to_json(await printer.command(rpc.request_from_json(args)))
        if operation == "status":
            status = await printer.status()
            self.registry.printer_status(device, status)
            return rpc.status_to_json(status)
        if operation == "firmware_version":
            return {"text": await printer.firmware_version()}
        if operation == "insert_card":
            await printer.insert_card(rpc.station_from_json(args))
        elif operation == "print_card":
            await printer.print_card(rpc.panels_from_json(args))
        elif operation == "eject_card":
            await printer.eject_card()
        elif operation == "reject_card":
            await printer.reject_card()
        elif operation == "clear_error":
            await printer.clear_error()
        else:
            raise _WrongKindError
        return {}

    async def _encoder_op(
        self, device: str, encoder: tuple[Encoder, str], operation: str, args: Mapping[str, Any]
    ) -> dict[str, Any]:
        driver, reader = encoder
        channels = self._channels[device]
        if operation == "connect":
            wanted = args.get("protocols", ["T=0", "T=1"])
            choice: tuple[TransmissionProtocol, ...] = ("T=0", "T=1")
            protocols = tuple(p for p in choice if isinstance(wanted, list) and p in wanted)
            channel = await driver.connect(reader, protocols or choice)
            new_handle = f"{device}-{next(self._channel_ids)}"
            channels[new_handle] = channel
            while len(channels) > MAX_CHANNELS:
                _, oldest = channels.popitem(last=False)
                with contextlib.suppress(EncoderError):
                    await oldest.close()
            return {
                "channel": new_handle,
                "reader": channel.reader,
                "atr": channel.atr.hex(),
                "protocol": channel.protocol,
            }
        handle = args.get("channel")
        found = channels.get(handle) if isinstance(handle, str) else None
        if found is None:
            msg = "no such channel (closed, or the agent restarted)"
            raise EncoderConnectionError(msg, reader=reader)
        if operation == "transmit":
            answer = await found.transmit_raw(rpc.bytes_from_hex(args.get("apdu")))
            return {"apdu": answer.hex()}
        if operation == "close":
            channels.pop(str(handle), None)
            await found.close()
            return {}
        raise _WrongKindError


class _WrongKindError(Exception):
    """The operation does not apply to this device."""
