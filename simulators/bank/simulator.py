"""A simulated bank core: accounts bound to social security cards, over mutual TLS.

One route, ``/bank/esb``, speaks the bank's ESB-style JSON
(:data:`protocols.bank.BANK_DIALECT`) inside envelopes, with the same
de-duplication, counters and faults as the platform simulator. Account states:
``opened`` (bound, financial function not active), ``active``, ``frozen``,
``closed``; a freeze or closure remembers the state it found (``Account.under``)
and unfreeze or reopen return to it. It refuses what a bank core refuses: a
debit on a frozen or closed account, an activation of an account not opened,
any change to a closed account but its reopening.
"""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, Self

import structlog

from protocols.bank import BANK_DIALECT, BankOperation
from protocols.platform import Request, Result, Status
from security.envelope import DictEnvelopeKeys, SenderIdentity
from security.pki import server_context
from security.suites import get_suite
from simulators.platform.server import EnvelopeEndpoint, Faults

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable
    from pathlib import Path
    from types import TracebackType

    from security.envelope import EnvelopeKeys
    from simulators.platform.server import Counters

__all__ = ["BANK_NAME", "Account", "BankSimulator", "run_bank_simulator"]

log = structlog.get_logger(__name__)

#: The bank core's envelope name.
BANK_NAME: Final = "BANK-CORE"
PATH: Final = "/bank/esb"


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Account:
    """A bank account bound to one card."""

    account_no: str
    aac002: str
    aaz500: str
    state: str = "opened"
    fees_fen: int = 0
    #: The state under each freeze or closure in force, oldest first.
    under: list[str] = field(default_factory=list)
    phone: str = ""
    address: str = ""


class BankSimulator:
    """The bank core behind one HTTPS listener."""

    def __init__(  # noqa: PLR0913 - keyword-only wiring
        self,
        *,
        ssl_context: ssl.SSLContext | None,
        trusted: EnvelopeKeys,
        suite: str = "gm",
        now: Callable[[], datetime] = _utc_now,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        identity: SenderIdentity | None = None,
    ) -> None:
        """Build an empty bank; nothing listens before :meth:`start`.

        ``identity`` is the bank's envelope identity (sender :data:`BANK_NAME`;
        a new random one of ``suite`` by default).
        """
        crypto = get_suite(suite)
        self.identity = identity or SenderIdentity(
            sender=BANK_NAME,
            key_id="bank-sig",
            key_version=1,
            signing_key=crypto.generate_signing_key(),
            aead_key=os.urandom(crypto.aead_key_size),
        )
        self.endpoint = EnvelopeEndpoint(
            ssl_context=ssl_context, keys=trusted, now=now, host=host, port=port, faults=faults
        )
        self.endpoint.add_route(PATH, self.identity, BANK_DIALECT, self._handle)
        self.accounts: dict[str, Account] = {}
        self.receipts: list[tuple[str, str, int]] = []
        #: Debits given back (冲正), by the debit's receipt.
        self.reversed: set[str] = set()

    @property
    def url(self) -> str:
        """The bank's URL (after :meth:`start`)."""
        return self.endpoint.url(PATH)

    @property
    def counters(self) -> Counters:
        """Items received, duplicates, repeats and refused envelopes."""
        return self.endpoint.counters

    def trust_bank(self, keys: DictEnvelopeKeys) -> None:
        """Add the bank's public key set to a branch's ``keys``."""
        keys.add(self.identity)

    async def set_faults(self, **changes: float | None) -> None:
        """Change faults at run time."""
        await self.endpoint.set_faults(**changes)

    async def _handle(self, receiver: str, item: Request) -> Result:  # noqa: PLR0911 - one answer per case
        del receiver
        op = BankOperation(item.operation)
        fields = item.fields
        number = fields["AAZ500"]
        account = self.accounts.get(number)
        if op is BankOperation.OPEN_ACCOUNT:
            if account is not None:
                return Result(
                    item.message_id, Status.OK, "已开户", {"accountNo": account.account_no}
                )
            account = Account(f"6217{len(self.accounts) + 1:015d}", fields["AAC002"], number)
            self.accounts[number] = account
            return Result(item.message_id, Status.OK, "交易成功", {"accountNo": account.account_no})
        if account is None:
            return Result(item.message_id, Status.NOT_FOUND, "账户不存在 no account")
        if op is BankOperation.DEBIT_FEE:
            return self._debit(item, account)
        if op is BankOperation.REVERSE_FEE:
            return self._reverse(item, account)
        if op is BankOperation.UPDATE_CONTACT:
            if account.state == "closed":
                return Result(item.message_id, Status.INVALID_STATE, "账户已销户 account closed")
            account.phone = fields.get("phone", account.phone)
            account.address = fields.get("address", account.address)
            return Result(item.message_id, Status.OK, "交易成功")
        return _change_state(item, op, account)

    def _reverse(self, item: Request, account: Account) -> Result:
        """Give a debit back once; a repeat finds it given back."""
        receipt = item.fields.get("receiptNo", "")
        debit = next((r for r in self.receipts if r[0] == receipt), None)
        if debit is None or debit[1] != account.aaz500:
            return Result(item.message_id, Status.NOT_FOUND, "原交易不存在 no such debit")
        if receipt not in self.reversed:
            if account.state == "closed":
                return Result(item.message_id, Status.INVALID_STATE, "账户已销户 account closed")
            self.reversed.add(receipt)
            account.fees_fen -= debit[2]
        return Result(item.message_id, Status.OK, "冲正成功", {"receiptNo": receipt})

    def _debit(self, item: Request, account: Account) -> Result:
        try:
            amount = int(item.fields["amount"])
        except ValueError:
            amount = 0
        if amount <= 0:
            return Result(item.message_id, Status.INVALID_REQUEST, "金额有误 bad amount")
        if account.state in {"frozen", "closed"}:
            return Result(
                item.message_id, Status.INVALID_STATE, f"账户{account.state}，不能扣款 cannot debit"
            )
        receipt = f"R{len(self.receipts) + 1:012d}"
        account.fees_fen += amount
        self.receipts.append((receipt, account.aaz500, amount))
        return Result(item.message_id, Status.OK, "交易成功", {"receiptNo": receipt})

    async def start(self) -> None:
        """Start listening."""
        await self.endpoint.start()

    async def stop(self) -> None:
        """Stop listening."""
        await self.endpoint.stop()

    async def __aenter__(self) -> Self:
        """Start."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop."""
        await self.stop()


