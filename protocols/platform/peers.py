"""The peer-keys file: who signs envelopes with which key, as JSON (pure encode/decode).

The branch and the simulators (and any upstream system in a demo set-up)
exchange their envelope keys through this file. One entry per key set version
of one sender::

    {
        "format": "sscard-branchd/peer-keys",
        "version": 1,
        "keys": [
            {
                "sender": "PLATFORM-650000",
                "suite": "gm",
                "key_id": "platform-sig",
                "key_version": 1,
                "public_key": "04...",  # uncompressed SEC 1 point, 65 bytes, hex
                "aead_key": "00112233...",  # the sender's symmetric envelope key, hex
            }
        ],
    }

The envelope's AEAD key is symmetric: anyone who holds a sender's ``aead_key``
can read what that sender seals. A peer-keys file is therefore secret and is
written with mode 0600 (the file I/O lives in ``gateway.upstream.peers`` and
``simulators.platform.peers``). An *identity* file has the same shape and adds
``signing_key`` (the 32-byte private scalar, hex) to each entry: it belongs to
one party only and never goes into a shared file (:func:`encode_peer_keys`
refuses private entries unless asked).

:func:`decode_peer_keys` raises only :class:`PeerKeysDecodeError`, whatever
the bytes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final

from protocols import _strict_json
from protocols.platform.errors import MessageDecodeError, MessageEncodeError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = [
    "AEAD_KEY_SIZES",
    "FORMAT",
    "PeerKey",
    "PeerKeysDecodeError",
    "PeerKeysEncodeError",
    "decode_peer_keys",
    "encode_peer_keys",
    "merge_peer_keys",
]

#: The ``format`` member of every peer-keys document.
FORMAT: Final = "sscard-branchd/peer-keys"
_VERSION: Final = 1
#: AEAD key length by envelope suite (SM4-GCM, AES-256-GCM), bytes.
AEAD_KEY_SIZES: Final = {"gm": 16, "intl": 32}
_PUBLIC_KEY_SIZE: Final = 65  # uncompressed SEC 1 point on a 256-bit curve
_PRIVATE_KEY_SIZE: Final = 32
_NAME_RE: Final = re.compile(r"[\x21-\x7e]{1,64}")  # an envelope text field
_MAX_VERSION: Final = 2**31 - 1
_MAX_DOCUMENT: Final = 1024 * 1024
_MEMBERS: Final = frozenset(
    {"sender", "suite", "key_id", "key_version", "public_key", "aead_key", "signing_key"}
)


class PeerKeysDecodeError(MessageDecodeError):
    """Bytes that are not a peer-keys document (``reason`` says why; no key material)."""


class PeerKeysEncodeError(MessageEncodeError):
    """Entries that cannot be written (a private entry in a shared file, a bad field)."""


@dataclass(frozen=True, slots=True)
class PeerKey:
    """One key set version of one sender.

    Attributes:
        sender: The sender's envelope name.
        suite: ``"gm"`` or ``"intl"``.
        key_id: The key set's id.
        key_version: The key set's version (1 and up).
        public_key: The verify key, an uncompressed SEC 1 point (65 bytes).
        aead_key: The sender's symmetric envelope key (16 bytes gm, 32 intl).
        signing_key: The private scalar (32 bytes): identity files only.
    """

    sender: str
    suite: str
    key_id: str
    key_version: int
    public_key: bytes = field(repr=False)
    aead_key: bytes = field(repr=False)
    signing_key: bytes | None = field(default=None, repr=False)

    @property
    def index(self) -> tuple[str, str, int]:
        """``(sender, key_id, key_version)``: what an envelope names."""
        return self.sender, self.key_id, self.key_version

    def public(self) -> PeerKey:
        """The same entry without the signing key (what others may hold)."""
        return replace(self, signing_key=None)


def _problem(entry: PeerKey) -> str | None:  # noqa: PLR0911 - one answer per rule
    """What is wrong with an entry, or ``None``."""
    if not _NAME_RE.fullmatch(entry.sender) or not _NAME_RE.fullmatch(entry.key_id):
        return "bad_name"
    if entry.suite not in AEAD_KEY_SIZES:
        return "bad_suite"
    if isinstance(entry.key_version, bool) or not 1 <= entry.key_version <= _MAX_VERSION:
        return "bad_key_version"
    if len(entry.public_key) != _PUBLIC_KEY_SIZE:
        return "bad_public_key"
    if len(entry.aead_key) != AEAD_KEY_SIZES[entry.suite]:
        return "bad_aead_key"
    if entry.signing_key is not None and len(entry.signing_key) != _PRIVATE_KEY_SIZE:
        return "bad_signing_key"
    return None


def encode_peer_keys(entries: Iterable[PeerKey], *, private: bool = False) -> bytes:
    """The JSON document of ``entries`` (sorted, one per line set, UTF-8).

    Args:
        entries: The key set versions; no two with the same index.
        private: Allow entries with a signing key (an identity file).

    Raises:
        PeerKeysEncodeError: A bad entry, a duplicate, or a private one when not allowed.
    """
    seen: set[tuple[str, str, int]] = set()
    keys = []
    for entry in sorted(entries, key=lambda e: e.index):
        problem = _problem(entry)
        if problem is not None:
            raise PeerKeysEncodeError(problem)
        if entry.signing_key is not None and not private:
            raise PeerKeysEncodeError("private entry in a shared peer-keys file")
        if entry.index in seen:
            raise PeerKeysEncodeError("duplicate entry")
        seen.add(entry.index)
        item: dict[str, str | int] = {
            "sender": entry.sender,
            "suite": entry.suite,
            "key_id": entry.key_id,
            "key_version": entry.key_version,
            "public_key": entry.public_key.hex(),
            "aead_key": entry.aead_key.hex(),
        }
        if entry.signing_key is not None:
            item["signing_key"] = entry.signing_key.hex()
        keys.append(item)
    document = {"format": FORMAT, "version": _VERSION, "keys": keys}
    return (json.dumps(document, indent=2, ensure_ascii=True) + "\n").encode()


def _text(raw: dict[str, object], name: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str):
        raise PeerKeysDecodeError("bad_entry", f"{name} is not text")
    return value


def _bytes(raw: dict[str, object], name: str) -> bytes:
    value = _text(raw, name)
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise PeerKeysDecodeError("bad_entry", f"{name} is not hex") from None


def _entry(raw: object) -> PeerKey:
    if not isinstance(raw, dict) or not set(raw) <= _MEMBERS:
        raise PeerKeysDecodeError("bad_entry", "not an object of known members")
    version = raw.get("key_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise PeerKeysDecodeError("bad_entry", "key_version is not a number")
    entry = PeerKey(
        sender=_text(raw, "sender"),
        suite=_text(raw, "suite"),
        key_id=_text(raw, "key_id"),
        key_version=version,
        public_key=_bytes(raw, "public_key"),
        aead_key=_bytes(raw, "aead_key"),
        signing_key=_bytes(raw, "signing_key") if "signing_key" in raw else None,
    )
    problem = _problem(entry)
    if problem is not None:
        raise PeerKeysDecodeError(problem)
    return entry


def decode_peer_keys(data: bytes) -> list[PeerKey]:
    """The entries of a peer-keys (or identity) document.

    Raises:
        PeerKeysDecodeError: Not such a document (``reason``: ``too_large``,
            ``not_json``, ``bad_format``, ``bad_entry``, ``bad_name``,
            ``bad_suite``, ``bad_key_version``, ``bad_public_key``,
            ``bad_aead_key``, ``bad_signing_key``, ``duplicate``).
    """
    if len(data) > _MAX_DOCUMENT:
        raise PeerKeysDecodeError("too_large")
    try:
        document = _strict_json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise PeerKeysDecodeError("not_json") from None
    if (
        not isinstance(document, dict)
        or document.get("format") != FORMAT
        or document.get("version") != _VERSION
        or not isinstance(document.get("keys"), list)
    ):
        raise PeerKeysDecodeError("bad_format")
    entries = [_entry(raw) for raw in document["keys"]]
    if len({e.index for e in entries}) != len(entries):
        raise PeerKeysDecodeError("duplicate")
    return entries


def merge_peer_keys(existing: Sequence[PeerKey], new: Iterable[PeerKey]) -> list[PeerKey]:
    """``existing`` with ``new`` added; a new entry replaces one with the same index."""
    merged = {e.index: e for e in existing}
    for entry in new:
        merged[entry.index] = entry
    return sorted(merged.values(), key=lambda e: e.index)
