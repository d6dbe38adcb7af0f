"""The card's state machines with their histories: reversals return what they reversed.

The examples are the defects a teller could produce before the histories; the
property test drives random event sequences over all three machines of one
card and checks them against a model written here, independently of the
tables: which events interrupt, which reverse which, and what a card must have
been through before it may be active.
"""

from __future__ import annotations

from typing import Final

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.people import lifecycle
from gateway.people.rows import CardRow
from gateway.people.states import ApplicationEvent, BankEvent, CardEvent, IllegalTransition

AE, CE, BE = ApplicationEvent, CardEvent, BankEvent

Event = ApplicationEvent | CardEvent | BankEvent


def new_card(application: str = "0", card: str = "00", bank: str = "not-opened") -> CardRow:
    """A card row in memory (no database needed to step it)."""
    return CardRow(application_state=application, card_state=card, bank_state=bank)


def states(card: CardRow) -> tuple[str, str, str]:
    """The three states of ``card``."""
    return card.application_state, card.card_state, card.bank_state


def run(card: CardRow, *events: Event) -> CardRow:
    """Step ``card`` through ``events`` (each must be accepted)."""
    for event in events:
        lifecycle.step(card, event)
    return card


MADE_AND_HANDED_OVER: Final = (CE.START_PRODUCTION, CE.PRODUCED, CE.PICK_UP)


def test_cancel_loss_of_a_card_never_enabled_leaves_it_sealed() -> None:
    """AAZ502 0 is not enabled by a temporary loss and its cancellation."""
    card = run(new_card(), *MADE_AND_HANDED_OVER, AE.REPORT_TEMPORARY_LOSS, AE.CANCEL_LOSS)
    assert card.application_state == "0"


def test_cancel_loss_of_a_card_awaiting_pickup_leaves_it_awaiting_pickup() -> None:
    """02 stays 02 across a temporary loss and its cancellation (not 04)."""
    card = run(new_card(), CE.START_PRODUCTION, CE.PRODUCED, CE.REPORT_TEMPORARY_LOSS)
    assert card.card_state == "06"
    run(card, CE.CANCEL_LOSS)
    assert card.card_state == "02"
    assert lifecycle.history(card, "card") == ()


def test_loss_and_cancel_loss_do_not_unlock_a_locked_application() -> None:
    """A locked application (3) stays locked across loss and cancel loss."""
    card = run(new_card(), AE.ENABLE, AE.LOCK, AE.REPORT_TEMPORARY_LOSS, AE.CANCEL_LOSS)
    assert card.application_state == "3"
    run(card, AE.UNLOCK)
    assert card.application_state == "1"


def test_unlock_waits_for_the_loss_over_the_lock() -> None:
    """Unlock is refused while a loss reported after the lock is in force."""
    card = run(new_card(), AE.ENABLE, AE.LOCK, AE.REPORT_TEMPORARY_LOSS)
    with pytest.raises(IllegalTransition) as info:
        lifecycle.step(card, AE.UNLOCK)
    assert info.value.event is AE.UNLOCK
    assert card.application_state == "4"


def test_rollback_of_a_formally_lost_card_returns_it_lost() -> None:
    """A cancelled card that was formally lost comes back formally lost."""
    card = run(new_card("1", "04", "active"), AE.REPORT_FORMAL_LOSS, CE.REPORT_FORMAL_LOSS)
    run(card, AE.CANCEL, CE.CANCEL, AE.ROLLBACK, CE.ROLLBACK)
    assert states(card)[:2] == ("2", "05")


def test_cancel_and_rollback_of_a_card_never_made_leave_it_unmade() -> None:
    """00 cancelled and rolled back is 00 again, not active."""
    card = run(new_card(), CE.CANCEL, AE.CANCEL, CE.ROLLBACK, AE.ROLLBACK)
    assert states(card) == ("0", "00", "not-opened")


def test_a_superseded_card_cannot_be_rolled_back() -> None:
    """A card retired by its successor stays retired."""
    card = run(new_card("1", "04", "active"), CE.REPORT_FORMAL_LOSS, CE.START_REISSUE)
    run(card, CE.SUPERSEDE, AE.SUPERSEDE)
    assert states(card)[:2] == ("9", "09")
    for event in (CE.ROLLBACK, AE.ROLLBACK):
        with pytest.raises(IllegalTransition):
            lifecycle.step(card, event)


def test_bank_reopen_and_unfreeze_return_what_was_under() -> None:
    """Reopen and unfreeze return the account to its own earlier state."""
    card = run(new_card(bank="opened"), BE.FREEZE, BE.CLOSE, BE.REOPEN)
    assert card.bank_state == "frozen"
    run(card, BE.UNFREEZE)
    assert card.bank_state == "opened"  # never activated: unfreezing does not activate it


