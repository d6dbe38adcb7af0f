"""The bank adapter against the bank simulator over real mutual TLS and envelopes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from gateway.upstream import JsonBankClient, UpstreamRejectedError
from protocols.platform import Status

if TYPE_CHECKING:
    from simulators.bank import BankSimulator

pytestmark = pytest.mark.integration


async def test_account_lifecycle(bank_client: JsonBankClient, bank_sim: BankSimulator) -> None:
    """Open (twice: same account), activate, freeze, unfreeze."""
    account = await bank_client.open_account("X00000001", "650102199001011234")
    assert account == await bank_client.open_account("X00000001", "650102199001011234")
    await bank_client.activate_financial("X00000001")
    assert bank_sim.accounts["X00000001"].state == "active"
    await bank_client.freeze("X00000001")
    assert bank_sim.accounts["X00000001"].state == "frozen"
    await bank_client.unfreeze("X00000001")
    assert bank_sim.accounts["X00000001"].state == "active"
    with pytest.raises(UpstreamRejectedError) as info:
        await bank_client.freeze("X99999999")
    assert info.value.status == Status.NOT_FOUND


async def test_fee_debit_with_receipt_once(
    bank_client: JsonBankClient, bank_sim: BankSimulator
) -> None:
    """A fee debit returns a receipt; retried with its message id it debits once."""
    await bank_client.open_account("X00000001", "650102199001011234")
    first = await bank_client.debit_fee("X00000001", 2000, message_id="FEE-1")
    again = await bank_client.debit_fee("X00000001", 2000, message_id="FEE-1")
    assert first == again
    assert first.receipt_no.startswith("R")
    assert bank_sim.accounts["X00000001"].fees_fen == 2000
    assert bank_sim.counters.duplicates == 1
    with pytest.raises(ValueError, match="positive"):
        await bank_client.debit_fee("X00000001", 0)


async def test_the_bank_refuses_what_a_bank_core_refuses(
    bank_client: JsonBankClient, bank_sim: BankSimulator
) -> None:
    """No debit on a frozen or closed account; reopen and unfreeze return what was under."""
    await bank_client.open_account("X00000002", "650102199001011234")
    await bank_client.freeze("X00000002")  # frozen before it was ever activated
    with pytest.raises(UpstreamRejectedError) as info:
        await bank_client.debit_fee("X00000002", 2000)
    assert info.value.status == Status.INVALID_STATE
    await bank_client.close_account("X00000002")
    with pytest.raises(UpstreamRejectedError) as info:
        await bank_client.update_contact("X00000002", phone="13900000000")
    assert info.value.status == Status.INVALID_STATE
    with pytest.raises(UpstreamRejectedError):
        await bank_client.activate_financial("X00000002")
    await bank_client.reopen_account("X00000002")
    assert bank_sim.accounts["X00000002"].state == "frozen"
    await bank_client.unfreeze("X00000002")
    assert bank_sim.accounts["X00000002"].state == "opened"  # never activated
    await bank_client.update_contact("X00000002", phone="13900000000", address="昌吉市 2 号")
    account = bank_sim.accounts["X00000002"]
    assert (account.phone, account.address, account.fees_fen) == ("13900000000", "昌吉市 2 号", 0)
