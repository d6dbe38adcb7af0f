"""Configuration of MQTT broker connections and of the device agent (pydantic)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = [
    "AgentEncoderSettings",
    "AgentPrinterSettings",
    "AgentSettings",
    "BrokerSettings",
    "BrokerTlsSettings",
    "Name",
]

#: A topic segment: what a province, branch, agent or device may be called.
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokerTlsSettings(_Frozen):
    """TLS to the broker (``security.pki.client_context``).

    Attributes:
        ca: The CA that signed the broker's certificate.
        cert: This client's certificate (mutual TLS), or none.
        key: Its private key.
    """

    ca: Path
    cert: Path | None = None
    key: Path | None = None

    @model_validator(mode="after")
    def _cert_and_key(self) -> BrokerTlsSettings:
        if (self.cert is None) != (self.key is None):
            msg = "cert and key go together"
            raise ValueError(msg)
        return self


class BrokerSettings(_Frozen):
    """Where the MQTT broker is and how to reach it.

    Attributes:
        host: Broker host name (checked against its certificate with TLS).
        port: Broker port.
        tls: TLS settings; plain TCP when absent.
        username: Optional user name.
        password: Optional password (never logged).
        keepalive: MQTT keepalive, seconds: a dead link shows within 1.5 times this.
        timeout: Longest connect, subscribe or publish, seconds.
        reconnect_initial: First reconnect delay ceiling, seconds.
        reconnect_max: Longest reconnect delay, seconds.
        protocol: MQTT version: ``5`` (needed by device agents' request/response);
            ``3.1.1`` for a broker without MQTT 5 (telemetry only; the demo's
            in-process broker).
    """

    host: str = "localhost"
    port: int = Field(default=1883, ge=1, le=65535)
    tls: BrokerTlsSettings | None = None
    username: str | None = None
    password: SecretStr | None = None
    keepalive: int = Field(default=30, ge=5, le=3600)
    timeout: float = Field(default=10.0, gt=0, le=120)
    reconnect_initial: float = Field(default=0.5, gt=0, le=60)
    reconnect_max: float = Field(default=30.0, gt=0, le=3600)
    protocol: Literal["5", "3.1.1"] = "5"


class AgentPrinterSettings(_Frozen):
    """One printer next to the agent.

    Attributes:
        id: The device identifier (a topic segment).
        url: The link: a serial device (``/dev/ttyUSB0``) or ``socket://host:port``.
        baudrate: Serial speed.
        status_interval: Poll the status this often, seconds.
    """

    id: Name
    url: str = Field(min_length=1)
    baudrate: int = Field(default=115_200, gt=0)
    status_interval: float | None = Field(default=30.0, gt=0)


class AgentEncoderSettings(_Frozen):
    """One PC/SC reader next to the agent.

    Attributes:
        id: The device identifier (a topic segment).
        reader: The PC/SC reader name.
    """

    id: Name
    reader: str = Field(min_length=1)


class AgentSettings(_Frozen):
    """``branchd agent --config FILE``: the device agent on a kiosk or printer station.

    Attributes:
        agent_id: This agent's identifier (a topic segment, also the MQTT client id).
        province: The province code of the topic tree.
        branch: The branch identifier of the topic tree.
        broker: The broker.
        printers: Local printers to expose.
        encoders: Local PC/SC readers to expose.
        pcsc_call_timeout: Longest PC/SC connect or transmit, seconds.
    """

    agent_id: Name
    province: Name
    branch: Name
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    printers: tuple[AgentPrinterSettings, ...] = ()
    encoders: tuple[AgentEncoderSettings, ...] = ()
    pcsc_call_timeout: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _unique_ids(self) -> AgentSettings:
        ids = [p.id for p in self.printers] + [e.id for e in self.encoders]
        if len(ids) != len(set(ids)):
            msg = "device ids must be unique"
            raise ValueError(msg)
        return self