def test_a_refused_event_changes_nothing() -> None:
    """A refusal leaves the states and the history as they were."""
    card = run(new_card(), CE.START_PRODUCTION, CE.PRODUCED, CE.REPORT_TEMPORARY_LOSS)
    before = (states(card), dict(card.interruptions))
    with pytest.raises(IllegalTransition):
        lifecycle.step(card, CE.ROLLBACK)
    assert (states(card), dict(card.interruptions)) == before


# -- the model: written from the rules, not from the tables --
# Events of different machines share values ("cancel"): the model keys them by
# (machine, value), never by the enum member alone.
Key = tuple[str, str]


def key(event: Event) -> Key:
    """``event`` as (machine, value)."""
    return machine_of(event), event.value


def machine_of(event: Event) -> str:
    """The machine ``event`` belongs to."""
    return {AE: "application", CE: "card", BE: "bank-account"}[type(event)]


def column(machine: str) -> str:
    """The card row's state column of ``machine``."""
    return {"application": "application_state", "card": "card_state", "bank-account": "bank_state"}[
        machine
    ]


#: Interrupting events and the reversal of each (``None``: final, no reversal).
REVERSAL_OF: Final[dict[Key, Key | None]] = {
    key(AE.REPORT_TEMPORARY_LOSS): key(AE.CANCEL_LOSS),
    key(AE.LOCK): key(AE.UNLOCK),
    key(AE.CANCEL): key(AE.ROLLBACK),
    key(AE.REPORT_FORMAL_LOSS): None,
    key(CE.REPORT_TEMPORARY_LOSS): key(CE.CANCEL_LOSS),
    key(CE.CANCEL): key(CE.ROLLBACK),
    key(CE.REPORT_FORMAL_LOSS): None,
    key(CE.START_REISSUE): key(CE.WITHDRAW),
    key(CE.START_REPLACEMENT): key(CE.WITHDRAW),
    key(BE.FREEZE): key(BE.UNFREEZE),
    key(BE.CLOSE): key(BE.REOPEN),
}
REVERSALS: Final = {r for r in REVERSAL_OF.values() if r is not None}
RETIRING: Final = {key(AE.SUPERSEDE), key(CE.SUPERSEDE), key(CE.ABANDON)}
ALL_EVENTS: Final[list[Event]] = [*AE, *CE, *BE]


@settings(max_examples=2000, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(ALL_EVENTS), max_size=40))
def test_random_sequences_keep_the_rules(events: list[Event]) -> None:
    """No sequence activates a card never handed over; every reversal returns what it reversed."""
    card = new_card()
    accepted: set[Key] = set()
    model: dict[str, list[tuple[Key, str]]] = {"application": [], "card": [], "bank-account": []}
    for event in events:
        machine, this = machine_of(event), key(event)
        before = getattr(card, column(machine))
        snapshot = (states(card), dict(card.interruptions or {}))
        try:
            lifecycle.step(card, event)
        except IllegalTransition:
            assert (states(card), dict(card.interruptions or {})) == snapshot
            continue
        accepted.add(this)
        after = getattr(card, column(machine))
        if this in REVERSALS:
            assert model[machine], f"{this} accepted with nothing to reverse"
            top, under = model[machine].pop()
            assert REVERSAL_OF[top] == this, f"{this} reversed {top}"
            assert after == under, f"{this} returned {after}, not {under}"
        elif this in RETIRING:
            model[machine].clear()
        elif this in REVERSAL_OF:
            model[machine].append((this, before))
        # Nothing is active that was never handed over and activated.
        if card.card_state in {"03", "04"}:
            assert accepted & {key(CE.PICK_UP), key(CE.ISSUED)}
        if card.card_state == "04":
            assert key(CE.ACTIVATE) in accepted
        if card.application_state == "1":
            assert key(AE.ENABLE) in accepted
        if card.bank_state == "active":
            assert key(BE.ACTIVATE) in accepted
        assert [h.under for h in lifecycle.history(card, machine)] == [u for _, u in model[machine]]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(ALL_EVENTS), max_size=30), st.sampled_from(sorted(REVERSALS)))
def test_a_reversal_with_no_matching_interruption_is_refused(
    events: list[Event], reversal: Key
) -> None:
    """Whatever came before, a reversal whose interruption is not the newest is refused."""
    card = new_card()
    for event in events:
        if lifecycle.allowed(card, event):
            lifecycle.step(card, event)
    machine = reversal[0]
    held = lifecycle.history(card, machine)
    reverse = next(e for e in ALL_EVENTS if key(e) == reversal)
    matching = {k[1] for k, r in REVERSAL_OF.items() if r == reversal}
    pushed_by = {
        "temporary-loss": "report-temporary-loss", "lock": "lock", "cancellation": "cancel",
        "freeze": "freeze", "closure": "close", "formal-loss": "report-formal-loss",
        "replacement": "start-replacement",
    }  # fmt: skip
    if not held or pushed_by[held[-1].interruption.value] not in matching:
        assert not lifecycle.allowed(card, reverse)
