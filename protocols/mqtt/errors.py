"""Errors of the MQTT topic and payload codecs.

:class:`MqttProtocolError` is the only family the codecs raise, whatever bytes
or topic they are given: :class:`TopicError` for a topic or topic segment that
does not fit the scheme, :class:`PayloadError` for a payload that is not the
expected JSON document.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = ["MqttProtocolError", "PayloadError", "TopicError"]


class MqttProtocolError(Exception):
    """Root of the MQTT codec errors.

    Attributes:
        code: Stable machine-readable code.
        reason: What is wrong, without the offending data.
    """

    code: ClassVar[str] = "mqtt.protocol"

    def __init__(self, reason: str) -> None:
        """Record the reason."""
        super().__init__(reason)
        self.reason = reason


class TopicError(MqttProtocolError):
    """A topic or a topic segment does not fit the scheme."""

    code: ClassVar[str] = "mqtt.topic"


class PayloadError(MqttProtocolError):
    """A payload is not the JSON document its topic carries."""

    code: ClassVar[str] = "mqtt.payload"
