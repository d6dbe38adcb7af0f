"""Card events, chip invalidation and status by identity, end to end over pcscd and vpcd.

A Chongqing card (another province) at a 652300 branch that has never seen it:
its status asked by the holder's identity number goes through the national
hub to Chongqing; a PIN change is reported to Chongqing as a card event
through the outbox, so are the lock seen at the window and the unlock; once
Chongqing has the card formally lost, reading it at the window blocks its
application on the chip with Chongqing's MAC-ed APPLICATION BLOCK, the teller
is told, and Chongqing hears of it. The outcomes are counted in ``/metrics``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from tests.gateway.cardservices.conftest import CHONGQING_SSN, add_chongqing_card
from tests.gateway.cardservices.test_pin_e2e import HOLDER_PIN, WRONG_PIN, body

if TYPE_CHECKING:
    from pathlib import Path

    from simulators.platform.provinces import Province
    from tests.gateway.cardservices.conftest import PinBranch

pytestmark = [pytest.mark.integration, pytest.mark.pcsc]

_ROUNDS = 400  # real TLS round trips: up to 20 s


async def events_of(province: Province, count: int) -> list[str]:
    """Wait until ``province`` heard ``count`` card events; their names."""
    for _ in range(_ROUNDS):
        if len(province.events) >= count:
            break
        await asyncio.sleep(0.05)
    return [event for _, event in province.events]


async def test_events_status_by_identity_and_chip_block(
    pin_branch: PinBranch, tmp_path: Path
) -> None:
    """Status by identity via the hub; PIN change reported; a lost card blocked on its chip."""
    b = pin_branch
    card = add_chongqing_card(b.platform, tmp_path / "chongqing.json")
    chongqing = b.platform.provinces["500000"]
    registered = next(iter(chongqing.cards.values()))
    who = body(CHONGQING_SSN)

    routed = b.platform.hub.routed
    status, answer = await b.call("/v1/card-services/status-by-identity", who)
    assert status == 200, answer
    assert (answer["issuer_province"], answer["cross_region"]) == ("500000", True)
    assert (answer["card_number"], answer["application_state"]) == (registered.aaz500, "1")
    assert answer["local_state"] is None
    assert b.platform.hub.routed > routed
    status, answer = await b.call(
        "/v1/card-services/status-by-identity", body("11010519491231002X")
    )
    assert (status, answer["code"]) == (404, "card-not-found")

    await b.insert(card)
    b.pad.type_in("123456", HOLDER_PIN)
    status, answer = await b.call("/v1/operations/pin-change", who)
    assert status == 200, answer
    assert await events_of(chongqing, 1) == ["pin-changed"]

    b.pad.type_in(WRONG_PIN, WRONG_PIN, WRONG_PIN)  # the lock seen at the window is reported
    for left in (2, 1):
        status, answer = await b.call("/v1/operations/pin-change", who)
        assert (status, answer["tries_left"]) == (422, left)
    status, answer = await b.call("/v1/operations/pin-change", who)
    assert (status, answer["code"]) == (409, "pin-locked")
    assert await events_of(chongqing, 2) == ["pin-changed", "pin-locked"]
    assert registered.aaz502 == "3"
    status, answer = await b.call("/v1/operations/unlock", who)
    assert status == 200, answer
    assert await events_of(chongqing, 3) == ["pin-changed", "pin-locked", "unlocked"]
    assert registered.aaz502 == "1"

    status, answer = await b.call("/v1/card-services/status", who)
    assert status == 200, answer
    assert answer["chip_blocked"] is False

    registered.aaz502 = "2"  # reported lost by telephone in Chongqing; a new card is on its way
    status, answer = await b.call("/v1/card-services/status", who)
    assert status == 200, answer
    assert (answer["application_state"], answer["chip_blocked"]) == ("2", True)
    assert "blocked" in answer["message_en"]
    assert card.state.application_blocked
    assert (await events_of(chongqing, 4))[-1] == "application-blocked"
    status, answer = await b.call("/v1/card-services/status", who)
    assert (status, answer["code"]) == (409, "card-application-blocked")

    async with b.branch.http.get(b.daemon.urls[0] + "/metrics") as response:
        metrics = await response.text()
    assert 'branchd_card_services_total{operation="pin-change",outcome="completed"} 1.0' in metrics
    assert (
        'branchd_card_services_total{operation="status-query",outcome="application-blocked"} 1.0'
        in metrics
    )
