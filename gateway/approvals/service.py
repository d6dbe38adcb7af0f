"""A supervisor's approval of one exact request: granted once, used once.

An approval binds an operation key (a catalogue operation, ``stock-adjustment``)
and the digest of one request (what the caller computes from the request's
canonical body), names the supervisor who gave it and why, and expires after
its lifetime. It is used at most once: the one statement that marks it used
matches only an approval of this key and digest, not used yet and not expired,
so of two requests racing for one approval only one has it. The use runs in the
caller's transaction: when the caller's work is rolled back, the approval is
unused again.

The operations (:class:`~gateway.operations.service.BusinessService`) and the
stock adjustments (``gateway.issuance.routes``) both grant and use approvals
here; a refusal is an :class:`~gateway.approvals.errors.ApprovalRefusal`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from sqlalchemy import update

from gateway.approvals.errors import ApprovalReason, ApprovalRefusal
from gateway.approvals.rows import ApprovalRow
from security.redaction import mask_personal_numbers

if TYPE_CHECKING:
    import random
    from collections.abc import Mapping
    from datetime import datetime, timedelta

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from devices.clock import Clock
    from gateway.audit.log import AuditLog

__all__ = ["Approvals", "Granted", "Required"]

_INVALID: Final = (
    "The approval is unknown, used, expired, or was given for another request.",
    "授权不存在、已使用、已过期，或不是针对本次请求的授权。",
)


@dataclass(frozen=True, slots=True)
class Granted:
    """An approval just granted: its id, to quote with the identical request.

    Attributes:
        id: The approval's id (a UUID).
        operation: The operation key it was given for.
        expires_at: When it can no longer be used.
    """

    id: str
    operation: str
    expires_at: datetime


class Required(NamedTuple):
    """The detail of a refusal for want of an approval: where the teller asks for one."""

    detail: str
    detail_zh: str


class Approvals:
    """Grants supervisors' approvals of one exact request, and uses each once."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        audit: AuditLog,
        clock: Clock,
        rng: random.Random,
    ) -> None:
        """Keep the collaborators (``rng`` draws the approvals' ids)."""
        self._sessions = sessions
        self._audit = audit
        self._clock = clock
        self._rng = rng

    async def grant(  # noqa: PLR0913 - the approval's parts, each named
        self,
        operation: str,
        digest: str,
        *,
        supervisor: str,
        reason: str,
        lifetime: timedelta,
        details: Mapping[str, Any] | None = None,
    ) -> Granted:
        """Record ``supervisor``'s approval of the request ``digest`` of ``operation``.

        The caller has checked that ``supervisor`` is a supervisor's terminal. The
        approval is committed in a transaction of its own, with ``reason`` (personal
        numbers masked), usable for ``lifetime``; then the audit entry
        ``approval.grant`` is appended, its details the operation and ``details``.
        """
        now = self._clock.now()
        row = ApprovalRow(
            id=str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
            operation=operation,
            request_digest=digest,
            supervisor=supervisor,
            reason=mask_personal_numbers(reason),
            created_at=now,
            expires_at=now + lifetime,
        )
        async with self._sessions.begin() as session:
            session.add(row)
        await self._audit.append(
            supervisor, "approval.grant", f"approval:{row.id}",
            {"operation": operation, **(details or {})},
        )  # fmt: skip
        return Granted(id=row.id, operation=operation, expires_at=row.expires_at)

    async def use(  # noqa: PLR0913 - the request, the approval and who uses it
        self,
        session: AsyncSession,
        operation: str,
        digest: str,
        approval_id: str | None,
        *,
        user: str,
        required: Required,
    ) -> str:
        """Use the approval ``approval_id`` of this exact request, once, in ``session``.

        The approval is marked used by ``user`` in the caller's transaction (it
        commits or rolls back with the caller's work).

        Returns:
            The supervisor who gave the approval.

        Raises:
            ApprovalRefusal: ``REQUIRED`` when no approval is named (with
                ``required``'s detail), ``INVALID`` when it is unknown, used,
                expired, or was given for another operation or request.
        """
        if approval_id is None:
            raise ApprovalRefusal(ApprovalReason.REQUIRED, required.detail, required.detail_zh)
        now = self._clock.now()
        supervisor: str | None = await session.scalar(
            update(ApprovalRow)
            .where(
                ApprovalRow.id == approval_id,
                ApprovalRow.operation == operation,
                ApprovalRow.request_digest == digest,
                ApprovalRow.used_at.is_(None),
                ApprovalRow.expires_at > now,
            )
            .values(used_at=now, used_by=user)
            .returning(ApprovalRow.supervisor)
        )
        if supervisor is None:
            raise ApprovalRefusal(ApprovalReason.INVALID, *_INVALID)
        return supervisor
