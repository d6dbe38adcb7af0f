"""The audit log: append-only, hash-chained entries and signed daily checkpoints.

Writers call :meth:`AuditLog.append`; entries are redacted before they are
hashed and stored (no secrets, identity numbers masked). Appends are serialised
in the daemon (one writer per branch database). Once a business day (Beijing
time) is over, :meth:`AuditLog.checkpoint_finished_days` signs its last entry
with the branch signing key. Every finished checkpoint period (an hour by
default) is signed too (:meth:`AuditLog.checkpoint_periods`: an *anchor*), and
noted as pending in the same transaction until :mod:`gateway.audit.anchors`
has sent it to the central monitor. ``branchd audit verify`` re-computes the
whole chain and checks every checkpoint and anchor, against the monitor's copy
when given one: see :func:`security.audit.verify_chain` and
:func:`security.audit.check_anchors`.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Protocol, cast

from sqlalchemy import Table, delete, func, insert, select

from gateway.audit.rows import (
    AuditAnchorPendingRow,
    AuditAnchorRow,
    AuditCheckpointRow,
    AuditEntryRow,
)
from gateway.runtime.business_day import BUSINESS_TZ
from security.audit import (
    GENESIS,
    Anchor,
    AuditEntry,
    AuditFault,
    AuditProblem,
    AuditRecord,
    Checkpoint,
    anchor_bytes,
    check_anchors,
    checkpoint_bytes,
    due_periods,
    entry_hash,
    verify_chain,
)
from security.redaction import mask_personal_numbers, redact_value

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from devices.clock import Clock
    from security.suites import CryptoSuite

__all__ = ["AuditLog", "AuditQueue", "AuditSigner", "VerifyReport"]

#: (actor, action, subject, details) of an entry not yet written.
PendingEntry = tuple[str, str, str, "Mapping[str, Any] | None"]


class AuditSigner(Protocol):
    """Signs checkpoints with the branch key and checks them (a key store adapter)."""

    def sign(self, data: bytes) -> tuple[str, int, bytes]:
        """Sign ``data``; return key id, key version and signature."""
        ...

    def check(self, key_id: str, key_version: int, data: bytes, signature: bytes) -> bool:
        """Tell whether ``signature`` by that key version is valid for ``data``."""
        ...


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What ``branchd audit verify`` found."""

    entries: int
    checkpoints: int
    problem: AuditProblem | None
    anchors: int = 0


_AUDIT = cast("Table", AuditEntryRow.__table__)
_LAST_ENTRY = select(_AUDIT.c.seq, _AUDIT.c.hash).order_by(_AUDIT.c.seq.desc()).limit(1)


def _record(row: AuditEntryRow) -> AuditRecord:
    return AuditRecord(
        entry=AuditEntry(
            seq=row.seq,
            at=row.at,
            actor=row.actor,
            action=row.action,
            subject=row.subject,
            details=json.loads(row.details),
            prev_hash=bytes.fromhex(row.prev_hash),
        ),
        hash=bytes.fromhex(row.hash),
    )


