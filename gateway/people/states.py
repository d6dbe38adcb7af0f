"""State machines of a card, as transition tables.

Theory of operation
-------------------
A social security card has three independent lives, each its own table:

* the **social-security application** (AAZ502 in the national data dictionary):
  ``0`` sealed / not yet enabled, ``1`` normal, ``2`` formal loss, ``3``
  application locked, ``4`` temporary loss, ``9`` cancelled;
* the **card record** as platforms in the field track production and issue:
  ``00`` initial, ``01`` in production, ``02`` awaiting pickup, ``03`` picked up,
  ``04`` active, ``05`` formal loss, ``06`` temporary loss, ``07`` reissue under
  way, ``08`` replacement under way, ``09`` cancelled, ``17`` instant issuance
  failed;
* the **bank account** (financial function), activated, frozen and closed in the
  bank core, separately from the social-security side.

An event not in a state's row is refused with :class:`IllegalTransition`,
which names the machine, the state and the event. Nothing else in the code
decides whether a card may change state.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Final, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "APPLICATION",
    "BANK_ACCOUNT",
    "CARD",
    "ApplicationEvent",
    "ApplicationState",
    "BankEvent",
    "BankState",
    "CardEvent",
    "CardState",
    "IllegalTransition",
    "StateMachine",
]


class ApplicationState(StrEnum):
    """AAZ502: state of the card's social-security application."""

    SEALED = "0"  # 封存 / not yet enabled
    NORMAL = "1"  # 正常
    FORMAL_LOSS = "2"  # 正式挂失
    LOCKED = "3"  # 应用锁定
    TEMPORARY_LOSS = "4"  # 临时挂失
    CANCELLED = "9"  # 注销


class ApplicationEvent(StrEnum):
    """What can happen to the social-security application."""

    ENABLE = "enable"  # 启用 (window, online, or automatically 96 h after batch pickup)
    REPORT_TEMPORARY_LOSS = "report-temporary-loss"
    REPORT_FORMAL_LOSS = "report-formal-loss"
    CANCEL_LOSS = "cancel-loss"  # 解挂
    LOCK = "lock"  # PIN tries exhausted, or locked by the platform
    UNLOCK = "unlock"  # 解锁
    CANCEL = "cancel"  # 注销
    ROLLBACK = "rollback"  # 回退 of a cancellation


class CardState(StrEnum):
    """The card record's production and issue state."""

    INITIAL = "00"
    IN_PRODUCTION = "01"
    AWAITING_PICKUP = "02"
    PICKED_UP = "03"
    ACTIVE = "04"
    FORMAL_LOSS = "05"
    TEMPORARY_LOSS = "06"
    REISSUE_UNDER_WAY = "07"
    REPLACEMENT_UNDER_WAY = "08"
    CANCELLED = "09"
    INSTANT_ISSUANCE_FAILED = "17"


class CardEvent(StrEnum):
    """What can happen to the card record."""

    START_PRODUCTION = "start-production"
    PRODUCTION_FAILED = "production-failed"  # instant issuance failed (17)
    RETRY_PRODUCTION = "retry-production"
    PRODUCED = "produced"  # made, waiting at the branch
    ISSUED = "issued"  # instant issuance: made and handed over at the window
    PICK_UP = "pick-up"
    ACTIVATE = "activate"
    REPORT_TEMPORARY_LOSS = "report-temporary-loss"
    REPORT_FORMAL_LOSS = "report-formal-loss"
    CANCEL_LOSS = "cancel-loss"
    START_REISSUE = "start-reissue"  # 补领 after formal loss
    START_REPLACEMENT = "start-replacement"  # 换领 / 换发 of a damaged or expired card
    CANCEL = "cancel"
    ROLLBACK = "rollback"


class BankState(StrEnum):
    """The bank account (financial function) of the card, in the bank core."""

    NOT_OPENED = "not-opened"
    OPENED = "opened"  # bound, not yet activated
    ACTIVE = "active"
    FROZEN = "frozen"  # loss of the bank account reported
    CLOSED = "closed"


class BankEvent(StrEnum):
    """What can happen to the bank account."""

    OPEN = "open"
    ACTIVATE = "activate"
    FREEZE = "freeze"
    UNFREEZE = "unfreeze"
    CLOSE = "close"


S = TypeVar("S", bound=StrEnum)
E = TypeVar("E", bound=StrEnum)


class IllegalTransition(Exception):  # noqa: N818 - the domain's own word for it
    """An event that the current state does not allow.

    Attributes:
        machine: which state machine (``application``, ``card``, ``bank-account``).
        state: the current state's value.
        event: the refused event's value.
    """

    def __init__(self, machine: str, state: StrEnum, event: StrEnum) -> None:
        """Keep what was refused, for the caller's problem document."""
        super().__init__(f"{machine}: {event.value!r} is not allowed in state {state.value!r}")
        self.machine = machine
        self.state = state
        self.event = event


class StateMachine(Generic[S, E]):
    """A transition table: ``state -> event -> next state``."""

    def __init__(self, name: str, table: Mapping[S, Mapping[E, S]]) -> None:
        """Keep the table; every state must have a row (possibly empty)."""
        self.name = name
        self.table = table

    def allowed(self, state: S) -> frozenset[E]:
        """The events ``state`` accepts."""
        return frozenset(self.table[state])

    def next(self, state: S, event: E) -> S:
        """The state after ``event``, or :class:`IllegalTransition`."""
        try:
            return self.table[state][event]
        except KeyError:
            raise IllegalTransition(self.name, state, event) from None


