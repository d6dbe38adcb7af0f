"""Request/response payloads between a remote device client and a device agent.

A request is published (QoS 1) on the device's request topic with the MQTT 5
properties *Response Topic* and *Correlation Data*; the agent answers on that
topic with the same correlation data. The bodies::

    request   {"v": 1, "op": "printer.insert_card", "args": {...}}
    success   {"v": 1, "ok": true, "result": {...}}
    failure   {"v": 1, "ok": false, "error": {"code": "printer.jam", "attrs": {...}}}

``code`` is the driver error's stable code and ``attrs`` its attributes, so the
client raises the very error type the local driver would. Binary data travels as
base64 (panels) or hex (APDUs). The operations and their arguments are listed in
:data:`OPERATIONS` and ``docs/protocols/telemetry.md``. Decoders raise only
:class:`~protocols.mqtt.errors.PayloadError`.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from protocols.mqtt import _json
from protocols.mqtt.errors import PayloadError
from protocols.printer.commands import CardPosition, EncodingStation, PrinterStatus
from protocols.printer.errors import PrinterProtocolError
from protocols.printer.frames import (
    Ack,
    Depth,
    Nack,
    Panel,
    Reply,
    Request,
    TextReply,
    panel_size,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "OPERATIONS",
    "AttrValue",
    "RpcError",
    "RpcRequest",
    "RpcResponse",
    "bytes_from_b64",
    "bytes_from_hex",
    "bytes_to_b64",
    "panels_from_json",
    "panels_to_json",
    "reply_from_json",
    "reply_to_json",
    "request_from_json",
    "request_to_json",
    "station_from_json",
    "status_from_json",
    "status_to_json",
]

#: Operation names an agent serves (arguments in docs/protocols/telemetry.md).
OPERATIONS: Final = frozenset(
    {
        "printer.command",
        "printer.status",
        "printer.firmware_version",
        "printer.insert_card",
        "printer.print_card",
        "printer.eject_card",
        "printer.reject_card",
        "printer.clear_error",
        "encoder.connect",
        "encoder.transmit",
        "encoder.close",
    }
)
_MAX_ATTRS = 16

AttrValue = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class RpcRequest:
    """One operation on one device.

    Attributes:
        op: One of :data:`OPERATIONS`.
        args: Its arguments (a JSON object).
    """

    op: str
    args: Mapping[str, Any] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        """Encode as JSON."""
        return _json.dump_object({"op": self.op, "args": dict(self.args)})

    @classmethod
    def from_bytes(cls, payload: bytes) -> RpcRequest:
        """Decode; raises :class:`PayloadError` on anything else (unknown ops too)."""
        data = _json.load_object(payload)
        op = _json.field(data, "op", str)
        if op not in OPERATIONS:
            raise PayloadError("unknown operation")
        args = data.get("args", {})
        if not isinstance(args, dict):
            raise PayloadError("'args' must be an object")
        return cls(op, args)


@dataclass(frozen=True, slots=True)
class RpcError:
    """A failure, as the driver's error code and attributes.

    Attributes:
        code: The error's stable code, e.g. ``"printer.jam"``.
        attrs: The error's attributes (scalars only).
    """

    code: str
    attrs: Mapping[str, AttrValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RpcResponse:
    """The answer to one :class:`RpcRequest`.

    Attributes:
        result: The result object on success.
        error: The failure, or ``None`` on success.
    """

    result: Mapping[str, Any] = field(default_factory=dict)
    error: RpcError | None = None

    def to_bytes(self) -> bytes:
        """Encode as JSON."""
        if self.error is None:
            return _json.dump_object({"ok": True, "result": dict(self.result)})
        return _json.dump_object(
            {"ok": False, "error": {"code": self.error.code, "attrs": dict(self.error.attrs)}}
        )

    @classmethod
    def from_bytes(cls, payload: bytes) -> RpcResponse:
        """Decode; raises :class:`PayloadError` on anything else."""
        data = _json.load_object(payload)
        if _json.field(data, "ok", bool):
            result = data.get("result", {})
            if not isinstance(result, dict):
                raise PayloadError("'result' must be an object")
            return cls(result)
        error = data.get("error")
        if not isinstance(error, dict):
            raise PayloadError("'error' must be an object")
        code = _json.field(error, "code", str)
        attrs = error.get("attrs", {})
        if not isinstance(attrs, dict) or len(attrs) > _MAX_ATTRS:
            raise PayloadError("'attrs' must be an object of at most 16 scalars")
        for value in attrs.values():
            if value is not None and type(value) not in {str, int, float, bool}:
                raise PayloadError("an error attribute must be a scalar")
        return cls(error=RpcError(code, attrs))


# ------------------------------------------------------------------ binary


def bytes_to_b64(data: bytes) -> str:
    """Standard base64."""
    return base64.b64encode(data).decode("ascii")


def bytes_from_b64(text: object, key: str = "data") -> bytes:
    """Decode standard base64; raises :class:`PayloadError`."""
    if not isinstance(text, str):
        raise PayloadError(f"{key!r} must be base64 text")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise PayloadError(f"{key!r} is not base64") from None


def bytes_from_hex(text: object, key: str = "apdu") -> bytes:
    """Decode hex; raises :class:`PayloadError`."""
    if not isinstance(text, str):
        raise PayloadError(f"{key!r} must be hex text")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise PayloadError(f"{key!r} is not hex") from None


# ------------------------------------------------------------------ printer


def request_to_json(request: Request) -> dict[str, Any]:
    """A printer request as arguments of ``printer.command``."""
    return {
        "command": request.command,
        "params": list(request.params),
        "data": bytes_to_b64(request.data),
    }


def request_from_json(args: Mapping[str, Any]) -> Request:
    """The printer request in ``printer.command`` arguments."""
    params = args.get("params", [])
    if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
        raise PayloadError("'params' must be a list of strings")
    command = args.get("command")
    if not isinstance(command, str):
        raise PayloadError("'command' must be a string")
    try:
        return Request(command, tuple(params), bytes_from_b64(args.get("data", "")))
    except PrinterProtocolError:
        raise PayloadError("not a valid printer request") from None


def reply_to_json(reply: Reply) -> dict[str, Any]:
    """A printer reply as a result object."""
    if isinstance(reply, TextReply):
        return {"kind": "text", "text": reply.text}
    if isinstance(reply, Nack):
        return {"kind": "nack", "code": reply.code}
    return {"kind": "ack"}


def reply_from_json(result: Mapping[str, Any]) -> Reply:
    """The printer reply in a result object."""
    kind = result.get("kind")
    try:
        if kind == "text":
            return TextReply(_text(result, "text"))
        if kind == "nack":
            return Nack(_text(result, "code"))
    except PrinterProtocolError:
        raise PayloadError("not a valid printer reply") from None
    if kind == "ack":
        return Ack()
    raise PayloadError("'kind' must be text, ack or nack")


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise PayloadError(f"{key!r} must be a string")
    return value


def station_from_json(args: Mapping[str, Any]) -> EncodingStation:
    """The ``station`` argument of ``printer.insert_card``."""
    try:
        return EncodingStation(_text(args, "station"))
    except ValueError:
        raise PayloadError("'station' must be s or c") from None


def panels_to_json(panels: Sequence[tuple[Panel, Depth, bytes]]) -> list[dict[str, Any]]:
    """Panels of ``printer.print_card``."""
    return [
        {"panel": panel.value, "depth": depth.value, "data": bytes_to_b64(bitmap)}
        for panel, depth, bitmap in panels
    ]


def panels_from_json(args: Mapping[str, Any]) -> list[tuple[Panel, Depth, bytes]]:
    """The ``panels`` argument of ``printer.print_card``: each bitmap one whole panel."""
    items = args.get("panels")
    if not isinstance(items, list):
        raise PayloadError("'panels' must be a list")
    panels: list[tuple[Panel, Depth, bytes]] = []
    for item in items:
        if not isinstance(item, dict):
            raise PayloadError("a panel is an object")
        try:
            panel = Panel(_text(item, "panel"))
            depth = Depth(_json.field(item, "depth", int))
        except ValueError:
            raise PayloadError("unknown panel or depth") from None
        bitmap = bytes_from_b64(item.get("data"))
        if len(bitmap) != panel_size(depth):  # else the Db request could not be framed
            raise PayloadError("a bitmap is one whole panel at its depth")
        panels.append((panel, depth, bitmap))
    return panels


_STATUS_BOOLS: Final = (
    "feeder_loaded",
    "feeder_near_empty",
    "cover_open",
    "card_at_output",
    "reject_box_full",
)


def status_to_json(status: PrinterStatus) -> dict[str, Any]:
    """A printer status as a result object."""
    result: dict[str, Any] = {name: getattr(status, name) for name in _STATUS_BOOLS}
    result["card_position"] = status.card_position.value
    result["ribbon_type"] = status.ribbon_type
    result["ribbon_remaining"] = status.ribbon_remaining
    return result


def status_from_json(result: Mapping[str, Any]) -> PrinterStatus:
    """The printer status in a result object."""
    data = dict(result)
    flags = {name: _json.field(data, name, bool) for name in _STATUS_BOOLS}
    try:
        position = CardPosition(_text(data, "card_position"))
    except ValueError:
        raise PayloadError("unknown card position") from None
    return PrinterStatus(
        **flags,
        card_position=position,
        ribbon_type=_json.optional(data, "ribbon_type", str),
        ribbon_remaining=_json.optional(data, "ribbon_remaining", int),
    )