class AuditLog:
    """Appends to, checkpoints and verifies the audit chain in the database."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], suite: CryptoSuite, clock: Clock
    ) -> None:
        """Use ``suite``'s hash (SM3 for gm, SHA-256 for intl) and ``clock`` for times."""
        self._sessions = sessions
        self._suite = suite
        self._clock = clock
        self._lock = asyncio.Lock()

    async def append(
        self, actor: str, action: str, subject: str, details: Mapping[str, Any] | None = None
    ) -> AuditRecord:
        """Add one entry at the end of the chain and return it as stored.

        Personal numbers are masked in every field and secrets removed from
        ``details`` before anything is hashed or stored.
        """
        [record] = await self.append_many([(actor, action, subject, details)])
        return record

    async def append_many(self, items: Sequence[PendingEntry]) -> list[AuditRecord]:
        """Add several entries in one transaction, in order (see :meth:`append`)."""
        prepared = []
        for actor, action, subject, details in items:
            if details:
                # Redact, then round-trip through JSON, so that what is hashed is exactly
                # what a verifier reads back.
                text = json.dumps(
                    redact_value(dict(details)),
                    sort_keys=True,
                    ensure_ascii=False,
                    allow_nan=False,
                )
                parsed = json.loads(text)
            else:  # most read audits: nothing to redact, encode or parse
                text, parsed = "{}", {}
            masked = [mask_personal_numbers(v) for v in (actor, action, subject)]
            prepared.append((*masked, text, parsed))
        records: list[AuditRecord] = []
        async with self._lock, self._sessions.begin() as session:
            last = (await session.execute(_LAST_ENTRY)).first()
            seq = 0 if last is None else last.seq
            prev = GENESIS if last is None else bytes.fromhex(last.hash)
            rows: list[dict[str, Any]] = []
            for actor, action, subject, text, parsed in prepared:
                seq += 1
                entry = AuditEntry(
                    seq=seq, at=self._clock.now(), actor=actor, action=action,
                    subject=subject, details=parsed, prev_hash=prev,
                )  # fmt: skip
                digest = entry_hash(self._suite, entry)
                rows.append(
                    {
                        "seq": seq, "at": entry.at, "actor": actor, "action": action,
                        "subject": subject, "details": text, "prev_hash": prev.hex(),
                        "hash": digest.hex(),
                    }
                )  # fmt: skip
                records.append(AuditRecord(entry=entry, hash=digest))
                prev = digest
            # One multi-row INSERT (Core), not a unit-of-work flush of one object per entry:
            # read audits arrive in batches of hundreds.
            await session.execute(insert(_AUDIT), rows)
        return records

    async def checkpoint_finished_days(self, signer: AuditSigner) -> list[date]:
        """Sign the last entry of every finished business day that has none yet."""
        today = self._clock.now().astimezone(BUSINESS_TZ).date()
        made: list[date] = []
        async with self._lock, self._sessions.begin() as session:
            done = set((await session.scalars(select(AuditCheckpointRow.day))).all())
            first = (await session.scalars(select(func.min(AuditEntryRow.at)))).first()
            if first is None:
                return made
            day = first.astimezone(BUSINESS_TZ).date()
            while day < today:
                if day not in done and (last := await _last_entry_before(session, day)):
                    data = checkpoint_bytes(day, last.seq, bytes.fromhex(last.hash))
                    key_id, version, signature = signer.sign(data)
                    session.add(
                        AuditCheckpointRow(
                            day=day, last_seq=last.seq, last_hash=last.hash, key_id=key_id,
                            key_version=version, signature=signature.hex(),
                            created_at=self._clock.now(),
                        )
                    )  # fmt: skip
                    made.append(day)
                day += timedelta(days=1)
        return made

    async def checkpoint_periods(self, signer: AuditSigner, branch: str, period: int) -> list[int]:
        """Sign the end of every finished ``period`` (seconds) since the first entry.

        Each new anchor is noted as pending in its own transaction (journal first:
        :meth:`pending_anchors` lists what the monitor has not been sent). Returns
        the ends (seconds since the epoch) of the anchors made.
        """
        now = int(self._clock.now().timestamp())
        made: list[int] = []
        async with self._lock, self._sessions.begin() as session:
            first = (await session.scalars(select(func.min(AuditEntryRow.at)))).first()
            if first is None:
                return made
            done = set((await session.scalars(select(AuditAnchorRow.period_end))).all())
            for start, end in due_periods(int(first.timestamp()), now, period, 0):
                if end in done:
                    continue
                last = await _last_entry_before(session, datetime.fromtimestamp(end, UTC))
                seq = 0 if last is None else last.seq
                digest = GENESIS if last is None else bytes.fromhex(last.hash)
                key_id, version, signature = signer.sign(
                    anchor_bytes(branch, start, end, seq, digest)
                )
                session.add(
                    AuditAnchorRow(
                        period_end=end, period_start=start, last_seq=seq, last_hash=digest.hex(),
                        key_id=key_id, key_version=version, signature=signature.hex(),
                        created_at=self._clock.now(),
                    )
                )  # fmt: skip
                session.add(AuditAnchorPendingRow(period_end=end))
                made.append(end)
        return made

    async def anchors(self, *, pending: bool = False) -> list[Anchor]:
        """The anchors, oldest first (``pending``: only those not yet sent)."""
        query = select(AuditAnchorRow).order_by(AuditAnchorRow.period_end)
        if pending:
            query = query.join(
                AuditAnchorPendingRow,
                AuditAnchorPendingRow.period_end == AuditAnchorRow.period_end,
            )
        async with self._sessions() as session:
            return [_anchor(row) for row in (await session.scalars(query)).all()]

    async def pending_anchors(self) -> list[Anchor]:
        """The anchors not yet acknowledged by the broker, oldest first."""
        return await self.anchors(pending=True)

    async def anchor_sent(self, end: int) -> None:
        """Forget that the anchor of the period ending ``end`` waits to be sent."""
        async with self._sessions.begin() as session:
            await session.execute(
                delete(AuditAnchorPendingRow).where(AuditAnchorPendingRow.period_end == end)
            )

    async def verify(
        self,
        signer: AuditSigner | None,
        *,
        branch: str | None = None,
        period: int | None = None,
        grace: int = 0,
        remote: Sequence[Anchor] | None = None,
    ) -> VerifyReport:
        """Re-compute the chain and check the checkpoints; report the first problem.

        With ``branch``, the anchors are checked too: against the chain, against
        ``remote`` (the monitor's copy), and with ``period``, for every period
        finished ``grace`` seconds ago since the first entry, once the log has
        any anchor (a log kept before revision 0010 has none until the daemon
        signs its periods; an anchor table emptied since shows against the
        monitor's copy).
        """
        async with self._sessions() as session:
            rows = await session.stream_scalars(select(AuditEntryRow).order_by(AuditEntryRow.seq))
            records = [_record(row) async for row in rows]
            checkpoints = [
                Checkpoint(
                    day=c.day,
                    last_seq=c.last_seq,
                    last_hash=bytes.fromhex(c.last_hash),
                    key_id=c.key_id,
                    key_version=c.key_version,
                    signature=bytes.fromhex(c.signature),
                )
                for c in (
                    await session.scalars(
                        select(AuditCheckpointRow).order_by(AuditCheckpointRow.day)
                    )
                ).all()
            ]
        check = None if signer is None else signer.check
        problem = verify_chain(self._suite, records, checkpoints, check)
        if branch is None:
            return VerifyReport(entries=len(records), checkpoints=len(checkpoints), problem=problem)
        anchors = await self.anchors()
        due: list[tuple[int, int]] = []
        if period is not None and records and anchors:  # none: a log from before 0010
            now = int(self._clock.now().timestamp())
            due = due_periods(int(records[0].entry.at.timestamp()), now, period, grace)
        found = check_anchors(
            branch,
            stored={record.entry.seq: record.hash for record in records},
            anchors=anchors,
            remote=remote,
            due=due,
            check_signature=check,
        )
        problem = _first(problem, found)
        return VerifyReport(
            entries=len(records), checkpoints=len(checkpoints), problem=problem,
            anchors=len(anchors),
        )  # fmt: skip


