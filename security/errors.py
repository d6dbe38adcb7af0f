"""The root of every error raised by :mod:`security`.

Each module of the package defines its own family under :class:`SecurityError`
(envelopes, key store, PIN blocks, ...). Errors carry what a caller needs in
attributes; their messages, ``repr`` and attributes never hold key material or
plaintext.
"""

from __future__ import annotations

__all__ = ["SecurityError"]


class SecurityError(Exception):
    """Root of every error raised by the ``security`` package."""
