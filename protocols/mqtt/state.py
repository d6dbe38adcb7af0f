"""Retained state payloads: presence (daemon, agent) and device state.

Every payload is a compact UTF-8 JSON object whose first key is the schema
version ``"v": 1`` (these shapes are unchanged in telemetry schema version 2, so
they are still written as 1; the decoders accept 1 and 2). Decoders raise only
:class:`~protocols.mqtt.errors.PayloadError`, whatever the bytes. Times are
ISO 8601 UTC strings the caller formats (this module reads no clock).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from protocols.mqtt import _json
from protocols.mqtt.errors import PayloadError, TopicError
from protocols.mqtt.topics import check_segment

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "DeviceKind",
    "DeviceState",
    "DeviceStatus",
    "FeederLevel",
    "Levels",
    "Presence",
    "PresenceState",
]

_MAX_REASON = 200  # characters of a reason text
_MAX_COUNTERS = 32
_E = TypeVar("_E", bound=StrEnum)


class Presence(StrEnum):
    """Whether a daemon or an agent is connected."""

    ONLINE = "online"
    OFFLINE = "offline"


class DeviceKind(StrEnum):
    """What a device is."""

    PRINTER = "printer"
    ENCODER = "encoder"
    PINPAD = "pinpad"  # encrypting PIN pad at a window (devices/pinpad)


class DeviceStatus(StrEnum):
    """A device's state: usable, working, stopped by an error, or unreachable."""

    ONLINE = "online"
    BUSY = "busy"
    ERROR = "error"
    OFFLINE = "offline"


class FeederLevel(StrEnum):
    """How full a printer's card feeder is."""

    LOADED = "loaded"
    NEAR_EMPTY = "near_empty"
    EMPTY = "empty"


def _reason(data: dict[str, Any]) -> str | None:
    reason = _json.optional(data, "reason", str)
    if reason is not None and len(reason) > _MAX_REASON:
        raise PayloadError("'reason' is too long")
    return reason


def _enum(data: dict[str, Any], key: str, kind: type[_E]) -> _E:
    try:
        return kind(_json.field(data, key, str))
    except ValueError:
        raise PayloadError(f"{key!r} is not one of {[m.value for m in kind]}") from None


@dataclass(frozen=True, slots=True)
class PresenceState:
    """A daemon's or an agent's presence, retained; the Will carries the offline form.

    ::

        {"v": 1, "state": "online" | "offline", "reason": str | null, "at": str | null}

    Attributes:
        state: Online or offline.
        reason: Why offline (``"stopped"``, ``"connection_lost"``), ``None`` when online.
        at: When it was published (ISO 8601 UTC); ``None`` in a Will, which is
            written at connect time.
    """

    state: Presence
    reason: str | None = None
    at: str | None = None

    def to_bytes(self) -> bytes:
        """Encode as JSON."""
        return _json.dump_object({"state": self.state.value, "reason": self.reason, "at": self.at})

    @classmethod
    def from_bytes(cls, payload: bytes) -> PresenceState:
        """Decode; raises :class:`PayloadError` on anything else."""
        data = _json.load_object(payload, _json.TELEMETRY_VERSIONS)
        return cls(_enum(data, "state", Presence), _reason(data), _json.optional(data, "at", str))


@dataclass(frozen=True, slots=True)
class Levels:
    """Consumable levels of a printer (all ``None`` for an encoder or when unknown).

    Attributes:
        feeder: How full the feeder is.
        ribbon_type: The ribbon type, e.g. ``"YMCKO"``.
        ribbon_remaining: Cards the ribbon still prints.
        reject_box_full: The reject box takes no more cards.
        cover_open: The cover is open.
    """

    feeder: FeederLevel | None = None
    ribbon_type: str | None = None
    ribbon_remaining: int | None = None
    reject_box_full: bool | None = None
    cover_open: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """As a JSON object."""
        return {
            "feeder": None if self.feeder is None else self.feeder.value,
            "ribbon_type": self.ribbon_type,
            "ribbon_remaining": self.ribbon_remaining,
            "reject_box_full": self.reject_box_full,
            "cover_open": self.cover_open,
        }

    @classmethod
    def from_json(cls, data: object) -> Levels:
        """From a JSON object; raises :class:`PayloadError`."""
        if not isinstance(data, dict):
            raise PayloadError("'levels' must be an object")
        feeder = None if data.get("feeder") is None else _enum(data, "feeder", FeederLevel)
        ribbon_type = _json.optional(data, "ribbon_type", str)
        if ribbon_type is not None and len(ribbon_type) > _MAX_REASON:
            raise PayloadError("'ribbon_type' is too long")
        remaining = _json.optional(data, "ribbon_remaining", int)
        if remaining is not None and remaining < 0:
            raise PayloadError("'ribbon_remaining' must not be negative")
        return cls(
            feeder,
            ribbon_type,
            remaining,
            _json.optional(data, "reject_box_full", bool),
            _json.optional(data, "cover_open", bool),
        )


@dataclass(frozen=True, slots=True)
class DeviceState:
    """One device's state, retained.

    ::

        {"v": 1, "device": str, "kind": "printer" | "encoder" | "pinpad",
         "state": "online" | "busy" | "error" | "offline", "reason": str | null,
         "since": str, "levels": {...}, "counters": {name: int, ...}}

    Attributes:
        device: The device identifier.
        kind: Printer, encoder or PIN pad.
        state: The state.
        reason: Why error or offline (an error code such as ``"printer.jam"``).
        since: When the device entered this state (ISO 8601 UTC).
        levels: Consumable levels.
        counters: Monotonic counters since the publisher started (commands,
            errors, cards_printed, ...).
    """

    device: str
    kind: DeviceKind
    state: DeviceStatus
    reason: str | None
    since: str
    levels: Levels = field(default_factory=Levels)
    counters: Mapping[str, int] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        """Encode as JSON."""
        return _json.dump_object(
            {
                "device": self.device,
                "kind": self.kind.value,
                "state": self.state.value,
                "reason": self.reason,
                "since": self.since,
                "levels": self.levels.to_json(),
                "counters": dict(sorted(self.counters.items())),
            }
        )

    @classmethod
    def from_bytes(cls, payload: bytes) -> DeviceState:
        """Decode; raises :class:`PayloadError` on anything else."""
        data = _json.load_object(payload, _json.TELEMETRY_VERSIONS)
        try:
            device = check_segment(_json.field(data, "device", str), "device")
        except TopicError as exc:  # a bad name in a payload is a payload error
            raise PayloadError("'device' is not a valid identifier") from exc
        counters = data.get("counters", {})
        if not isinstance(counters, dict) or len(counters) > _MAX_COUNTERS:
            raise PayloadError("'counters' must be an object of at most 32 counts")
        for name, count in counters.items():
            if type(count) is not int or count < 0:
                raise PayloadError(f"counter {name!r} must be a non-negative integer")
        return cls(
            device,
            _enum(data, "kind", DeviceKind),
            _enum(data, "state", DeviceStatus),
            _reason(data),
            _json.field(data, "since", str),
            Levels.from_json(data.get("levels", {})),
            dict(counters),
        )
