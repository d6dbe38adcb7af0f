"""Audit checkpoints sent off the box: the branch's signed period ends, to the monitor.

Topic ``sscard/v1/{province}/{branch}/audit/checkpoint`` (QoS 1, never
retained: every checkpoint is a message of its own, and the monitor keeps them
all). Payload, compact UTF-8 JSON::

    {
        "v": 1,
        "start": 1795000000,
        "end": 1795003600,
        "last_seq": 42,
        "last_hash": "<64 hex>",
        "key_id": "branch-signing",
        "key_version": 1,
        "signature": "<hex>",
    }

``start``/``end`` are whole seconds since the epoch (UTC, ``end`` excluded);
``last_seq``/``last_hash`` the last audit entry written before ``end``. The
signature covers :func:`security.audit.anchor_bytes` of the branch named by
the topic; this module only carries it. Hex is lowercase. Any other input
raises :class:`~protocols.mqtt.errors.PayloadError` (or
:class:`~protocols.mqtt.errors.TopicError` for a topic), nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from protocols.mqtt._json import dump_object, field, load_object
from protocols.mqtt.errors import PayloadError, TopicError
from protocols.mqtt.topics import ROOT, check_segment

__all__ = [
    "AUDIT_CHECKPOINT_LEVELS",
    "AuditCheckpoint",
    "audit_checkpoint_filter",
    "audit_checkpoint_topic",
    "parse_audit_checkpoint_topic",
]

#: The levels after ``{province}/{branch}``.
AUDIT_CHECKPOINT_LEVELS: Final = ("audit", "checkpoint")
_VERSION: Final = frozenset({1})
_MAX_TIME: Final = 2**40  # seconds since the epoch: far beyond any real period
_MAX_SEQ: Final = 2**53
_MAX_VERSION: Final = 2**31 - 1
_HASH: Final = re.compile(r"[0-9a-f]{64}")
_SIGNATURE: Final = re.compile(r"(?:[0-9a-f]{2}){1,256}")
_KEY_ID: Final = re.compile(r"[A-Za-z0-9._\-]{1,64}")
_KEYS: Final = frozenset(
    {"v", "start", "end", "last_seq", "last_hash", "key_id", "key_version", "signature"}
)


def audit_checkpoint_topic(province: str, branch: str) -> str:
    """Where ``branch`` publishes its checkpoints."""
    check_segment(province, "province")
    check_segment(branch, "branch")
    return f"{ROOT}/{province}/{branch}/{'/'.join(AUDIT_CHECKPOINT_LEVELS)}"


def audit_checkpoint_filter(province: str) -> str:
    """The filter over every branch's checkpoints in ``province``."""
    check_segment(province, "province")
    return f"{ROOT}/{province}/+/{'/'.join(AUDIT_CHECKPOINT_LEVELS)}"


def parse_audit_checkpoint_topic(topic: str) -> tuple[str, str]:
    """The ``(province, branch)`` of a checkpoint topic.

    Raises:
        TopicError: It is not a checkpoint topic.
    """
    if not isinstance(topic, str):
        raise TopicError("a topic is a string")
    levels = topic.split("/")
    root = ROOT.split("/")
    if len(levels) != len(root) + 4 or levels[: len(root)] != root:
        raise TopicError("not an audit checkpoint topic")
    province, branch, *rest = levels[len(root) :]
    if tuple(rest) != AUDIT_CHECKPOINT_LEVELS:
        raise TopicError("not an audit checkpoint topic")
    return check_segment(province, "province"), check_segment(branch, "branch")


def _bounded(value: int, low: int, high: int, name: str) -> int:
    if not low <= value <= high:
        raise PayloadError(f"{name!r} must be from {low} to {high}")
    return value


@dataclass(frozen=True, slots=True)
class AuditCheckpoint:
    """One signed checkpoint of a branch's audit chain (see the module docstring).

    Attributes:
        start: First second of the period (since the epoch, UTC).
        end: First second after it.
        last_seq: The last entry written before ``end`` (0: none yet).
        last_hash: That entry's chained hash, lowercase hex (32 bytes).
        key_id: The branch signing key.
        key_version: Its version.
        signature: The signature, lowercase hex.
    """

    start: int
    end: int
    last_seq: int
    last_hash: str
    key_id: str
    key_version: int
    signature: str

    def __post_init__(self) -> None:
        """Refuse values the schema does not allow.

        Raises:
            PayloadError: A field is out of range or not of the form.
        """
        for name in ("start", "end", "last_seq", "key_version"):
            if type(getattr(self, name)) is not int:
                raise PayloadError(f"{name!r} must be int")
        for name in ("last_hash", "key_id", "signature"):
            if type(getattr(self, name)) is not str:
                raise PayloadError(f"{name!r} must be str")
        _bounded(self.start, 0, _MAX_TIME - 1, "start")
        _bounded(self.end, self.start + 1, _MAX_TIME, "end")
        _bounded(self.last_seq, 0, _MAX_SEQ, "last_seq")
        _bounded(self.key_version, 1, _MAX_VERSION, "key_version")
        if _HASH.fullmatch(self.last_hash) is None:
            raise PayloadError("'last_hash' must be 64 lowercase hex digits")
        if _KEY_ID.fullmatch(self.key_id) is None:
            raise PayloadError("'key_id' must be 1-64 of A-Z a-z 0-9 . _ -")
        if _SIGNATURE.fullmatch(self.signature) is None:
            raise PayloadError("'signature' must be 1-256 bytes of lowercase hex")

    def to_bytes(self) -> bytes:
        """The payload."""
        return dump_object(
            {
                "start": self.start,
                "end": self.end,
                "last_seq": self.last_seq,
                "last_hash": self.last_hash,
                "key_id": self.key_id,
                "key_version": self.key_version,
                "signature": self.signature,
            },
            version=1,
        )

    @classmethod
    def from_bytes(cls, payload: bytes) -> AuditCheckpoint:
        """Decode a payload.

        Raises:
            PayloadError: Not a checkpoint of the schema (unknown keys included).
        """
        if not isinstance(payload, bytes | bytearray):
            raise PayloadError("a payload is bytes")
        data = load_object(bytes(payload), _VERSION)
        if set(data) != _KEYS:
            raise PayloadError(f"a checkpoint has exactly the keys {sorted(_KEYS)}")
        return cls(
            start=field(data, "start", int),
            end=field(data, "end", int),
            last_seq=field(data, "last_seq", int),
            last_hash=field(data, "last_hash", str),
            key_id=field(data, "key_id", str),
            key_version=field(data, "key_version", int),
            signature=field(data, "signature", str),
        )
