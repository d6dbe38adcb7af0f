"""Redaction of secrets and masking of personal data in anything we log.

Two rules, applied to every log record (structlog events and the standard
library records routed through structlog) *after* exceptions are formatted, so
tracebacks are covered too:

* a value stored under a secret-bearing name (``pin``, ``pin_block``,
  ``master_key``, ``password``, ``*_key``, ...) is replaced by ``[REDACTED]``;
  nothing is kept, not even the length;
* inside any string, a standalone run of 15 to 19 digits (18-digit identity
  numbers with their ``X`` check character, 15-digit old identity numbers, bank
  card numbers) keeps its first 6 and last 4 characters and the rest becomes
  ``*``; a standalone mainland mobile number (11 digits from ``13`` to ``19``,
  with or without ``+86``) keeps its first 3 and last 4;
* a value stored under a personal field's name (``holder_name``, ``aac003``,
  ``address``, ``phone``, ...; ``name`` when the value is written in Chinese
  characters, so task and device names stay readable) is masked: a name keeps
  its first character, an address its first 6, a phone number as above.

The same functions serve telemetry, which must carry masked forms only.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, MutableMapping
from typing import Any, Final

__all__ = [
    "REDACTED",
    "is_secret_name",
    "mask_address",
    "mask_name",
    "mask_personal_numbers",
    "redact_event",
    "redact_value",
]

REDACTED: Final = "[REDACTED]"

#: Names whose values are secret wherever they appear (compared lower-case).
_SECRET_NAMES: Final = frozenset(
    {
        "authorization",
        "cookie",
        "cryptogram",
        "key",
        "key_bytes",
        "key_material",
        "passwd",
        "password",
        "pin",
        "pin_block",
        "pin_blocks",
        "pinblock",
        "pins",
        "secret",
        "token",
    }
)
#: Name endings that mark a secret (``old_pin``, ``pin_block``, ``master_key``, ...).
_SECRET_SUFFIXES: Final = (
    "_key",
    "_pin",
    "_pinblock",
    "_pin_block",
    "_password",
    "_secret",
    "_token",
)
#: Names that end like a secret but are identifiers, safe to log.
_NOT_SECRET: Final = frozenset({"idempotency_key", "public_key", "sort_key"})

_SHORTEST_NUMBER: Final = 15  # no shorter text holds a number to mask
# 15 to 19 digits, the last one possibly the identity-number check character X,
# not glued to other letters or digits (so ids and hex strings are left alone).
_PERSONAL_NUMBER: Final = re.compile(
    r"(?<![0-9A-Za-z])(\d{6})(\d{5,9})(\d{3}[0-9Xx])(?![0-9A-Za-z])"
)
_SHORTEST_MOBILE: Final = 11
#: A mainland mobile number, standalone (``+86`` or ``86`` before it allowed).
_MOBILE: Final = re.compile(r"(?<![0-9A-Za-z])((?:\+?86)?1[3-9]\d)(\d{4})(\d{4})(?![0-9A-Za-z])")
#: Field names whose values are a person's name, address or phone (compared lower-case).
_NAME_FIELDS: Final = frozenset(
    {"aac003", "agent_name", "applicant_name", "handler_name", "holder_name", "name_zh"}
)
_ADDRESS_FIELDS: Final = frozenset({"aae006", "address", "holder_address"})
_PHONE_FIELDS: Final = frozenset({"aae005", "mobile", "phone", "telephone"})
#: Any CJK unified ideograph: a ``name`` written so is a person's, not a task's.
_CJK: Final = re.compile(r"[\u3400-\u9fff]")
_ADDRESS_KEPT: Final = 6


@functools.lru_cache(maxsize=4096)  # field names are few and asked about on every log line
def is_secret_name(name: str) -> bool:
    """Tell whether a field called ``name`` carries a secret (PIN, PIN block, key, ...)."""
    lowered = name.lower().replace("-", "_")
    if lowered in _NOT_SECRET:
        return False
    return lowered in _SECRET_NAMES or lowered.endswith(_SECRET_SUFFIXES)


def mask_personal_numbers(text: str) -> str:
    """Mask identity, bank card and mobile numbers in ``text``.

    Identity and bank card numbers keep their first 6 and last 4 characters,
    mobile numbers their first 3 and last 4.

    >>> mask_personal_numbers("id 11010519491231002X ok")
    'id 110105********002X ok'
    >>> mask_personal_numbers("tel 13812345678")
    'tel 138****5678'
    """
    if len(text) < _SHORTEST_MOBILE:
        return text
    if len(text) >= _SHORTEST_NUMBER:
        text = _PERSONAL_NUMBER.sub(lambda m: m[1] + "*" * len(m[2]) + m[3], text)
    return _MOBILE.sub(lambda m: m[1] + "****" + m[3], text)


def mask_name(name: str) -> str:
    """A person's name with its first character only: ``张晓明`` -> ``张**``."""
    return name[:1] + "*" * (len(name) - 1)


def mask_address(address: str) -> str:
    """An address with its first 6 characters only (about province and city)."""
    return address[:_ADDRESS_KEPT] + ("****" if len(address) > _ADDRESS_KEPT else "")


def _mask_field(name: str, value: Any) -> Any:  # noqa: ANN401 - log values are of any type
    """``value`` masked as the personal field ``name`` holds it, or redacted as usual."""
    if not isinstance(value, str):
        return redact_value(value)
    lowered = name.lower()
    if lowered in _NAME_FIELDS or (lowered == "name" and _CJK.search(value)):
        return mask_name(value)
    if lowered in _ADDRESS_FIELDS:
        return mask_address(value)
    if lowered in _PHONE_FIELDS:
        masked = mask_personal_numbers(value)
        return masked if masked != value else mask_name(value)
    return mask_personal_numbers(value)


def redact_value(value: Any) -> Any:  # noqa: ANN401 - log values are of any type
    """Return ``value`` with secrets removed and personal numbers masked, recursively.

    Containers are copied, never changed in place: the caller's objects stay intact.
    """
    if isinstance(value, str):
        return mask_personal_numbers(value)
    if isinstance(value, Mapping):
        return {
            k: _redact_field(k, v) if isinstance(k, str) else redact_value(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v) for v in value]
    if isinstance(value, bytes | bytearray | memoryview):
        # Raw bytes are logged as hex at debug level only, under a named field;
        # a bare bytes value is kept out: it may be anything.
        return f"<{len(value)} bytes>"
    return value


def redact_event(
    _logger: object, _method: str, event_dict: MutableMapping[str, Any]
) -> dict[str, Any]:
    """Structlog processor: redact every field of the event by its name and value."""
    return {key: _redact_field(key, value) for key, value in event_dict.items()}


def _redact_field(name: str, value: Any) -> Any:  # noqa: ANN401 - log values are of any type
    return REDACTED if is_secret_name(name) else _mask_field(name, value)
