"""The outbox relay: a supervised background coroutine that sends queued messages.

Each round takes the head message of every card (the oldest pending message
per ``card_key``) that is due, in batches of ``batch_size`` per target, and
sends each batch as one enveloped document. Before sending, a batch is
*claimed*: its attempt counts go up and its next attempt is scheduled after a
capped, jittered backoff delay (drawn from the injected ``random.Random``), in
a committed transaction. So a relay killed mid-send loses nothing: the batch
is sent again when its delay has passed, with the repeat flag, and the
receiver, which de-duplicates by message id, absorbs the duplicate.

Delivered messages are marked so; a message the receiver refuses (not found,
wrong state, invalid) or one past its expiry goes to the dead-letter list; a
transient failure leaves it scheduled. While a target's circuit breaker is
open nothing is sent to it; when the breaker lets a trial through, only one
batch goes (the probe). Order per card holds because a card's next message is
not taken while an earlier one is pending.

Run it under :class:`gateway.runtime.supervisor.Supervisor` (``spawn("outbox-relay",
relay.run)``); call :meth:`Relay.wake` after committing an enqueue to send at
once instead of at the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from datetime import timedelta
from typing import TYPE_CHECKING, Final, Protocol

import structlog
from sqlalchemy import func, select, update

from devices.backoff import BackoffPolicy
from gateway.upstream.errors import UpstreamError, UpstreamUnavailableError
from gateway.upstream.models import OutboxRow, OutboxState
from gateway.upstream.outbox import SENDABLE
from protocols.platform import Request, Result, Status
from security.keystore import KeyStoreError

if TYPE_CHECKING:
    import random
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from devices.clock import Clock
    from gateway.upstream.breaker import CircuitBreaker
    from gateway.upstream.outbox import Outbox

__all__ = ["OutboxSender", "Relay", "RelayStats"]

log = structlog.get_logger(__name__)

#: Statuses after which a message is retried; any other refusal is final.
_RETRYABLE: Final = frozenset({Status.ERROR})
_MAX_ERROR: Final = 255
_MAX_EXPONENT: Final = 64


class OutboxSender(Protocol):
    """Delivers batches of outbox items to one target (the platform or bank client)."""

    @property
    def target(self) -> str:
        """``platform`` or ``bank``."""
        ...

    @property
    def breaker(self) -> CircuitBreaker:
        """The target's circuit breaker."""
        ...

    async def send_batch(self, items: Sequence[Request]) -> list[Result]:
        """Send the items in one document; results in the same order."""
        ...


class RelayStats:
    """Counts since the relay was made (for tests, logs and metrics)."""

    def __init__(self) -> None:
        """Start at zero."""
        self.delivered = 0
        self.dead = 0
        self.failed_batches = 0
        self.rounds = 0


