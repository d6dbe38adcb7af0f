"""A new card invalidates the card it replaces: on the platform now, on the chip when seen.

When a reissue (补领, after a formal loss) or a replacement (换领/换发) is issued,
the holder's old card record — waiting in ``07`` reissue under way or ``08``
replacement under way — is cancelled in the same transaction that records
the new card, and the platform is told through the outbox
(:class:`~gateway.upstream.outbox.CancelCard`, reason ``reissued``). If the old
card turns up at a window later, the status read from the card finds it
formally lost or cancelled and blocks its application on the chip
(:meth:`gateway.cardservices.CardServices.status_from_card`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from sqlalchemy import select

from gateway.people import lifecycle
from gateway.people.rows import CardRow
from gateway.people.states import (
    ApplicationEvent,
    CardEvent,
    CardState,
)
from gateway.upstream.outbox import CancelCard
from gateway.upstream.platform import CardRef

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from gateway.upstream.outbox import Outbox

__all__ = ["REISSUED", "REPLACED_STATES", "invalidate_replaced_cards"]

#: Reason sent with the old card's cancellation.
REISSUED: Final = "reissued"
#: Card states of a record waiting for its successor.
REPLACED_STATES: Final = frozenset(
    {CardState.REISSUE_UNDER_WAY.value, CardState.REPLACEMENT_UNDER_WAY.value}
)


async def invalidate_replaced_cards(
    session: AsyncSession,
    new_card: CardRow,
    *,
    outbox: Outbox | None,
    now: datetime,
) -> list[CardRow]:
    """Cancel the holder's cards that ``new_card`` replaces (in ``session``'s transaction).

    Args:
        session: The transaction that records ``new_card`` as issued.
        new_card: The card just issued.
        outbox: Where the platform's cancellation goes (``None`` without ``[upstream]``).
        now: The time of the change.

    Returns:
        The old card records cancelled.
    """
    rows = await session.scalars(
        select(CardRow)
        .where(
            CardRow.person_id == new_card.person_id,
            CardRow.id != new_card.id,
            CardRow.card_state.in_(REPLACED_STATES),
        )
        .order_by(CardRow.id)
    )
    cancelled: list[CardRow] = []
    for old in rows:
        # Retired for good: its histories are cleared, so no rollback revives it.
        lifecycle.step(old, CardEvent.SUPERSEDE)
        lifecycle.step(old, ApplicationEvent.SUPERSEDE)
        old.updated_at = now
        if outbox is not None and old.card_number is not None:
            await outbox.enqueue(
                session, CancelCard(CardRef(old.card_number, old.card_code), REISSUED)
            )
        cancelled.append(old)
    return cancelled