_A, _AE = ApplicationState, ApplicationEvent
APPLICATION: Final = StateMachine[ApplicationState, ApplicationEvent](
    "application",
    {
        _A.SEALED: {
            _AE.ENABLE: _A.NORMAL,
            _AE.REPORT_TEMPORARY_LOSS: _A.TEMPORARY_LOSS,
            _AE.REPORT_FORMAL_LOSS: _A.FORMAL_LOSS,
            _AE.CANCEL: _A.CANCELLED,
        },
        _A.NORMAL: {
            _AE.REPORT_TEMPORARY_LOSS: _A.TEMPORARY_LOSS,
            _AE.REPORT_FORMAL_LOSS: _A.FORMAL_LOSS,
            _AE.LOCK: _A.LOCKED,
            _AE.CANCEL: _A.CANCELLED,
        },
        _A.TEMPORARY_LOSS: {
            _AE.CANCEL_LOSS: _A.NORMAL,
            _AE.REPORT_FORMAL_LOSS: _A.FORMAL_LOSS,
            _AE.CANCEL: _A.CANCELLED,
        },
        # A formal loss is final for this card: a reissue makes a new one. It can
        # still be cancelled by the holder (挂失解除 is only for temporary loss).
        _A.FORMAL_LOSS: {_AE.CANCEL: _A.CANCELLED},
        _A.LOCKED: {
            _AE.UNLOCK: _A.NORMAL,
            _AE.REPORT_TEMPORARY_LOSS: _A.TEMPORARY_LOSS,
            _AE.REPORT_FORMAL_LOSS: _A.FORMAL_LOSS,
            _AE.CANCEL: _A.CANCELLED,
        },
        _A.CANCELLED: {_AE.ROLLBACK: _A.NORMAL},
    },
)

_C, _CE = CardState, CardEvent
_LOSS_AND_CANCEL: Final = {
    _CE.REPORT_TEMPORARY_LOSS: _C.TEMPORARY_LOSS,
    _CE.REPORT_FORMAL_LOSS: _C.FORMAL_LOSS,
    _CE.CANCEL: _C.CANCELLED,
}
CARD: Final = StateMachine[CardState, CardEvent](
    "card",
    {
        _C.INITIAL: {_CE.START_PRODUCTION: _C.IN_PRODUCTION, _CE.CANCEL: _C.CANCELLED},
        _C.IN_PRODUCTION: {
            _CE.PRODUCED: _C.AWAITING_PICKUP,
            _CE.ISSUED: _C.PICKED_UP,
            _CE.PRODUCTION_FAILED: _C.INSTANT_ISSUANCE_FAILED,
            # A batch card may be withdrawn while the platform makes it; the
            # production controller rejects a card already in a station.
            _CE.CANCEL: _C.CANCELLED,
        },
        _C.INSTANT_ISSUANCE_FAILED: {
            _CE.RETRY_PRODUCTION: _C.IN_PRODUCTION,
            _CE.CANCEL: _C.CANCELLED,
        },
        _C.AWAITING_PICKUP: {_CE.PICK_UP: _C.PICKED_UP, **_LOSS_AND_CANCEL},
        _C.PICKED_UP: {_CE.ACTIVATE: _C.ACTIVE, **_LOSS_AND_CANCEL},
        _C.ACTIVE: {_CE.START_REPLACEMENT: _C.REPLACEMENT_UNDER_WAY, **_LOSS_AND_CANCEL},
        _C.TEMPORARY_LOSS: {
            _CE.CANCEL_LOSS: _C.ACTIVE,
            _CE.REPORT_FORMAL_LOSS: _C.FORMAL_LOSS,
            _CE.CANCEL: _C.CANCELLED,
        },
        _C.FORMAL_LOSS: {_CE.START_REISSUE: _C.REISSUE_UNDER_WAY, _CE.CANCEL: _C.CANCELLED},
        # While the new card is made the old record waits; when the new card is
        # issued the old one is cancelled (the reissue invalidates it).
        _C.REISSUE_UNDER_WAY: {_CE.CANCEL: _C.CANCELLED},
        _C.REPLACEMENT_UNDER_WAY: {_CE.CANCEL: _C.CANCELLED, _CE.ROLLBACK: _C.ACTIVE},
        _C.CANCELLED: {_CE.ROLLBACK: _C.ACTIVE},
    },
)

_B, _BE = BankState, BankEvent
BANK_ACCOUNT: Final = StateMachine[BankState, BankEvent](
    "bank-account",
    {
        _B.NOT_OPENED: {_BE.OPEN: _B.OPENED},
        _B.OPENED: {_BE.ACTIVATE: _B.ACTIVE, _BE.FREEZE: _B.FROZEN, _BE.CLOSE: _B.CLOSED},
        _B.ACTIVE: {_BE.FREEZE: _B.FROZEN, _BE.CLOSE: _B.CLOSED},
        _B.FROZEN: {_BE.UNFREEZE: _B.ACTIVE, _BE.CLOSE: _B.CLOSED},
        _B.CLOSED: {},
    },
)