class Relay:
    """Sends outbox messages with capped jittered backoff, in order per card."""

    def __init__(  # noqa: PLR0913 - keyword-only wiring
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        senders: Mapping[str, OutboxSender],
        clock: Clock,
        rng: random.Random,
        policy: BackoffPolicy | None = None,
        batch_size: int = 100,
        max_in_flight: int = 2,
        poll_interval: float = 2.0,
    ) -> None:
        """Configure the relay.

        Args:
            sessions: One session per unit of work.
            outbox: Opens stored payloads.
            senders: Clients by target (``platform``, ``bank``).
            clock: Wall time for schedules, ``sleep`` for polling.
            rng: Jitter of the retry delays.
            policy: Retry delays (initial, maximum, factor).
            batch_size: Messages per document.
            max_in_flight: Documents sent at once per round.
            poll_interval: Seconds between rounds when idle (or until :meth:`wake`).
        """
        if batch_size < 1 or max_in_flight < 1 or poll_interval <= 0:
            raise ValueError("batch_size and max_in_flight >= 1, poll_interval > 0")
        self._sessions = sessions
        self._outbox = outbox
        self._senders = dict(senders)
        self._clock = clock
        self._rng = rng
        self._policy = policy or BackoffPolicy(initial=2.0, maximum=300.0)
        self._batch_size = batch_size
        self._in_flight = max_in_flight
        self._poll = poll_interval
        self._wakeup = asyncio.Event()
        self.stats = RelayStats()

    def wake(self) -> None:
        """Start the next round now (call after committing an enqueue)."""
        self._wakeup.set()

    async def run(self) -> None:
        """Relay forever (a supervised task); every round that finds nothing waits."""
        log.info("outbox_relay_started")
        while True:
            # Cleared before the round, not after: a wake during the round (a commit
            # the round's query missed) starts the next round at once.
            self._wakeup.clear()
            handled = await self.run_once()
            if handled == 0:
                await self._idle()

    async def drain(self, *, max_rounds: int = 1_000_000) -> int:
        """Run rounds until one handles nothing; return the messages handled."""
        total = 0
        for _ in range(max_rounds):
            handled = await self.run_once()
            if handled == 0:
                break
            total += handled
        return total

    async def _idle(self) -> None:
        sleeper = asyncio.ensure_future(self._clock.sleep(self._poll))
        waiter = asyncio.ensure_future(self._wakeup.wait())
        try:
            await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waiter):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _delay(self, attempts: int) -> float:
        """The retry delay after ``attempts`` sends: equal jitter over a capped ceiling."""
        policy = self._policy
        exponent = min(max(attempts - 1, 0), _MAX_EXPONENT)
        ceiling = min(policy.maximum, policy.initial * policy.factor**exponent)
        return self._rng.uniform(ceiling / 2, ceiling)

    async def run_once(self) -> int:
        """One round: expire, claim, send and record; return the messages handled."""
        self.stats.rounds += 1
        now = self._clock.now()
        limit = self._batch_size * self._in_flight * max(len(self._senders), 1)
        async with self._sessions() as session:
            heads = select(func.min(OutboxRow.id)).where(OutboxRow.state == OutboxState.PENDING)
            rows = list(
                await session.scalars(
                    select(OutboxRow)
                    .where(
                        OutboxRow.id.in_(heads.group_by(OutboxRow.card_key).scalar_subquery()),
                        OutboxRow.next_attempt_at <= now,
                    )
                    .order_by(OutboxRow.id)
                    .limit(limit)
                )
            )
        if not rows:
            return 0
        handled = 0
        dead: list[tuple[int, str]] = []
        by_target: dict[str, list[OutboxRow]] = defaultdict(list)
        for row in rows:
            if row.expires_at <= now:
                dead.append((row.id, "expired"))
            elif (row.target, row.operation) not in SENDABLE or row.target not in self._senders:
                # Never reached through the API; refuse rather than send a live-only command.
                dead.append((row.id, "not sendable from the outbox"))
            else:
                by_target[row.target].append(row)
        if dead:
            await self._bury(dead)
            handled += len(dead)
        batches: list[tuple[OutboxSender, list[OutboxRow]]] = []
        for target, waiting in by_target.items():
            sender = self._senders[target]
            if sender.breaker.retry_after() > 0:
                continue
            chunks = [
                waiting[i : i + self._batch_size] for i in range(0, len(waiting), self._batch_size)
            ]
            # A breaker that is not closed lets one probe through: send one batch only.
            batches += [
                (sender, chunk) for chunk in chunks[: 1 if not sender.breaker.closed else None]
            ]
        if not batches:
            return handled
        await self._claim([row for _, chunk in batches for row in chunk], now)
        outcomes = await asyncio.gather(*(self._send(sender, chunk) for sender, chunk in batches))
        return handled + sum(outcomes)

    async def _claim(self, rows: Sequence[OutboxRow], now: datetime) -> None:
        """Count the attempt and schedule the retry before sending (crash-safe)."""
        changes = []
        for row in rows:
            row.attempts += 1
            retry_at = now + timedelta(seconds=self._delay(row.attempts))
            changes.append({"id": row.id, "attempts": row.attempts, "next_attempt_at": retry_at})
        async with self._sessions.begin() as session:
            await session.execute(update(OutboxRow), changes)

    async def _send(self, sender: OutboxSender, rows: list[OutboxRow]) -> int:
        items: list[Request] = []
        sendable: list[OutboxRow] = []
        unreadable: list[tuple[int, str]] = []
        for row in rows:
            try:
                fields = self._outbox.open_payload(row)
            except (ValueError, KeyStoreError):
                unreadable.append((row.id, "payload unreadable"))
                continue
            items.append(Request(row.operation, row.message_id, row.attempts > 1, fields))
            sendable.append(row)
        if unreadable:
            await self._bury(unreadable)
        if not items:
            return len(unreadable)
        try:
            results = await sender.send_batch(items)
        except UpstreamUnavailableError as exc:
            # Nothing left the branch: undo the claim, wait for the breaker.
            await self._unclaim(sendable, exc.retry_after or 0.0)
            return len(unreadable)
        except UpstreamError as exc:
            self.stats.failed_batches += 1
            log.info(
                "outbox_batch_failed",
                target=sender.target,
                messages=len(items),
                error=type(exc).__name__,
                reason=str(exc),
            )
            return len(unreadable)
        return len(unreadable) + await self._record(sender, sendable, results)

    async def _record(
        self, sender: OutboxSender, sendable: Sequence[OutboxRow], results: Sequence[Result]
    ) -> int:
        """Mark delivered and refused messages; leave retryable ones scheduled."""
        delivered: list[int] = []
        refused: list[tuple[int, str]] = []
        for row, result in zip(sendable, results, strict=True):
            if result.succeeded:
                delivered.append(row.id)
            elif result.status not in _RETRYABLE:
                refused.append((row.id, f"{result.status}: {result.message}"))
        if delivered:
            async with self._sessions.begin() as session:
                await session.execute(
                    update(OutboxRow)
                    .where(OutboxRow.id.in_(delivered))
                    .values(state=OutboxState.DELIVERED, delivered_at=self._clock.now())
                )
            self.stats.delivered += len(delivered)
        if refused:
            await self._bury(refused)
            log.warning("outbox_messages_refused", target=sender.target, count=len(refused))
        return len(delivered) + len(refused)

    async def _unclaim(self, rows: Sequence[OutboxRow], wait: float) -> None:
        retry_at = self._clock.now() + timedelta(seconds=wait)
        changes = [
            {"id": row.id, "attempts": row.attempts - 1, "next_attempt_at": retry_at}
            for row in rows
        ]
        async with self._sessions.begin() as session:
            await session.execute(update(OutboxRow), changes)

    async def _bury(self, rows: Sequence[tuple[int, str]]) -> None:
        """Move messages to the dead-letter list with their reason."""
        changes = [
            {"id": ident, "state": OutboxState.DEAD, "last_error": reason[:_MAX_ERROR]}
            for ident, reason in rows
        ]
        async with self._sessions.begin() as session:
            await session.execute(update(OutboxRow), changes)
        self.stats.dead += len(rows)
        log.warning("outbox_dead_letters", count=len(rows))
