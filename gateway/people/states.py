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

Interruptions remember what they interrupted
--------------------------------------------
A loss report, a lock, a cancellation, a freeze and a closure *interrupt* a
state; each machine keeps a history of the interruptions in force, newest
last, each with the state under it (:class:`Held`). A reversal (cancel loss,
unlock, rollback, unfreeze, reopen) pops only its own interruption and returns
to the state under it: a temporary loss of a card awaiting pickup (``02``)
and its cancellation leave the card awaiting pickup, a cancelled card that
was formally lost comes back formally lost. A reversal whose interruption is
not the newest one in force is refused: unlock while the card is also
reported lost waits for the loss to be cancelled first. A card superseded by
its successor (reissue, replacement) is retired with its history cleared, so
nothing can bring it back.

:meth:`StateMachine.step` applies one event to a state and its history; the
table still decides which events a state accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    "Held",
    "History",
    "IllegalTransition",
    "Interruption",
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
    SUPERSEDE = "supersede"  # retired when its successor card is issued (补领 / 换领)


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
    SUPERSEDE = "supersede"  # the successor card is issued: this one is retired
    WITHDRAW = "withdraw"  # the reissue / replacement is withdrawn before its card is made
    ABANDON = "abandon"  # a card never made whose application is withdrawn: retired


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
    REOPEN = "reopen"  # a rolled-back cancellation restores the account


class Interruption(StrEnum):
    """What interrupts a state and may later be reversed."""

    TEMPORARY_LOSS = "temporary-loss"
    FORMAL_LOSS = "formal-loss"
    LOCK = "lock"
    CANCELLATION = "cancellation"
    REPLACEMENT = "replacement"  # a reissue or replacement under way
    FREEZE = "freeze"
    CLOSURE = "closure"


@dataclass(frozen=True, slots=True)
class Held:
    """One interruption in force and the state's value under it."""

    interruption: Interruption
    under: str


#: The interruptions in force on one machine, oldest first.
History = tuple[Held, ...]


S = TypeVar("S", bound=StrEnum)
E = TypeVar("E", bound=StrEnum)


class IllegalTransition(Exception):  # noqa: N818 - the domain's own word for it
    """An event that the current state does not allow.

    Attributes:
        machine: which state machine (``application``, ``card``, ``bank-account``).
        state: the current state's value.
        event: the refused event's value.
    """

    def __init__(self, machine: str, state: StrEnum, event: StrEnum, *, reason: str = "") -> None:
        """Keep what was refused, for the caller's problem document."""
        why = f" ({reason})" if reason else ""
        super().__init__(f"{machine}: {event.value!r} is not allowed in state {state.value!r}{why}")
        self.machine = machine
        self.state = state
        self.event = event
        self.reason = reason


class StateMachine(Generic[S, E]):
    """A transition table ``state -> event -> next state``, with interruptions.

    Args:
        name: The machine's name in refusals.
        table: Every state's row (possibly empty).
        interrupts: Events that push an interruption over the current state.
        reversals: Events that pop their own interruption (one of a set).
        retires: Events that end the machine's life and clear its history.
        sources: Where each event's rule comes from (seed clause or platform rule).
    """

    def __init__(  # noqa: PLR0913 - the machine's parts, by name
        self,
        name: str,
        table: Mapping[S, Mapping[E, S]],
        *,
        states: type[S],
        interrupts: Mapping[E, Interruption] | None = None,
        reversals: Mapping[E, frozenset[Interruption]] | None = None,
        retires: frozenset[E] = frozenset(),
        sources: Mapping[E, str] | None = None,
    ) -> None:
        """Keep the table and the history rules."""
        self.name = name
        self.table = table
        self.states = states
        self.interrupts: Mapping[E, Interruption] = interrupts or {}
        self.reversals: Mapping[E, frozenset[Interruption]] = reversals or {}
        self.retires = retires
        self.sources: Mapping[E, str] = sources or {}

    def allowed(self, state: S) -> frozenset[E]:
        """The events ``state`` accepts."""
        return frozenset(self.table[state])

    def next(self, state: S, event: E) -> S:
        """The state after ``event``, or :class:`IllegalTransition`."""
        try:
            return self.table[state][event]
        except KeyError:
            raise IllegalTransition(self.name, state, event) from None

    def step(self, state: S, history: History, event: E) -> tuple[S, History]:
        """The state and history after ``event``, or :class:`IllegalTransition`.

        An interrupting event pushes what it interrupted; a reversal pops its own
        interruption (which must be the newest in force) and returns the state
        under it; a retiring event clears the history.
        """
        target = self.next(state, event)
        kinds = self.reversals.get(event)
        if kinds is not None:
            if not history or history[-1].interruption not in kinds:
                newest = history[-1].interruption.value if history else "none"
                raise IllegalTransition(
                    self.name, state, event, reason=f"interruption in force: {newest}"
                )
            return self.states(history[-1].under), history[:-1]
        if event in self.retires:
            return target, ()
        interruption = self.interrupts.get(event)
        if interruption is not None:
            return target, (*history, Held(interruption, state.value))
        return target, history


