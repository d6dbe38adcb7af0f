"""Sans-I/O MQTT topic scheme and JSON payloads (telemetry and the device agent).

See ``docs/protocols/telemetry.md``.
"""

from protocols.mqtt.errors import MqttProtocolError, PayloadError, TopicError
from protocols.mqtt.rpc import OPERATIONS, RpcError, RpcRequest, RpcResponse
from protocols.mqtt.state import (
    DeviceKind,
    DeviceState,
    DeviceStatus,
    FeederLevel,
    Levels,
    Presence,
    PresenceState,
)
from protocols.mqtt.topics import ROOT, BranchTopics, ParsedTopic, check_segment, parse_topic

__all__ = [
    "OPERATIONS",
    "ROOT",
    "BranchTopics",
    "DeviceKind",
    "DeviceState",
    "DeviceStatus",
    "FeederLevel",
    "Levels",
    "MqttProtocolError",
    "ParsedTopic",
    "PayloadError",
    "Presence",
    "PresenceState",
    "RpcError",
    "RpcRequest",
    "RpcResponse",
    "TopicError",
    "check_segment",
    "parse_topic",
]
