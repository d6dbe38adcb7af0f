r"""JSON as RFC 8259 defines it, for every protocol that carries JSON (private).

The standard library's reader is lenient in three ways a codec cannot afford,
because what it then decodes cannot be encoded again:

* ``NaN``, ``Infinity`` and ``-Infinity`` are not JSON, and neither is a number
  too large for a float (``1e400`` reads as infinity, which ``json.dumps``
  writes as ``Infinity``);
* a ``\uD800``-style escape of a lone surrogate reads as a string that no UTF-8
  encoder accepts (RFC 8259, section 8.2: such strings are not interoperable);
* ``json.loads`` on bytes decodes them with ``surrogatepass``, so the UTF-8
  bytes of a surrogate (``ED A0 80``) read as one too.

:func:`loads` refuses all three with :class:`ValueError`, as it refuses any other
document that is not JSON; deep nesting still raises :class:`RecursionError`.
Callers turn both into their own decode error.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

__all__ = ["loads", "loads_bytes"]

#: A JSON escape of a surrogate code point (``\uD800``-``\uDFFF``).
_ESCAPED_SURROGATE: Final = re.compile(r"\\u[dD][89abcdefABCDEF]")
#: A surrogate code point.
_SURROGATE: Final = re.compile(r"[\ud800-\udfff]")


def _refuse_constant(name: str) -> Any:  # noqa: ANN401 - json hook signature
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("a number too large for a float")
    return value


#: One decoder for every document (``json.loads`` with hooks builds one per call).
_DECODER: Final = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite)


def _has_surrogate(value: object) -> bool:
    """Whether any string (key or value) in a decoded document holds a surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def loads(text: str) -> Any:  # noqa: ANN401 - a JSON document is any of its types
    """Parse one JSON document.

    Raises:
        ValueError: Not JSON, a non-finite number, or a lone surrogate in a string.
        RecursionError: Nested too deeply.
    """
    value = _DECODER.decode(text)
    # Valid pairs (an escaped astral character) come out combined, so any
    # surrogate left in a decoded string is a lone one. Only a document that
    # spells one, escaped or raw, can hold one: most are never walked.
    spelt = _ESCAPED_SURROGATE.search(text) or (not text.isascii() and _SURROGATE.search(text))
    if spelt and _has_surrogate(value):
        raise ValueError("a string holds a lone surrogate")
    return value


def loads_bytes(data: bytes) -> Any:  # noqa: ANN401 - a JSON document is any of its types
    """Parse one JSON document in UTF-8 (or UTF-16/32, told apart as ``json.loads`` does).

    Raises:
        ValueError: Not text in that encoding, or as :func:`loads`.
        RecursionError: Nested too deeply.
    """
    return loads(data.decode(json.detect_encoding(data)))
