"""Notices the provincial platform pushes to the branch: losses, online applications.

A holder who reports a loss by telephone (12333) or online does so at the
platform; the platform tells the branch that holds the card, so the branch's
records and — when the notice says so — the bank account follow. The platform
POSTs one envelope (docs/protocols/envelope.md) to ``/v1/platform/notices``,
sealed by its own identity and addressed to this branch, whose plaintext is a
request document in the platform's dialect with ``loss_notice`` items
(``pushCardLoss`` / ``notifyCardLoss``). The answer is one sealed results
document, as the branch's own requests are answered.

Trust comes from the envelope: the sender's signature under the platform's
verify key from the peer-keys file, the receiver must be this branch, the
timestamp within the window and the nonce unseen; only the configured
platform (``[upstream.platform] receiver``) may send notices. Under
``[server.tls]`` the connection is mutual TLS as well.

Other kinds of item are handled by the layer that owns what they change,
registered with :meth:`PlatformNotices.handle` (the online applications sent
to this branch for verification: ``gateway.operations.online``); an item of a
kind nobody handles is answered ``invalid_request``.

Each item is applied once: its (sender, message id) is recorded in the same
transaction as the state change, and a copy is answered with the stored
result. The platform already knows (it sent the notice), so nothing goes back
to it; a bank freeze or unfreeze goes through the outbox.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Final, TypeAlias

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.people import lifecycle
from gateway.people.rows import CardRow, PersonRow
from gateway.people.states import (
    APPLICATION,
    CARD,
    ApplicationEvent,
    ApplicationState,
    BankEvent,
    BankState,
    CardEvent,
    CardState,
    IllegalTransition,
)
from gateway.runtime.refusals import Refusal
from gateway.runtime.rows import IdempotencyRow
from gateway.upstream.outbox import FreezeAccount, UnfreezeAccount
from protocols.platform import (
    MessageDecodeError,
    MessageEncodeError,
    PlatformOperation,
    Request,
    Result,
    Status,
)
from security.envelope import EnvelopeRejectedError

if TYPE_CHECKING:
    from enum import StrEnum

    from sqlalchemy.ext.asyncio import async_sessionmaker

    from devices.clock import Clock
    from gateway.audit.log import AuditLog
    from gateway.upstream.assembly import Upstream

__all__ = ["NOTICE_PATH", "NoticeAnswer", "NoticeHandler", "NoticeRefusal", "PlatformNotices"]

log = structlog.get_logger(__name__)

#: Where the platform POSTs its notices (on the daemon's HTTP server).
NOTICE_PATH: Final = "/v1/platform/notices"
#: How long a notice's message id is remembered (a copy after that finds the state set).
REMEMBER: Final = timedelta(days=30)
_LOSS: Final = {
    "2": (ApplicationEvent.REPORT_FORMAL_LOSS, CardEvent.REPORT_FORMAL_LOSS),
    "4": (ApplicationEvent.REPORT_TEMPORARY_LOSS, CardEvent.REPORT_TEMPORARY_LOSS),
}
_UNLOSS: Final = (ApplicationEvent.CANCEL_LOSS, CardEvent.CANCEL_LOSS)
#: Where each notice leads: a notice finding its card already there changes nothing.
_APPLICATION_TARGETS: Final = {
    ApplicationEvent.REPORT_FORMAL_LOSS: ApplicationState.FORMAL_LOSS,
    ApplicationEvent.REPORT_TEMPORARY_LOSS: ApplicationState.TEMPORARY_LOSS,
}
_CARD_TARGETS: Final = {
    CardEvent.REPORT_FORMAL_LOSS: CardState.FORMAL_LOSS,
    CardEvent.REPORT_TEMPORARY_LOSS: CardState.TEMPORARY_LOSS,
}
_APPLICATION_LOSSES: Final[frozenset[StrEnum]] = frozenset(
    {ApplicationState.FORMAL_LOSS, ApplicationState.TEMPORARY_LOSS}
)
_CARD_LOSSES: Final[frozenset[StrEnum]] = frozenset(
    {CardState.FORMAL_LOSS, CardState.TEMPORARY_LOSS}
)
_STORED_TYPE: Final = "application/x-platform-result"


@dataclass(frozen=True, slots=True)
class NoticeAnswer:
    """The HTTP answer to one notice envelope.

    Attributes:
        status: HTTP status (200, or 400 for an envelope refused, 422 for a bad document).
        body: The sealed results envelope, or the refusal text.
        refused: The envelope refusal code (for the ``X-Envelope-Refused`` header).
    """

    status: int
    body: bytes
    refused: str | None = None


class NoticeRefusal(Exception):  # noqa: N818 - an item's answer, not an error of ours
    """An item refused with its status and text (nothing of it is kept)."""

    def __init__(self, status: Status, message: str) -> None:
        """Keep what the platform is answered."""
        super().__init__(message)
        self.status = status
        self.message = message


#: An item's effect and its audit entry (action, object, details), or None for no entry.
Applied: TypeAlias = tuple[Result, tuple[str, str, dict[str, object]] | None]
#: Applies one item of a kind in the notice's transaction; raises :class:`NoticeRefusal`.
NoticeHandler: TypeAlias = Callable[[AsyncSession, Request], Awaitable[Applied]]


class PlatformNotices:
    """Opens, applies and answers the platform's loss notices."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        upstream: Upstream,
        audit: AuditLog,
        clock: Clock,
    ) -> None:
        """Use the branch's database, upstream keys and codec, audit log and clock."""
        self._sessions = sessions
        self._upstream = upstream
        self._audit = audit
        self._clock = clock
        self._handlers: dict[str, NoticeHandler] = {}

    def handle(self, operation: PlatformOperation, handler: NoticeHandler) -> None:
        """Let ``handler`` apply the items of ``operation`` (in the notice's transaction)."""
        self._handlers[operation.value] = handler

    @property
    def platform(self) -> str:
        """The envelope name of the only sender whose notices are accepted."""
        return self._upstream.platform.channel.receiver

    async def receive(self, data: bytes) -> NoticeAnswer:
        """Open one envelope, apply its items, and seal the answer."""
        opener, sealer = self._upstream.opener, self._upstream.sealer
        assert opener is not None  # noqa: S101 - build_upstream sets both
        assert sealer is not None  # noqa: S101
        try:
            opened = opener.open(data, self._clock.now())
        except EnvelopeRejectedError as exc:
            log.warning("platform_notice_refused", code=exc.code)
            return NoticeAnswer(400, exc.code.encode(), exc.code)
        sender = opened.header.sender
        if sender != self.platform:
            log.warning("platform_notice_refused", code="notice.unknown_sender", sender=sender)
            return NoticeAnswer(400, b"notice.unknown_sender", "notice.unknown_sender")
        codec = self._upstream.platform.codec
        try:
            items = codec.decode_requests(opened.body)
        except MessageDecodeError as exc:
            log.warning("platform_notice_undecodable", reason=exc.reason)
            return NoticeAnswer(422, exc.reason.encode())
        results = [await self._one(sender, item) for item in items]
        try:
            body = codec.encode_results(results)
        except MessageEncodeError:  # pragma: no cover - our own results always encode
            log.exception("platform_notice_answer_unencodable")
            return NoticeAnswer(500, b"")
        sealed = sealer.seal(sender, opened.header.message_id, body, self._clock.now())
        return NoticeAnswer(200, sealed)

    async def _one(self, sender: str, item: Request) -> Result:
        """Apply one item once; a copy gets the stored result."""
        digest = hashlib.sha256(
            json.dumps([item.operation, item.fields], sort_keys=True).encode()
        ).hexdigest()
        stored = await self._stored(sender, item.message_id)
        if stored is not None:
            return stored
        try:
            async with self._sessions.begin() as session:
                result, audit = await self._apply(session, item)
                now = self._clock.now()
                session.add(
                    IdempotencyRow(
                        terminal_id=_terminal(sender), key=item.message_id,
                        request_digest=digest, state="done", status=200,
                        content_type=_STORED_TYPE, body=_encode(result),
                        created_at=now, expires_at=now + REMEMBER,
                    )
                )  # fmt: skip
        except IntegrityError:  # the same message id (or the same thing) arrived twice at once
            again = await self._stored(sender, item.message_id)
            if again is None:  # another message id won: nothing of this one was kept
                return Result(
                    item.message_id, Status.ERROR, "并发冲突，请重发 conflict, send again"
                )
            return again
        if audit is not None:
            await self._audit.append(f"platform:{sender}", *audit)
        if result.status is Status.OK:
            self._upstream.relay.wake()  # committed: a bank freeze may be waiting
        log.info(
            "platform_notice_applied",
            message_id=item.message_id,
            status=result.status.value,
            card_number=result.fields.get("AAZ500", ""),
        )
        return result

    async def _stored(self, sender: str, message_id: str) -> Result | None:
        async with self._sessions() as session:
            row = await session.get(IdempotencyRow, (_terminal(sender), message_id))
        if row is None or row.body is None:
            return None
        return _decode(message_id, row.body)

    async def _apply(
        self, session: AsyncSession, item: Request
    ) -> tuple[Result, tuple[str, str, dict[str, object]] | None]:
        """Apply one item in a savepoint of ``session``'s transaction.

        A refusal rolls the savepoint back, whatever the handler had written: the
        item keeps nothing, and its answer is still stored with the message id. A
        refusal of the layer that owns the change (a closed business day, say) is
        answered ``error``: the platform sends the item again later.
        """
        try:
            async with session.begin_nested():
                return await self._change(session, item)
        except NoticeRefusal as refusal:
            return Result(item.message_id, refusal.status, refusal.message), None
        except Refusal as refusal:
            message = f"{refusal.detail_zh} {refusal.detail}"[:200]
            return Result(item.message_id, Status.ERROR, message), None

    async def _change(
        self, session: AsyncSession, item: Request
    ) -> tuple[Result, tuple[str, str, dict[str, object]] | None]:
        fields = item.fields
        handler = self._handlers.get(item.operation)
        if handler is not None:
            return await handler(session, item)
        if item.operation != PlatformOperation.LOSS_NOTICE:
            raise NoticeRefusal(
                Status.INVALID_REQUEST, f"不支持的通知 unsupported: {item.operation}"
            )
        kind = fields.get("noticeType", "")
        loss_type = fields.get("lossType", "")
        if kind == "loss" and loss_type in _LOSS:
            app_event, card_event = _LOSS[loss_type]
        elif kind == "unloss":
            app_event, card_event = _UNLOSS
        else:
            raise NoticeRefusal(Status.INVALID_REQUEST, "noticeType/lossType 有误 bad notice type")
        number = fields.get("AAZ500", "")
        card = (
            await session.scalars(
                select(CardRow).where(CardRow.card_number == number).with_for_update()
            )
        ).first()
        if card is None:
            raise NoticeRefusal(Status.NOT_FOUND, "本网点无此卡 card not held at this branch")
        before = (card.application_state, card.card_state, card.bank_state)
        try:
            _step_application(card, app_event)
            _step_card(card, card_event)
        except IllegalTransition as exc:
            raise NoticeRefusal(
                Status.INVALID_STATE, f"卡片状态{exc.state.value}不允许 state forbids it"
            ) from None
        bank_note = ""
        if fields.get("freezeBank") == "1":
            bank_note = await self._bank(session, card, freeze=kind == "loss")
        card.updated_at = self._clock.now()
        after = (card.application_state, card.card_state, card.bank_state)
        holder = (
            await session.scalars(select(PersonRow.id_masked).where(PersonRow.id == card.person_id))
        ).first()
        details: dict[str, object] = {
            "source": fields.get("source", ""),
            "notice": kind,
            "loss_type": loss_type or None,
            "holder": holder,
            "before": before,
            "after": after,
            "bank": bank_note or None,
            "message_id": item.message_id,
        }
        answer = {"AAZ500": number, "AAZ502": card.application_state, "bankState": card.bank_state}
        return (
            Result(item.message_id, Status.OK, "成功", answer),
            (f"notice.{kind}", f"card:{number}", details),
        )

    async def _bank(self, session: AsyncSession, card: CardRow, *, freeze: bool) -> str:
        """Freeze (unfreeze) the bank account with the notice; say what was done."""
        event = BankEvent.FREEZE if freeze else BankEvent.UNFREEZE
        state = BankState(card.bank_state)
        if (state is BankState.FROZEN) is freeze:
            return "unchanged"
        if not lifecycle.allowed(card, event):
            return f"not-{event.value}-in-{state.value}"
        if self._upstream.bank is None:
            log.warning("notice_bank_not_configured", card_number=card.card_number)
            return "bank-not-configured"
        lifecycle.step(card, event)
        number = card.card_number
        assert number is not None  # noqa: S101 - the card was found by its number
        command = FreezeAccount(number) if freeze else UnfreezeAccount(number)
        await self._upstream.outbox.enqueue(session, command)
        return event.value