def _first(chain: AuditProblem | None, anchors: AuditProblem | None) -> AuditProblem | None:
    """A wiped or truncated chain first, then the smaller sequence number, a gap last."""
    if anchors is None or chain is None:
        return chain or anchors
    if anchors.fault in {AuditFault.WIPED, AuditFault.TRUNCATED}:
        return anchors
    if anchors.fault is AuditFault.CHECKPOINT_MISSING:
        return chain
    return min(chain, anchors, key=lambda p: p.seq)


def _anchor(row: AuditAnchorRow) -> Anchor:
    return Anchor(
        start=row.period_start,
        end=row.period_end,
        last_seq=row.last_seq,
        last_hash=bytes.fromhex(row.last_hash),
        key_id=row.key_id,
        key_version=row.key_version,
        signature=bytes.fromhex(row.signature),
    )


async def _last_entry_before(session: AsyncSession, day: date | datetime) -> AuditEntryRow | None:
    """The last entry of ``day`` (a business day), or the last before a moment."""
    if isinstance(day, datetime):
        end = day
    else:
        end = datetime.combine(day + timedelta(days=1), time(), tzinfo=BUSINESS_TZ).astimezone(UTC)
    return (
        await session.scalars(
            select(AuditEntryRow)
            .where(AuditEntryRow.at < end)
            .order_by(AuditEntryRow.seq.desc())
            .limit(1)
        )
    ).first()


class AuditQueue:
    """Read requests are audited through a queue drained by one writer task.

    A query must not wait for a write transaction; its audit entry is queued and
    written, with whatever else arrives within ``linger`` seconds, in one
    transaction of :meth:`AuditLog.append_many`. State changes are not queued: they are audited
    in line. At shutdown the queue is drained before the database closes.
    """

    def __init__(
        self, log: AuditLog, clock: Clock, *, linger: float = 0.1, limit: int = 10_000
    ) -> None:
        """Queue at most ``limit`` entries; wait ``linger`` seconds to gather a batch."""
        self._log = log
        self._clock = clock
        self._linger = linger
        self._queue: asyncio.Queue[PendingEntry] = asyncio.Queue(maxsize=limit)
        self._in_flight: list[PendingEntry] = []  # kept until written, across restarts

    @property
    def depth(self) -> int:
        """Entries queued or being written."""
        return self._queue.qsize() + len(self._in_flight)

    async def put(
        self, actor: str, action: str, subject: str, details: Mapping[str, Any] | None = None
    ) -> None:
        """Queue one entry."""
        await self._queue.put((actor, action, subject, details))

    async def run(self) -> None:
        """Write queued entries in batches until cancelled (a supervised task)."""
        while True:
            if not self._in_flight:
                self._in_flight = [await self._queue.get()]
                await self._clock.sleep(self._linger)  # let a batch gather
                while not self._queue.empty() and len(self._in_flight) < 500:  # noqa: PLR2004
                    self._in_flight.append(self._queue.get_nowait())
            # A failed write keeps the batch; the supervisor's restart writes it first.
            await self._log.append_many(self._in_flight)
            self._in_flight = []

    async def drain(self) -> None:
        """Write whatever is still queued (at shutdown)."""
        batch, self._in_flight = self._in_flight, []
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        if batch:
            await self._log.append_many(batch)
