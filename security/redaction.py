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
  ``*``.

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


@functools.lru_cache(maxsize=4096)  # field names are few and asked about on every log line
def is_secret_name(name: str) -> bool:
    """Tell whether a field called ``name`` carries a secret (PIN, PIN block, key, ...)."""
    lowered = name.lower().replace("-", "_")
    if lowered in _NOT_SECRET:
        return False
    return lowered in _SECRET_NAMES or lowered.endswith(_SECRET_SUFFIXES)


def mask_personal_numbers(text: str) -> str:
    """Mask identity and bank card numbers in ``text``: first 6 and last 4 kept.

    >>> mask_personal_numbers("id 11010519491231002X ok")
    'id 110105********002X ok'
    """
    if len(text) < _SHORTEST_NUMBER:
        return text
    return _PERSONAL_NUMBER.sub(lambda m: m[1] + "*" * len(m[2]) + m[3], text)


def redact_value(value: Any) -> Any:  # noqa: ANN401 - log values are of any type
    """Return ``value`` with secrets removed and personal numbers masked, recursively.

    Containers are copied, never changed in place: the caller's objects stay intact.
    """
    if isinstance(value, str):
        return mask_personal_numbers(value)
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and is_secret_name(k) else redact_value(v)
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
    """Structlog processor: apply :func:`redact_value` to every field of the event."""
    return {
        key: REDACTED if is_secret_name(key) else redact_value(value)
        for key, value in event_dict.items()
    }
