"""The MQTT device agent and its client: remote printers and encoders like local ones.

:class:`DeviceAgent` runs next to the hardware and serves its printers and
encoders over MQTT 5 request/response; :class:`RemoteDeviceClient` gives the
daemon :class:`RemotePrinter` and :class:`RemoteEncoder` objects with the
interfaces (:class:`Printer`, :class:`Encoder`) and errors of the local drivers.
Topics and payloads: ``docs/protocols/telemetry.md``.
"""

from devices.agent.client import RemoteChannel, RemoteDeviceClient, RemoteEncoder, RemotePrinter
from devices.agent.errors import (
    AgentError,
    AgentTimeoutError,
    AgentUnreachableError,
    BrokerConnectionError,
)
from devices.agent.interfaces import Encoder, Printer
from devices.agent.run import run_agent
from devices.agent.server import DeviceAgent
from devices.agent.session import MqttSession
from devices.agent.settings import (
    AgentEncoderSettings,
    AgentPrinterSettings,
    AgentSettings,
    BrokerSettings,
    BrokerTlsSettings,
)

__all__ = [
    "AgentEncoderSettings",
    "AgentError",
    "AgentPrinterSettings",
    "AgentSettings",
    "AgentTimeoutError",
    "AgentUnreachableError",
    "BrokerConnectionError",
    "BrokerSettings",
    "BrokerTlsSettings",
    "DeviceAgent",
    "Encoder",
    "MqttSession",
    "Printer",
    "RemoteChannel",
    "RemoteDeviceClient",
    "RemoteEncoder",
    "RemotePrinter",
    "run_agent",
]
