"""Audit anchors off the box: sign each finished period, send it to the central monitor.

Two supervised tasks of the daemon share one :class:`AnchorService`:

- :meth:`AnchorService.run_checkpoints` wakes at each period's end, signs the
  finished periods (and finished business days, the older daily checkpoints)
  and wakes the sender;
- :meth:`AnchorService.run_sender` publishes every pending anchor (QoS 1, not
  retained) on ``sscard/v1/{province}/{branch}/audit/checkpoint`` and forgets
  it only once the broker acknowledged it (PUBACK). Pending anchors live in the
  database, written with the anchor itself, so a restart or a broker outage
  only delays them: they are sent, oldest first, once the broker is back.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final, Protocol

import structlog

from devices.backoff import BackoffPolicy, backoff_delays
from devices.registry.errors import PublishError
from protocols.mqtt.anchors import AuditCheckpoint, audit_checkpoint_topic

if TYPE_CHECKING:
    import random

    from devices.clock import Clock
    from gateway.audit.log import AuditLog, AuditSigner
    from security.audit import Anchor

__all__ = ["AnchorPublisher", "AnchorService", "checkpoint_message"]

log = structlog.get_logger(__name__)

#: Seconds after a period's end before it is signed (entries written at the boundary land).
SETTLE: Final = 2.0
RETRY: Final = BackoffPolicy(initial=1.0, maximum=60.0)


class AnchorPublisher(Protocol):
    """Publishes one message with QoS 1 (the daemon's telemetry publisher)."""

    async def publish(self, topic: str, payload: bytes, retain: bool) -> None:  # noqa: FBT001 - the publisher's shape
        """Publish; raise :class:`~devices.registry.errors.PublishError` when not acknowledged."""
        ...


def checkpoint_message(anchor: Anchor) -> AuditCheckpoint:
    """The MQTT payload of ``anchor``."""
    return AuditCheckpoint(
        start=anchor.start,
        end=anchor.end,
        last_seq=anchor.last_seq,
        last_hash=anchor.last_hash.hex(),
        key_id=anchor.key_id,
        key_version=anchor.key_version,
        signature=anchor.signature.hex(),
    )


class AnchorService:
    """Signs period anchors and sends them to the monitor (see the module docstring)."""

    def __init__(  # noqa: PLR0913 - injected parts, keyword-only
        self,
        audit: AuditLog,
        signer: AuditSigner,
        *,
        branch: str,
        period: int,
        clock: Clock,
        rng: random.Random,
        publisher: AnchorPublisher | None = None,
        province: str | None = None,
    ) -> None:
        """Sign for ``branch`` every ``period`` seconds; send through ``publisher`` if any."""
        self._audit = audit
        self._signer = signer
        self._branch = branch
        self._period = period
        self._clock = clock
        self._rng = rng
        self._publisher = publisher
        self._topic = audit_checkpoint_topic(province, branch) if province is not None else None
        self._wake = asyncio.Event()
        self._wake.set()  # send what an earlier run left pending

    async def checkpoint(self) -> list[int]:
        """Sign every finished business day and period that has none yet."""
        for day in await self._audit.checkpoint_finished_days(self._signer):
            log.info("audit_checkpoint_signed", day=day.isoformat())
        made = await self._audit.checkpoint_periods(self._signer, self._branch, self._period)
        if made:
            log.info("audit_anchors_signed", count=len(made), last_end=made[-1])
            self._wake.set()
        return made

    async def run_checkpoints(self) -> None:
        """Sign now, then after each period's end, until cancelled."""
        while True:
            await self.checkpoint()
            now = self._clock.now().timestamp()
            await self._clock.sleep(self._period - now % self._period + SETTLE)

    async def send_pending(self) -> int:
        """Publish every pending anchor, oldest first; return how many were acknowledged.

        Raises:
            PublishError: The broker did not acknowledge one (the rest wait too).
        """
        if self._publisher is None or self._topic is None:
            return 0
        sent = 0
        for anchor in await self._audit.pending_anchors():
            payload = checkpoint_message(anchor).to_bytes()
            await self._publisher.publish(self._topic, payload, retain=False)
            await self._audit.anchor_sent(anchor.end)
            sent += 1
        return sent

    async def run_sender(self) -> None:
        """Send pending anchors whenever new ones are made, retrying until acknowledged."""
        retries = backoff_delays(RETRY, self._rng)
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                sent = await self.send_pending()
            except PublishError as exc:  # not connected, or lost before the PUBACK
                self._wake.set()
                log.info("audit_anchors_not_sent", reason=exc.reason)
                await self._clock.sleep(next(retries))
                continue
            if sent:
                log.info("audit_anchors_sent", count=sent)
            retries = backoff_delays(RETRY, self._rng)