def _change_state(item: Request, op: BankOperation, account: Account) -> Result:
    """Activate, freeze, unfreeze, close or reopen; a repeat finds the state already set."""
    interrupts = {BankOperation.FREEZE: "frozen", BankOperation.CLOSE_ACCOUNT: "closed"}
    reversals = {BankOperation.UNFREEZE: "frozen", BankOperation.REOPEN_ACCOUNT: "closed"}
    state = account.state
    if op is BankOperation.ACTIVATE_FINANCIAL:
        if state not in {"opened", "active"}:
            return Result(item.message_id, Status.INVALID_STATE, "账户状态不允许")
        account.state = "active"
    elif op in interrupts:
        target = interrupts[op]
        if state != target:
            if state == "closed":
                return Result(item.message_id, Status.INVALID_STATE, "账户已销户 account closed")
            account.under.append(state)
            account.state = target
    elif state == reversals[op] and account.under:
        account.state = account.under.pop()
    elif state in {"frozen", "closed"}:  # not the interruption this reverses
        return Result(item.message_id, Status.INVALID_STATE, "账户状态不允许")
    return Result(item.message_id, Status.OK, "交易成功", {"bankState": account.state})


async def run_bank_simulator(  # noqa: PLR0913 - the command line's options
    *,
    cert: Path,
    key: Path,
    ca: Path,
    trusted: EnvelopeKeys,
    host: str = "127.0.0.1",
    port: int = 8444,
    suite: str = "gm",
    faults: Faults | None = None,
    on_started: Callable[[BankSimulator], None] | None = None,
) -> None:
    """Serve the simulated bank core until SIGTERM/SIGINT or cancellation."""
    simulator = BankSimulator(
        ssl_context=server_context(cert, key, ca),
        trusted=trusted,
        suite=suite,
        host=host,
        port=port,
        faults=faults,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with simulator:
            log.info("bank_simulator_started", port=simulator.endpoint.port)
            if on_started is not None:
                on_started(simulator)
            await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
