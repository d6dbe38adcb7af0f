from enum import StrEnum
from typing import Any

import pytest

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
    IllegalTransition,
    StateMachine,
)

MACHINES: list[tuple[StateMachine[Any, Any], type[StrEnum], type[StrEnum]]] = [
    (APPLICATION, ApplicationState, ApplicationEvent),
    (CARD, CardState, CardEvent),
    (BANK_ACCOUNT, BankState, BankEvent),
]

# The expected table, written out independently: (state, event) -> next state.
EXPECTED_APPLICATION = {
    ("0", "enable"): "1", ("0", "report-temporary-loss"): "4",
    ("0", "report-formal-loss"): "2", ("0", "cancel"): "9",
    ("1", "report-temporary-loss"): "4", ("1", "report-formal-loss"): "2",
    ("1", "lock"): "3", ("1", "cancel"): "9",
    ("4", "cancel-loss"): "1", ("4", "report-formal-loss"): "2", ("4", "cancel"): "9",
    ("2", "cancel"): "9",
    ("3", "unlock"): "1", ("3", "report-temporary-loss"): "4",
    ("3", "report-formal-loss"): "2", ("3", "cancel"): "9",
    ("9", "rollback"): "1",
    **{(state, "supersede"): "9" for state in "012349"},
}  # fmt: skip


def every_pair(
    machine: StateMachine[Any, Any], states: type[StrEnum], events: type[StrEnum]
) -> list[tuple[StateMachine[Any, Any], StrEnum, StrEnum]]:
    """Every state with every event of one machine."""
    return [(machine, s, e) for s in states for e in events]


ALL_PAIRS = [pair for machine in MACHINES for pair in every_pair(*machine)]


@pytest.mark.parametrize("machine_states_events", MACHINES, ids=lambda m: m[0].name)
def test_every_state_has_a_row(
    machine_states_events: tuple[StateMachine[Any, Any], type[StrEnum], type[StrEnum]],
) -> None:
    """Each machine's table has a row for every state and only known targets."""
    machine, states, _ = machine_states_events
    assert set(machine.table) == set(states)
    for row in machine.table.values():
        assert all(target in set(states) for target in row.values())


@pytest.mark.parametrize(("machine", "state", "event"), ALL_PAIRS)
def test_every_state_times_every_event(
    machine: StateMachine[Any, Any], state: StrEnum, event: StrEnum
) -> None:
    """Allowed events move to the table's state; every other event is refused by name."""
    if event in machine.allowed(state):
        assert machine.next(state, event) == machine.table[state][event]
    else:
        with pytest.raises(IllegalTransition) as info:
            machine.next(state, event)
        assert info.value.machine == machine.name
        assert info.value.state is state
        assert info.value.event is event
        assert repr(event.value) in str(info.value)


@pytest.mark.parametrize(
    ("state", "event"), [(s, e) for s in ApplicationState for e in ApplicationEvent]
)
def test_application_table_matches_the_rules(
    state: ApplicationState, event: ApplicationEvent
) -> None:
    """AAZ502 transitions are exactly the ones written out above."""
    expected = EXPECTED_APPLICATION.get((state.value, event.value))
    if expected is None:
        with pytest.raises(IllegalTransition):
            APPLICATION.next(state, event)
    else:
        assert APPLICATION.next(state, event).value == expected


def test_lost_card_cannot_be_unlocked_or_reenabled() -> None:
    """Formal loss is final for the card: only cancellation follows."""
    assert APPLICATION.allowed(ApplicationState.FORMAL_LOSS) == {
        ApplicationEvent.CANCEL,
        ApplicationEvent.SUPERSEDE,
    }


def test_instant_issuance_failure_is_retried_or_cancelled() -> None:
    """State 17 leads back to production or to cancellation, never to a good card directly."""
    assert CARD.allowed(CardState.INSTANT_ISSUANCE_FAILED) == {
        CardEvent.RETRY_PRODUCTION,
        CardEvent.CANCEL,
        CardEvent.ABANDON,
    }


def test_bank_account_is_separate() -> None:
    """Freezing the bank account is its own machine; a closed account only reopens."""
    assert BANK_ACCOUNT.next(BankState.ACTIVE, BankEvent.FREEZE) is BankState.FROZEN
    assert BANK_ACCOUNT.allowed(BankState.CLOSED) == {BankEvent.REOPEN}


@pytest.mark.parametrize("machine_states_events", MACHINES, ids=lambda m: m[0].name)
def test_every_event_names_its_source(
    machine_states_events: tuple[StateMachine[Any, Any], type[StrEnum], type[StrEnum]],
) -> None:
    """Each event of each machine names the seed clause or platform rule it comes from."""
    machine, _, events = machine_states_events
    assert set(machine.sources) == set(events)
    assert all(source.strip() for source in machine.sources.values())


@pytest.mark.parametrize("machine_states_events", MACHINES, ids=lambda m: m[0].name)
def test_every_reversal_has_its_interruption(
    machine_states_events: tuple[StateMachine[Any, Any], type[StrEnum], type[StrEnum]],
) -> None:
    """What a reversal pops is something an event of the same machine pushes."""
    machine, _, _ = machine_states_events
    pushed = set(machine.interrupts.values())
    for kinds in machine.reversals.values():
        assert kinds <= pushed
