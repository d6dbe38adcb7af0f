"""One MQTT 5 session kept up with capped, jittered backoff (aiomqtt has no reconnect).

:class:`MqttSession` enters an :class:`aiomqtt.Client` context, calls
``on_connect`` (subscribe, publish presence), hands every message to
``on_message``, and when the link is lost calls ``on_disconnect``, waits the
next backoff delay on the injected clock and enters a fresh client context.
The backoff starts afresh after each successful connect. aiomqtt errors never
leave this module: :meth:`MqttSession.publish` raises
:class:`~devices.agent.errors.BrokerConnectionError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import TYPE_CHECKING, Any

import aiomqtt
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devices.agent.errors import BrokerConnectionError
from devices.backoff import BackoffPolicy, backoff_delays
from security.pki import client_context

if TYPE_CHECKING:
    import random
    import ssl
    from collections.abc import Awaitable, Callable, Iterator

    from devices.agent.settings import BrokerSettings
    from devices.clock import Clock

__all__ = ["MqttSession", "publish_properties", "tls_context"]

log = structlog.get_logger(__name__)


def tls_context(settings: BrokerSettings) -> ssl.SSLContext | None:
    """The client TLS context for ``settings`` (mutual TLS when a certificate is set)."""
    if settings.tls is None:
        return None
    return client_context(settings.tls.cert, settings.tls.key, settings.tls.ca)


def publish_properties(
    *,
    response_topic: str | None = None,
    correlation: bytes | None = None,
    expiry: float | None = None,
) -> Properties | None:
    """MQTT 5 PUBLISH properties (response topic, correlation data, message expiry)."""
    if response_topic is None and correlation is None and expiry is None:
        return None
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    if response_topic is not None:
        properties.ResponseTopic = response_topic
    if correlation is not None:
        properties.CorrelationData = correlation
    if expiry is not None:
        properties.MessageExpiryInterval = max(1, math.ceil(expiry))
    return properties


@contextlib.contextmanager
def _keep_cancellation() -> Iterator[None]:
    """Raise the cancellation that ``asyncio.wait_for`` dropped inside the block.

    aiomqtt waits for CONNACK, PUBACK and SUBACK with ``asyncio.wait_for``,
    which on Python 3.11 returns the acknowledgement instead of raising
    ``CancelledError`` when both arrive in the same turn of the loop (fixed in
    3.12, cpython gh-86296). The task then runs on as if it had never been
    cancelled: a cancelled device agent waited forever for its next state
    change. The task's count of cancellation requests still shows it.
    """
    requested = _cancel_requests()
    try:
        yield
    except Exception:
        _raise_dropped(requested)  # the cancellation comes first
        raise
    _raise_dropped(requested)


def _cancel_requests() -> int:
    task = asyncio.current_task()
    return task.cancelling() if task is not None else 0


def _raise_dropped(requested: int) -> None:
    """Raise ``CancelledError`` if this task was cancelled since it had ``requested``."""
    if _cancel_requests() > requested:
        raise asyncio.CancelledError


class MqttSession:
    """A broker session that comes back by itself (see the module docstring)."""

    def __init__(  # noqa: PLR0913 - injected parts and callbacks, keyword-only
        self,
        settings: BrokerSettings,
        *,
        identifier: str,
        clock: Clock,
        rng: random.Random,
        will: aiomqtt.Will | None = None,
        on_connect: Callable[[], Awaitable[None]] | None = None,
        on_message: Callable[[aiomqtt.Message], Awaitable[None]] | None = None,
        on_disconnect: Callable[[], None] | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Configure; nothing connects before :meth:`run`.

        Args:
            settings: The broker.
            identifier: The MQTT client identifier.
            clock: Waits between reconnection attempts.
            rng: Jitter of the reconnection backoff.
            will: The Last Will the broker publishes when the link drops.
            on_connect: Called after each connect, before messages flow.
            on_message: Called with each message, in order; it must not block long.
            on_disconnect: Called once per lost (or closed) session.
            on_close: Awaited (at most ``settings.timeout``) while still connected
                when :meth:`run` is cancelled, e.g. to publish ``offline``.
        """
        self._settings = settings
        self._identifier = identifier
        self._clock = clock
        self._rng = rng
        self._will = will
        self._on_connect = on_connect
        self._on_message = on_message
        self._on_disconnect = on_disconnect
        self._on_close = on_close
        self._backoff = BackoffPolicy(
            initial=settings.reconnect_initial,
            maximum=max(settings.reconnect_max, settings.reconnect_initial),
        )
        self._tls = tls_context(settings)
        self._client: aiomqtt.Client | None = None
        self.connected = asyncio.Event()
        self.connections = 0

    @property
    def identifier(self) -> str:
        """The MQTT client identifier."""
        return self._identifier

    def _new_client(self) -> aiomqtt.Client:
        settings = self._settings
        password = settings.password.get_secret_value() if settings.password else None
        if settings.protocol == "5":
            session: dict[str, Any] = {
                "protocol": aiomqtt.ProtocolVersion.V5,
                "clean_start": True,
            }
        else:
            session = {"protocol": aiomqtt.ProtocolVersion.V311, "clean_session": True}
        return aiomqtt.Client(
            settings.host,
            settings.port,
            identifier=self._identifier,
            username=settings.username,
            password=password,
            will=self._will,
            keepalive=settings.keepalive,
            timeout=settings.timeout,
            tls_context=self._tls,
            **session,
        )

    async def run(self) -> None:
        """Keep a session until cancelled; reconnect with backoff after each loss."""
        delays = backoff_delays(self._backoff, self._rng)
        while True:
            try:
                await self._session()
                delays = backoff_delays(self._backoff, self._rng)
            except aiomqtt.MqttError as exc:
                if self.connected.is_set():
                    delays = backoff_delays(self._backoff, self._rng)
                log.warning("mqtt_session_lost", client=self._identifier, error=type(exc).__name__)
            finally:
                was_up = self.connected.is_set()
                self._client = None
                self.connected.clear()
                if was_up and self._on_disconnect is not None:
                    self._on_disconnect()
            await self._clock.sleep(next(delays))

    async def _session(self) -> None:
        connecting = _cancel_requests()
        async with self._new_client() as client:
            _raise_dropped(connecting)  # by the wait for CONNACK
            self._client = client
            self.connected.set()
            self.connections += 1
            log.info("mqtt_connected", client=self._identifier, host=self._settings.host)
            if self._on_connect is not None:
                with _keep_cancellation():
                    await self._on_connect()
            try:
                async for message in client.messages:
                    if self._on_message is not None:
                        with _keep_cancellation():
                            await self._on_message(message)
            except asyncio.CancelledError:
                if self._on_close is not None:
                    with contextlib.suppress(BrokerConnectionError, TimeoutError):
                        async with asyncio.timeout(self._settings.timeout):
                            await self._on_close()
                raise

    async def subscribe(self, topic: str) -> None:
        """Subscribe with QoS 1 (call from ``on_connect``).

        Raises:
            BrokerConnectionError: No session, or the broker did not answer.
        """
        client = self._require()
        try:
            with _keep_cancellation():
                await client.subscribe(topic, qos=1)
        except aiomqtt.MqttError as exc:
            raise BrokerConnectionError(type(exc).__name__) from exc

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> None:
        """Publish with QoS 1 and wait for the broker's PUBACK.

        Raises:
            BrokerConnectionError: No session, or it was lost before the PUBACK.
        """
        client = self._require()
        try:
            with _keep_cancellation():
                await client.publish(topic, payload, qos=1, retain=retain, properties=properties)
        except aiomqtt.MqttError as exc:
            raise BrokerConnectionError(type(exc).__name__) from exc

    def _require(self) -> aiomqtt.Client:
        if self._client is None:
            raise BrokerConnectionError("not connected")
        return self._client
