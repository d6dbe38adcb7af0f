"""Where an application stands, in the words a citizen is told (办理进度).

Every application resource carries ``progress``: one code from :data:`PROGRESS`
with its Chinese and English text, derived from the application's status, its
fee, an online application's verification and the state of the card it makes.
docs/operations.md ("Progress") has the same table; a teller system shows the
text as it is and need not invent a mapping of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from gateway.operations.fees import FEE_OWED
from gateway.people.states import CardState

__all__ = ["PROGRESS", "ProgressStep", "progress_of"]


@dataclass(frozen=True, slots=True)
class ProgressStep:
    """One step of the citizen's view: a stable code and its texts."""

    code: str
    zh: str
    en: str


#: Every step, in the order a card's application goes through them.
PROGRESS: Final = {
    p.code: p
    for p in (
        ProgressStep("submitted", "已提交", "Submitted"),
        ProgressStep("verifying", "待核验", "To be verified at the window"),
        ProgressStep("fee-due", "待缴费", "Fee to be paid"),
        ProgressStep("in-production", "制卡中", "Card being made"),
        ProgressStep("awaiting-pickup", "待领取", "Ready for pickup"),
        ProgressStep("picked-up", "已领取", "Picked up"),
        ProgressStep("enabled", "已启用", "Enabled"),
        ProgressStep("done", "已办结", "Done"),
        ProgressStep("returned", "已退回", "Withdrawn"),
    )
}
#: Card states while a card is being made (a failed job is queued again: still made).
_MAKING: Final = frozenset({CardState.IN_PRODUCTION.value, CardState.INSTANT_ISSUANCE_FAILED.value})
#: The states of a card made and handed over, by the step a citizen sees.
_MADE: Final = {
    CardState.AWAITING_PICKUP.value: "awaiting-pickup",
    CardState.PICKED_UP.value: "picked-up",
    CardState.ACTIVE.value: "enabled",
}


def progress_of(  # noqa: PLR0911, PLR0913 - one answer per step; the facts it depends on
    *,
    status: str,
    fee_status: str,
    online: bool,
    verified: bool,
    makes_card: bool,
    card_state: str | None,
) -> ProgressStep:
    """The step of an application (``makes_card``: its operation makes a card)."""
    if status == "withdrawn":
        return PROGRESS["returned"]
    if status == "accepted":
        if online and not verified:
            return PROGRESS["verifying"]
        if fee_status in FEE_OWED:
            return PROGRESS["fee-due"]
        if card_state in _MAKING:
            return PROGRESS["in-production"]
        return PROGRESS["submitted"]
    if makes_card and card_state in _MADE:
        return PROGRESS[_MADE[card_state]]
    return PROGRESS["done"]
