"""The audit log's hash chain and signed checkpoints, as pure functions.

Each entry is hashed together with the hash of the entry before it::

    hash[n] = H( canonical(seq, at, actor, action, subject, details, hash[n-1]) )
    hash[0] = 32 (SM3 / SHA-256) zero bytes

``canonical`` is UTF-8 JSON with sorted keys and no spaces; ``at`` is an ISO
8601 UTC time with microseconds; hashes are lowercase hex inside it. Editing an
entry breaks its own hash, deleting or inserting one breaks the next entry's
link, and reordering breaks both. Rewriting the whole tail consistently is
caught by the daily checkpoints: ``(day, last seq, last hash)`` signed with the
branch key, and by the period checkpoints (*anchors*, hourly by default):
``(branch, period start, period end, last seq, last hash)`` signed with the same
key and sent off the box to the central monitor, so a chain rewritten with the
key, a deleted tail or a wiped table still disagrees with a copy kept elsewhere
(:func:`check_anchors`).

Nothing here reads a clock or a database: callers pass time and records in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from security.suites import CryptoSuite

__all__ = [
    "GENESIS",
    "Anchor",
    "AuditEntry",
    "AuditFault",
    "AuditProblem",
    "AuditRecord",
    "Checkpoint",
    "anchor_bytes",
    "check_anchors",
    "checkpoint_bytes",
    "due_periods",
    "entry_hash",
    "verify_chain",
    "verify_with_public_key",
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
    RECHAINED = "rechained"  # entries rewritten with a recomputed chain: a signed hash differs
    TRUNCATED = "truncated"  # entries after a checkpoint were deleted (a later one exists)
    WIPED = "wiped"  # the monitor holds checkpoints of a chain the branch no longer has
    CHECKPOINT_DELETED = "checkpoint-deleted"  # the monitor holds one the branch does not
    CHECKPOINT_MISSING = "checkpoint-missing"  # a finished period has no checkpoint


@dataclass(frozen=True, slots=True)
class AuditProblem:
    """The first problem found: which entry (sequence number) and why."""

    seq: int
    fault: AuditFault
    detail: str = ""

    def describe(self) -> str:
        """One line for operators."""
        line = f"audit entry #{self.seq}: {self.fault.value}"
        return f"{line} ({self.detail})" if self.detail else line


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


# ---------------------------------------------------------------- anchors


@dataclass(frozen=True, slots=True)
class Anchor:
    """The signed end of one checkpoint period of the chain (kept off the box too).

    ``start`` and ``end`` are seconds since the epoch (UTC), ``end`` excluded;
    ``last_seq``/``last_hash`` are the last entry written before ``end`` (0 and
    :data:`GENESIS` while the chain is empty).
    """

    start: int
    end: int
    last_seq: int
    last_hash: bytes
    key_id: str
    key_version: int
    signature: bytes


def anchor_bytes(branch: str, start: int, end: int, last_seq: int, last_hash: bytes) -> bytes:
    """The canonical bytes an anchor's signature covers (the branch included)."""
    text = f"sscard-branchd audit anchor|{branch}|{start}|{end}|{last_seq}|{last_hash.hex()}"
    return text.encode()


def due_periods(first: int, now: int, period: int, grace: int) -> list[tuple[int, int]]:
    """Every period from the one holding ``first`` that ended ``grace`` seconds before ``now``.

    Periods are aligned to multiples of ``period`` seconds since the epoch.
    """
    start = first // period * period
    found = []
    while start + period + grace <= now:
        found.append((start, start + period))
        start += period
    return found


_RANK: Final = {
    AuditFault.WIPED: 0,
    AuditFault.TRUNCATED: 1,
}
_LAST_RANK: Final = {AuditFault.CHECKPOINT_MISSING: 3}


def _when(moment: int) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


