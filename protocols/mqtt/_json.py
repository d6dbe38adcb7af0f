"""Strict JSON helpers shared by the payload codecs (private).

Every payload is read by :func:`load_object`, through :mod:`protocols._strict_json`:
a payload that holds ``NaN``, a number beyond a float or a lone surrogate is
refused, so whatever decodes encodes again.
"""

from __future__ import annotations

import json
from typing import Any, Final, TypeVar

from protocols import _strict_json
from protocols.mqtt.errors import PayloadError

#: The version every message of the agent protocol and every telemetry kind of
#: version 1 carries; a version-1 reader accepts nothing else.
SCHEMA_VERSION: Final = 1
#: The telemetry schema: version 2 added the branch reports (``daemon/{report}``)
#: and changed no version-1 message, so a version-2 reader accepts both.
TELEMETRY_VERSION: Final = 2
TELEMETRY_VERSIONS: Final = frozenset({1, 2})
_T = TypeVar("_T")


def load_object(
    payload: bytes, versions: frozenset[int] = frozenset({SCHEMA_VERSION})
) -> dict[str, Any]:
    """Parse ``payload`` as a UTF-8 JSON object whose ``"v"`` is one of ``versions``."""
    try:
        data = _strict_json.loads(payload.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise PayloadError("not a UTF-8 JSON document") from None
    if not isinstance(data, dict):
        raise PayloadError("a payload is a JSON object")
    version = data.get("v")
    if type(version) is not int or version not in versions:
        raise PayloadError(f"schema version must be one of {sorted(versions)}")
    return data


def dump_object(data: dict[str, Any], version: int = SCHEMA_VERSION) -> bytes:
    """Serialize with the schema version first, compact, UTF-8."""
    return json.dumps({"v": version, **data}, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8"
    )


def field(data: dict[str, Any], key: str, kind: type[_T]) -> _T:
    """``data[key]``, which must be exactly of ``kind`` (``bool`` is not an ``int``)."""
    value = data.get(key)
    if type(value) is not kind:
        raise PayloadError(f"{key!r} must be {kind.__name__}")
    return value  # checked exactly above


def optional(data: dict[str, Any], key: str, kind: type[_T]) -> _T | None:
    """``data[key]`` of ``kind``, or ``None`` when it is missing or null."""
    if data.get(key) is None:
        return None
    return field(data, key, kind)