_A, _AE = ApplicationState, ApplicationEvent
#: Every state may be retired when the card's successor is issued.
_RETIRE_APPLICATION: Final = {_AE.SUPERSEDE: _A.CANCELLED}
APPLICATION: Final = StateMachine[ApplicationState, ApplicationEvent](
    "application",
    {
        _A.SEALED: {
            _AE.ENABLE: _A.NORMAL,
            _AE.REPORT_TEMPORARY_LOSS: _A.TEMPORARY_LOSS,
            _AE.REPORT_FORMAL_LOSS: _A.FORMAL_LOSS,
            _AE.CANCEL: _A.CANCELLED,
            **_RETIRE_APPLICATION,
        },
        _A.NORMAL: {
            _AE.REPORT_TEMPORARY_LOSS: _A.TEMPORARY_LOSS,
            _AE.REPORT_FORMAL_LOSS: _A.FORMAL_LOSS,
            _AE.LOCK: _A.LOCKED,
            _AE.CANCEL: _A.CANCELLED,
            **_RETIRE_APPLICATION,
        },
        # Reversals (cancel loss, unlock, rollback) return to the state under their
        # interruption, whatever the target written here.
        _A.TEMPORARY_LOSS: {
            _AE.CANCEL_LOSS: _A.NORMAL,
            _AE.REPORT_FORMAL_LOSS: _A.FORMAL_LOSS,
            _AE.CANCEL: _A.CANCELLED,
            **_RETIRE_APPLICATION,
        },
        # A formal loss is final for this card: a reissue makes a new one. It can
        # still be cancelled by the holder (挂失解除 is only for temporary loss).
        _A.FORMAL_LOSS: {_AE.CANCEL: _A.CANCELLED, **_RETIRE_APPLICATION},
        _A.LOCKED: {
            _AE.UNLOCK: _A.NORMAL,
            _AE.REPORT_TEMPORARY_LOSS: _A.TEMPORARY_LOSS,
            _AE.REPORT_FORMAL_LOSS: _A.FORMAL_LOSS,
            _AE.CANCEL: _A.CANCELLED,
            **_RETIRE_APPLICATION,
        },
        _A.CANCELLED: {_AE.ROLLBACK: _A.NORMAL, **_RETIRE_APPLICATION},
    },
    states=ApplicationState,
    interrupts={
        _AE.REPORT_TEMPORARY_LOSS: Interruption.TEMPORARY_LOSS,
        _AE.REPORT_FORMAL_LOSS: Interruption.FORMAL_LOSS,
        _AE.LOCK: Interruption.LOCK,
        _AE.CANCEL: Interruption.CANCELLATION,
    },
    reversals={
        _AE.CANCEL_LOSS: frozenset({Interruption.TEMPORARY_LOSS}),
        _AE.UNLOCK: frozenset({Interruption.LOCK}),
        _AE.ROLLBACK: frozenset({Interruption.CANCELLATION}),
    },
    retires=frozenset({_AE.SUPERSEDE}),
    sources={
        _AE.ENABLE: "001 §2 启用; 001 §1.2.3 批量领卡 96 小时后自动启用",
        _AE.REPORT_TEMPORARY_LOSS: "001 §6 临时挂失",
        _AE.REPORT_FORMAL_LOSS: "001 §6 正式挂失",
        _AE.CANCEL_LOSS: "001 §6 解挂 (临时挂失解除, to the state before the loss)",
        _AE.LOCK: "001 §7 密码错误次数超限锁定",
        _AE.UNLOCK: "001 §7 解锁 (to the state before the lock)",
        _AE.CANCEL: "001 §9 注销",
        _AE.ROLLBACK: "001 §9 注销回退 (to the state before the cancellation)",
        _AE.SUPERSEDE: "001 §3 补换卡: 新卡制发后原卡注销, 不可回退",
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
        _C.INITIAL: {
            _CE.START_PRODUCTION: _C.IN_PRODUCTION,
            _CE.CANCEL: _C.CANCELLED,
            _CE.ABANDON: _C.CANCELLED,
        },
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
            _CE.ABANDON: _C.CANCELLED,
        },
        _C.AWAITING_PICKUP: {_CE.PICK_UP: _C.PICKED_UP, **_LOSS_AND_CANCEL},
        _C.PICKED_UP: {_CE.ACTIVATE: _C.ACTIVE, **_LOSS_AND_CANCEL},
        _C.ACTIVE: {_CE.START_REPLACEMENT: _C.REPLACEMENT_UNDER_WAY, **_LOSS_AND_CANCEL},
        # Cancel loss returns to the state under the loss (awaiting pickup, picked
        # up or active), whatever the target written here.
        _C.TEMPORARY_LOSS: {
            _CE.CANCEL_LOSS: _C.ACTIVE,
            _CE.REPORT_FORMAL_LOSS: _C.FORMAL_LOSS,
            _CE.CANCEL: _C.CANCELLED,
        },
        _C.FORMAL_LOSS: {_CE.START_REISSUE: _C.REISSUE_UNDER_WAY, _CE.CANCEL: _C.CANCELLED},
        # While the new card is made the old record waits; when the new card is
        # issued the old one is retired (the reissue invalidates it for good).
        # Withdrawn before the new card is made: back to the state under it.
        _C.REISSUE_UNDER_WAY: {_CE.SUPERSEDE: _C.CANCELLED, _CE.WITHDRAW: _C.FORMAL_LOSS},
        _C.REPLACEMENT_UNDER_WAY: {_CE.SUPERSEDE: _C.CANCELLED, _CE.WITHDRAW: _C.ACTIVE},
        _C.CANCELLED: {_CE.ROLLBACK: _C.ACTIVE},
    },
    states=CardState,
    interrupts={
        _CE.REPORT_TEMPORARY_LOSS: Interruption.TEMPORARY_LOSS,
        _CE.REPORT_FORMAL_LOSS: Interruption.FORMAL_LOSS,
        _CE.CANCEL: Interruption.CANCELLATION,
        _CE.START_REISSUE: Interruption.REPLACEMENT,
        _CE.START_REPLACEMENT: Interruption.REPLACEMENT,
    },
    reversals={
        _CE.CANCEL_LOSS: frozenset({Interruption.TEMPORARY_LOSS}),
        _CE.ROLLBACK: frozenset({Interruption.CANCELLATION}),
        _CE.WITHDRAW: frozenset({Interruption.REPLACEMENT}),
    },
    retires=frozenset({_CE.SUPERSEDE, _CE.ABANDON}),
    sources={
        _CE.START_PRODUCTION: "001 §1.1 申领受理后制卡",
        _CE.PRODUCTION_FAILED: "001 §1.1.3 即时制卡失败 (17), 24 小时内补制",
        _CE.RETRY_PRODUCTION: "001 §1.1.3 设备或网络故障后重新制卡",
        _CE.PRODUCED: "001 §1.2.3 制卡完成, 待领取",
        _CE.ISSUED: "001 §1.1.3 即时制卡, 当场发放",
        _CE.PICK_UP: "001 §1.2.3 领卡; 000 问题2 代领",
        _CE.ACTIVATE: "001 §2 启用 (激活)",
        _CE.REPORT_TEMPORARY_LOSS: "001 §6 临时挂失",
        _CE.REPORT_FORMAL_LOSS: "001 §6 正式挂失",
        _CE.CANCEL_LOSS: "001 §6 解挂 (to the state before the loss)",
        _CE.START_REISSUE: "001 §3 补领 (正式挂失后)",
        _CE.START_REPLACEMENT: "001 §3 换领 / 换发",
        _CE.CANCEL: "001 §9 注销",
        _CE.ROLLBACK: "001 §9 注销回退 (to the state before the cancellation)",
        _CE.SUPERSEDE: "001 §3 补换卡: 新卡制发后原卡注销, 不可回退",
        _CE.WITHDRAW: "001 §3 补换卡在制卡前撤销 (to the state before it; the fee reversed, 冲正)",
        _CE.ABANDON: "001 §1.1 申领在制卡前撤销: the card record is retired (fee reversed)",
    },
)