def check_anchors(  # noqa: C901, PLR0913 - one pass per kind of finding, keyword-only
    branch: str,
    *,
    stored: Mapping[int, bytes],
    anchors: Sequence[Anchor],
    remote: Sequence[Anchor] | None = None,
    due: Sequence[tuple[int, int]] = (),
    check_signature: SignatureCheck | None = None,
) -> AuditProblem | None:
    """Check the branch's anchors, the monitor's copy and the coverage; return the first finding.

    Args:
        branch: The branch id the anchors were signed for.
        stored: Every stored entry's hash by sequence number (as stored, chained or not).
        anchors: The branch's own anchors.
        remote: The monitor's copy (``None``: not compared).
        due: The finished periods that must each have an anchor.
        check_signature: Checks the branch key's signatures (``None``: not checked).

    A wiped chain comes first, then a truncated tail, then the others by sequence
    number (a re-chained edit, a forged or deleted checkpoint), and a period
    without a checkpoint last: the first finding names what was done.
    """
    problems: list[AuditProblem] = []
    last_seq = max(stored, default=0)

    def signed(anchor: Anchor) -> bool:
        data = anchor_bytes(branch, anchor.start, anchor.end, anchor.last_seq, anchor.last_hash)
        return check_signature is None or check_signature(
            anchor.key_id, anchor.key_version, data, anchor.signature
        )

    def against_chain(anchor: Anchor, where: str) -> AuditProblem | None:
        period = f"{where} checkpoint of the period ending {_when(anchor.end)}"
        if anchor.last_seq > last_seq:
            return AuditProblem(
                last_seq + 1, AuditFault.TRUNCATED, f"{period} covers #{anchor.last_seq}"
            )
        if anchor.last_seq and stored.get(anchor.last_seq) != anchor.last_hash:
            return AuditProblem(
                anchor.last_seq, AuditFault.RECHAINED, f"{period} signed another hash"
            )
        return None

    local = {anchor.end: anchor for anchor in anchors}
    oldest = min(local, default=2**63)
    for anchor in anchors:
        if not signed(anchor):
            problems.append(
                AuditProblem(
                    anchor.last_seq,
                    AuditFault.CHECKPOINT_SIGNATURE,
                    f"period ending {_when(anchor.end)}",
                )
            )
        elif (found := against_chain(anchor, "the branch's")) is not None:
            problems.append(found)
    for anchor in remote or ():
        if not signed(anchor):
            continue  # not the branch key's: the monitor's copy cannot vouch for it
        if anchor.end < oldest:
            problems.append(
                AuditProblem(
                    anchor.last_seq,
                    AuditFault.WIPED,
                    f"the monitor holds the checkpoint of the period ending {_when(anchor.end)},"
                    " older than any the branch has",
                )
            )
            continue
        if (found := against_chain(anchor, "the monitor's")) is not None:
            problems.append(found)
        elif (mine := local.get(anchor.end)) is None:
            problems.append(
                AuditProblem(
                    anchor.last_seq,
                    AuditFault.CHECKPOINT_DELETED,
                    f"the monitor holds the checkpoint of the period ending {_when(anchor.end)}",
                )
            )
        elif (mine.last_seq, mine.last_hash) != (anchor.last_seq, anchor.last_hash):
            problems.append(
                AuditProblem(
                    min(mine.last_seq, anchor.last_seq),
                    AuditFault.RECHAINED,
                    f"the branch re-signed the period ending {_when(anchor.end)}",
                )
            )
    previous = 0
    for start, end in due:
        kept = local.get(end)
        if kept is None:
            problems.append(
                AuditProblem(
                    previous + 1,
                    AuditFault.CHECKPOINT_MISSING,
                    f"no checkpoint of the period {_when(start)} to {_when(end)}",
                )
            )
            break
        previous = kept.last_seq
    return min(
        problems,
        key=lambda p: (_RANK.get(p.fault, _LAST_RANK.get(p.fault, 2)), p.seq),
        default=None,
    )


def verify_with_public_key(public_key: bytes, data: bytes, signature: bytes) -> bool:
    """Check an ECDSA P-256 / SHA-256 signature (DER) with a public key (PEM or DER).

    This is how the branch key store signs (:meth:`security.keystore.KeyStore.sign`);
    a party that holds only the public key (the central monitor) checks with it.
    """
    from cryptography.exceptions import InvalidSignature  # noqa: PLC0415 - only for a check
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415

    try:
        key = (
            serialization.load_pem_public_key(public_key)
            if public_key.lstrip().startswith(b"-----")
            else serialization.load_der_public_key(public_key)
        )
    except (ValueError, TypeError):
        return False
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    try:
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True
