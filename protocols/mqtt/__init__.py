"""Sans-I/O MQTT topic scheme and JSON payloads (telemetry and the device agent).

See ``docs/protocols/telemetry.md``.
"""

from protocols.mqtt.anchors import AuditCheckpoint
from protocols.mqtt.errors import MqttProtocolError, PayloadError, TopicError
from protocols.mqtt.reports import (
    REPORTS,
    ApplicationsReport,
    CertificatesReport,
    OutboxReport,
    ProductionReport,
    QueuesReport,
    Report,
    StockReport,
    decode_report,
)
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
from protocols.mqtt.topics import (
    REPORT_NAMES,
    ROOT,
    BranchTopics,
    ParsedTopic,
    check_segment,
    parse_topic,
)

__all__ = [
    "OPERATIONS",
    "REPORTS",
    "REPORT_NAMES",
    "ROOT",
    "ApplicationsReport",
    "AuditCheckpoint",
    "BranchTopics",
    "CertificatesReport",
    "DeviceKind",
    "DeviceState",
    "DeviceStatus",
    "FeederLevel",
    "Levels",
    "MqttProtocolError",
    "OutboxReport",
    "ParsedTopic",
    "PayloadError",
    "Presence",
    "PresenceState",
    "ProductionReport",
    "QueuesReport",
    "Report",
    "RpcError",
    "RpcRequest",
    "RpcResponse",
    "StockReport",
    "TopicError",
    "check_segment",
    "decode_report",
    "parse_topic",
]
