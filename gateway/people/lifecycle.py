"""A card row's three state machines, stepped with their histories.

The states live in ``cards.application_state``, ``card_state`` and
``bank_state``; the interruptions in force on each (see
:mod:`gateway.people.states`) live in ``cards.interruptions``, a JSON object
``{"application": [["temporary-loss", "1"]], "card": [...], "bank": [...]}``,
newest last. Every change of a card's state goes through :func:`step`, so a
state and its history cannot part.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from gateway.people.rows import CardRow
from gateway.people.states import (
    APPLICATION,
    BANK_ACCOUNT,
    CARD,
    ApplicationEvent,
    ApplicationState,
    BankEvent,
    BankState,
    CardEvent,
    CardState,
    Held,
    History,
    IllegalTransition,
    Interruption,
    StateMachine,
)

if TYPE_CHECKING:
    from datetime import datetime
    from enum import StrEnum

__all__ = ["allowed", "history", "new_card", "step"]

#: Key in ``cards.interruptions`` and state column, by machine.
_COLUMNS: Final[dict[str, str]] = {
    APPLICATION.name: "application_state",
    CARD.name: "card_state",
    BANK_ACCOUNT.name: "bank_state",
}


def _machine(event: StrEnum) -> StateMachine[Any, Any]:
    if isinstance(event, ApplicationEvent):
        return APPLICATION
    if isinstance(event, CardEvent):
        return CARD
    if isinstance(event, BankEvent):
        return BANK_ACCOUNT
    raise TypeError(f"not a card event: {event!r}")


def new_card(person_id: int, region: str, now: datetime) -> CardRow:
    """A card record about to be made: sealed, not made, no bank account, no history."""
    return CardRow(
        person_id=person_id,
        region=region,
        application_state=ApplicationState.SEALED.value,
        card_state=CardState.INITIAL.value,
        bank_state=BankState.NOT_OPENED.value,
        created_at=now,
        updated_at=now,
    )


def history(card: CardRow, machine: str) -> History:
    """The interruptions in force on ``machine`` of ``card``, oldest first."""
    stored = (card.interruptions or {}).get(machine, [])
    return tuple(Held(Interruption(kind), under) for kind, under in stored)


def _state(card: CardRow, machine: StateMachine[Any, Any]) -> StrEnum:
    value = getattr(card, _COLUMNS[machine.name])
    state: StrEnum = machine.states(value)
    return state


def allowed(card: CardRow, event: ApplicationEvent | CardEvent | BankEvent) -> bool:
    """Whether ``event`` would be accepted now (its reversal included)."""
    try:
        _next(card, event)
    except IllegalTransition:
        return False
    return True


def _next(
    card: CardRow, event: ApplicationEvent | CardEvent | BankEvent
) -> tuple[StateMachine[Any, Any], StrEnum, History]:
    machine = _machine(event)
    state, held = machine.step(_state(card, machine), history(card, machine.name), event)
    return machine, state, held


def step(card: CardRow, event: ApplicationEvent | CardEvent | BankEvent) -> StrEnum:
    """Apply ``event`` to its machine on ``card``: the new state, history kept with it.

    Raises:
        IllegalTransition: the state (or the history, for a reversal) refuses it;
            ``card`` is unchanged.
    """
    machine, state, held = _next(card, event)
    setattr(card, _COLUMNS[machine.name], state.value)
    stored = dict(card.interruptions or {})
    if held:
        stored[machine.name] = [[h.interruption.value, h.under] for h in held]
    else:
        stored.pop(machine.name, None)
    card.interruptions = stored  # a new object: the ORM sees the change
    return state
