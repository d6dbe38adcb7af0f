"""The daemon's telemetry publisher over MQTT (aiomqtt), with presence and Last Will.

:class:`MqttPublisher` keeps one broker session
(:class:`~devices.agent.session.MqttSession`) whose Will marks the daemon
``offline`` (retained) when its link drops; after each connect it publishes
``online`` (retained) and calls ``on_connected`` (the registry queues every
state again). a cancelled :meth:`MqttPublisher.run` publishes ``offline`` with the reason
``stopped`` when :meth:`MqttPublisher.run` is cancelled, before the session ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiomqtt

from devices.agent.errors import BrokerConnectionError
from devices.agent.session import MqttSession
from devices.registry.errors import PublishError
from devices.registry.registry import iso_now
from protocols.mqtt.state import Presence, PresenceState

if TYPE_CHECKING:
    import random
    from collections.abc import Callable

    from devices.agent.settings import BrokerSettings
    from devices.clock import Clock

__all__ = ["MqttPublisher"]


class MqttPublisher:
    """Retained telemetry over one MQTT session (a registry ``Publisher``)."""

    def __init__(  # noqa: PLR0913 - injected parts, keyword-only
        self,
        settings: BrokerSettings,
        *,
        presence_topic: str,
        identifier: str,
        clock: Clock,
        rng: random.Random,
        on_connected: Callable[[], None] | None = None,
    ) -> None:
        """Configure; :meth:`run` connects.

        Args:
            settings: The broker.
            presence_topic: Where ``online``/``offline`` goes (the daemon state topic).
            identifier: The MQTT client identifier.
            clock: Reconnect waits and timestamps.
            rng: Reconnect jitter.
            on_connected: Called after each (re)connect, once ``online`` is published.
        """
        self._presence_topic = presence_topic
        self._clock = clock
        self._on_connected = on_connected
        will = aiomqtt.Will(
            presence_topic,
            PresenceState(Presence.OFFLINE, "connection_lost").to_bytes(),
            qos=1,
            retain=True,
        )
        self.session = MqttSession(
            settings,
            identifier=identifier,
            clock=clock,
            rng=rng,
            will=will,
            on_connect=self._connected,
            on_close=self._stopped,
        )

    async def _connected(self) -> None:
        online = PresenceState(Presence.ONLINE, at=iso_now(self._clock))
        await self.session.publish(self._presence_topic, online.to_bytes(), retain=True)
        if self._on_connected is not None:
            self._on_connected()

    async def run(self) -> None:
        """Keep the session until cancelled (then publish ``offline``, ``stopped``)."""
        await self.session.run()

    async def publish(self, topic: str, payload: bytes, retain: bool) -> None:  # noqa: FBT001 - Publisher's shape
        """Publish with QoS 1.

        Raises:
            PublishError: No session now, or it was lost before the broker's PUBACK.
        """
        try:
            await self.session.publish(topic, payload, retain=retain)
        except BrokerConnectionError as exc:
            raise PublishError(exc.reason) from exc

    async def _stopped(self) -> None:
        offline = PresenceState(Presence.OFFLINE, "stopped", iso_now(self._clock))
        await self.session.publish(self._presence_topic, offline.to_bytes(), retain=True)
