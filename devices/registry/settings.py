"""Configuration of the daemon's devices (pydantic): local or behind an agent."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from devices.agent.settings import BrokerSettings, Name

__all__ = ["DevicesSettings", "EncoderSettings", "PinPadSettings", "PrinterSettings"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PrinterSettings(_Frozen):
    """One printer: a local link (``url``) or a device of an agent (``agent``).

    Attributes:
        id: The device identifier (a topic segment).
        url: Serial device or ``socket://host:port`` of a local printer.
        agent: The agent serving it; the agent's device id is ``id``.
        baudrate: Serial speed (local only).
        status_interval: Status poll interval, seconds (local only).
    """

    id: Name
    url: str | None = Field(default=None, min_length=1)
    agent: Name | None = None
    baudrate: int = Field(default=115_200, gt=0)
    status_interval: float | None = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _one_place(self) -> PrinterSettings:
        if (self.url is None) == (self.agent is None):
            msg = "give exactly one of url (local) or agent (remote)"
            raise ValueError(msg)
        return self


class EncoderSettings(_Frozen):
    """One chip encoder: a local PC/SC reader or a device of an agent.

    Attributes:
        id: The device identifier (a topic segment).
        reader: The local PC/SC reader name.
        agent: The agent serving it; the agent's device id is ``id``.
    """

    id: Name
    reader: str | None = Field(default=None, min_length=1)
    agent: Name | None = None

    @model_validator(mode="after")
    def _one_place(self) -> EncoderSettings:
        if (self.reader is None) == (self.agent is None):
            msg = "give exactly one of reader (local) or agent (remote)"
            raise ValueError(msg)
        return self


class PinPadSettings(_Frozen):
    """One encrypting PIN pad on a local serial link (see ``docs/protocols/pinpad.md``).

    Attributes:
        id: The device identifier (the window's ``pinpad``).
        url: Serial device or ``socket://host:port``.
        baudrate: Serial speed.
        key_label: Key store id of the pad's PIN key (TPK), the terminal key label.
        pin_block_format: ISO 9564-1 format the pad builds (0 or 3: 3DES/SM4; 4: AES).
    """

    id: Name
    url: str = Field(min_length=1)
    baudrate: int = Field(default=9600, gt=0)
    key_label: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    pin_block_format: Literal[0, 3, 4] = 0


class DevicesSettings(_Frozen):
    """``[devices]``: the branch's devices, and the broker for telemetry and agents.

    Attributes:
        province: The province code of the topic tree.
        branch: The branch identifier of the topic tree.
        client_id: MQTT client identifier of the daemon (and its response topic).
        broker: The broker; no telemetry and no remote devices without it.
        printers: The printers.
        encoders: The encoders.
        pinpads: The PIN pads (local serial links only).
    """

    province: Name
    branch: Name
    client_id: Name = "branchd"
    broker: BrokerSettings | None = None
    printers: tuple[PrinterSettings, ...] = ()
    encoders: tuple[EncoderSettings, ...] = ()
    pinpads: tuple[PinPadSettings, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> DevicesSettings:
        ids = [p.id for p in self.printers] + [e.id for e in self.encoders]
        ids += [p.id for p in self.pinpads]
        if len(ids) != len(set(ids)):
            msg = "device ids must be unique"
            raise ValueError(msg)
        remote = any(p.agent for p in self.printers) or any(e.agent for e in self.encoders)
        if remote and self.broker is None:
            msg = "devices behind an agent need a broker"
            raise ValueError(msg)
        return self