def _step_application(card: CardRow, event: ApplicationEvent) -> None:
    """Apply ``event`` unless the application is already where it leads (a repeat)."""
    state = ApplicationState(card.application_state)
    if lifecycle.allowed(card, event):
        lifecycle.step(card, event)
    elif not _arrived(state, _APPLICATION_TARGETS.get(event), _APPLICATION_LOSSES):
        raise IllegalTransition(APPLICATION.name, state, event)


def _step_card(card: CardRow, event: CardEvent) -> None:
    state = CardState(card.card_state)
    if lifecycle.allowed(card, event):
        lifecycle.step(card, event)
    elif not _arrived(state, _CARD_TARGETS.get(event), _CARD_LOSSES):
        raise IllegalTransition(CARD.name, state, event)


def _arrived(state: StrEnum, target: StrEnum | None, losses: frozenset[StrEnum]) -> bool:
    """Whether a repeated notice finds its card where the first one left it.

    A loss leads to its loss state; a cancel loss leads back to whatever was
    under the loss, so any state outside a loss is where it left the card.
    """
    return state is target if target is not None else state not in losses


def _terminal(sender: str) -> str:
    """The idempotency row's owner for a sender's notices."""
    return f"notice:{sender}"[:64]


def _encode(result: Result) -> bytes:
    return json.dumps(
        {"status": result.status.value, "message": result.message, "fields": result.fields},
        ensure_ascii=False,
    ).encode()


def _decode(message_id: str, body: bytes) -> Result:
    stored = json.loads(body)
    return Result(message_id, Status(stored["status"]), stored["message"], stored["fields"])