_B, _BE = BankState, BankEvent
BANK_ACCOUNT: Final = StateMachine[BankState, BankEvent](
    "bank-account",
    {
        _B.NOT_OPENED: {_BE.OPEN: _B.OPENED},
        _B.OPENED: {_BE.ACTIVATE: _B.ACTIVE, _BE.FREEZE: _B.FROZEN, _BE.CLOSE: _B.CLOSED},
        _B.ACTIVE: {_BE.FREEZE: _B.FROZEN, _BE.CLOSE: _B.CLOSED},
        # Unfreeze and reopen return to the state under the freeze or closure.
        _B.FROZEN: {_BE.UNFREEZE: _B.ACTIVE, _BE.CLOSE: _B.CLOSED},
        _B.CLOSED: {_BE.REOPEN: _B.ACTIVE},
    },
    states=BankState,
    interrupts={_BE.FREEZE: Interruption.FREEZE, _BE.CLOSE: Interruption.CLOSURE},
    reversals={
        _BE.UNFREEZE: frozenset({Interruption.FREEZE}),
        _BE.REOPEN: frozenset({Interruption.CLOSURE}),
    },
    sources={
        _BE.OPEN: "001 §1.1.3 制卡时开立并绑定银行账户",
        _BE.ACTIVATE: "001 §2 金融功能激活 (scope bank / both)",
        _BE.FREEZE: "001 §6 挂失: 银行账户冻结 (scope bank / both)",
        _BE.UNFREEZE: "001 §6 解挂: 解冻 (to the state before the freeze)",
        _BE.CLOSE: "001 §9 注销: 销户 (scope bank / both)",
        _BE.REOPEN: "001 §9 注销回退: 恢复账户 (to the state before the closure)",
    },
)
