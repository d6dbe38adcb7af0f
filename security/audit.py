"""The audit log's hash chain and signed checkpoints, as pure functions.

Each entry is hashed together with the hash of the entry before it::

    hash[n] = H( canonical(seq, at, actor, action, subject, details, hash[n-1]) )
    hash[0] = 32 (SM3 / SHA-256) zero bytes

``canonical`` is UTF-8 JSON with sorted keys and no spaces; ``at`` is an ISO
8601 UTC time with microseconds; hashes are lowercase hex inside it. Editing an
entry breaks its own hash, deleting or inserting one breaks the next entry's
link, and reordering breaks both. Rewriting the whole tail consistently is
caught by the daily checkpoints: ``(day, last seq, last hash)`` signed with the
branch key.

Nothing here reads a clock or a database: callers pass time and records in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from security.suites import CryptoSuite

__all__ = [
    "GENESIS",
    "AuditEntry",
    "AuditFault",
    "AuditProblem",
    "AuditRecord",
    "Checkpoint",
    "checkpoint_bytes",
    "entry_hash",
    "verify_chain",
]

GENESIS = bytes(32)

#: verify(key_id, key_version, data, signature) -> bool
SignatureCheck = Callable[[str, int, bytes, bytes], bool]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """The content of one entry, as its hash covers it."""

    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    details: Mapping[str, Any]
    prev_hash: bytes

    def canonical(self) -> bytes:
        """The canonical bytes the entry's hash covers."""
        if self.at.tzinfo is None:
            raise ValueError("naive datetime: audit times are aware UTC")
        document = {
            "action": self.action,
            "actor": self.actor,
            "at": self.at.astimezone(UTC).isoformat(timespec="microseconds"),
            "details": self.details,
            "prev": self.prev_hash.hex(),
            "seq": self.seq,
            "subject": self.subject,
        }
        return json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One stored audit entry with its chained hash."""

    entry: AuditEntry
    hash: bytes


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The signed end of one business day of the chain."""

    day: date
    last_seq: int
    last_hash: bytes
    key_id: str
    key_version: int
    signature: bytes


class AuditFault(StrEnum):
    """Why verification failed (stable codes for the CLI and alerts)."""

    EDITED = "edited"  # the entry's content does not match its hash
    MISSING = "missing"  # a sequence number is absent (entry deleted)
    OUT_OF_ORDER = "out-of-order"  # duplicate or decreasing sequence numbers
    BROKEN_LINK = "broken-link"  # the entry does not follow the one before it
    CHECKPOINT_SIGNATURE = "checkpoint-signature"  # a checkpoint's signature is invalid
    CHECKPOINT_MISMATCH = "checkpoint-mismatch"  # the chain differs from what was signed


@dataclass(frozen=True, slots=True)
class AuditProblem:
    """The first problem found: which entry (sequence number) and why."""

    seq: int
    fault: AuditFault

    def describe(self) -> str:
        """One line for operators."""
        return f"audit entry #{self.seq}: {self.fault.value}"


def entry_hash(suite: CryptoSuite, entry: AuditEntry) -> bytes:
    """The chained hash of ``entry`` under ``suite``'s hash (SM3 or SHA-256)."""
    return suite.hash(entry.canonical())


def checkpoint_bytes(day: date, last_seq: int, last_hash: bytes) -> bytes:
    """The canonical bytes a checkpoint's signature covers."""
    text = f"sscard-branchd audit checkpoint|{day.isoformat()}|{last_seq}|{last_hash.hex()}"
    return text.encode()


def verify_chain(
    suite: CryptoSuite,
    records: Iterable[AuditRecord],
    checkpoints: Iterable[Checkpoint] = (),
    check_signature: SignatureCheck | None = None,
) -> AuditProblem | None:
    """Check records (in stored sequence order) and checkpoints; return the first problem.

    The first problem is the one with the smallest sequence number, so an
    operator looks at the earliest entry that cannot be trusted.
    """
    problems: list[AuditProblem] = []
    hashes: dict[int, bytes] = {}
    expected, prev = 1, GENESIS
    for record in records:
        seq = record.entry.seq
        if seq < expected:
            problems.append(AuditProblem(seq, AuditFault.OUT_OF_ORDER))
            break
        if seq > expected:
            problems.append(AuditProblem(expected, AuditFault.MISSING))
            break
        if entry_hash(suite, record.entry) != record.hash:
            problems.append(AuditProblem(seq, AuditFault.EDITED))
            break
        if record.entry.prev_hash != prev:
            problems.append(AuditProblem(seq, AuditFault.BROKEN_LINK))
            break
        hashes[seq] = record.hash
        prev, expected = record.hash, expected + 1
    for checkpoint in checkpoints:
        data = checkpoint_bytes(checkpoint.day, checkpoint.last_seq, checkpoint.last_hash)
        if check_signature is not None and not check_signature(
            checkpoint.key_id, checkpoint.key_version, data, checkpoint.signature
        ):
            problems.append(AuditProblem(checkpoint.last_seq, AuditFault.CHECKPOINT_SIGNATURE))
        elif hashes.get(checkpoint.last_seq, checkpoint.last_hash) != checkpoint.last_hash or (
            checkpoint.last_seq >= expected and not problems
        ):
            problems.append(AuditProblem(checkpoint.last_seq, AuditFault.CHECKPOINT_MISMATCH))
    return min(problems, key=lambda p: p.seq, default=None)
