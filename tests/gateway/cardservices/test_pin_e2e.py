"""PIN services end to end: teller API → daemon → pcscd → vpcd → card, and the key service.

The card of another province (Chongqing, 500000) at a 652300 branch: PIN change
from the initial PIN, reset through the national hub (the new PIN verifies,
the old does not), wrong PINs counted down to the lock, unlock (the PIN stays,
the counter is full again), the initial PIN refused as a new PIN, and the
status read from the card; a card of the branch's own province the same way.
Afterwards nothing secret is in the logs, the database, the key store files or
the MQTT payloads.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import logging
from typing import TYPE_CHECKING, Any

import aiomqtt
import pytest
import structlog
from sqlalchemy import func, select
from structlog.testing import capture_logs

from gateway.operations.rows import ApplicationRow
from gateway.runtime.logs import configure_logging
from tests.gateway.cardservices.conftest import (
    CHONGQING_SSN,
    XINJIANG_SSN,
    add_chongqing_card,
    add_xinjiang_card,
)
from tests.gateway.test_secret_hygiene import database_dump, read_key_files

if TYPE_CHECKING:
    from pathlib import Path

    from tests.gateway.cardservices.conftest import PinBranch

pytestmark = [pytest.mark.integration, pytest.mark.pcsc]

HOLDER_PIN = "246810"
NEW_PIN = "864200"
WRONG_PIN = "975310"


def body(ssn: str, **changes: Any) -> dict[str, Any]:  # noqa: ANN401
    """The holder in person at the window, with the card."""
    found: dict[str, Any] = {
        "case": "self",
        "channel": "window",
        "applicant": {"id_number": ssn, "name": "李四"},
        "materials": ["applicant-id-card", "applicant-ss-card"],
    }
    found.update(changes)
    return found


async def _receipt_takes_the_images(b: PinBranch, answer: dict[str, Any], operation: str) -> None:
    """A PIN service has its receipt (completed, the holder on record) and takes its images."""
    receipt = answer["receipt_number"]
    status, found, _ = await b.branch.call("GET", f"/v1/applications/{receipt}")
    assert status == 200, found
    assert (found["operation"], found["status"], found["holder"]) == (
        operation,
        "completed",
        answer["holder"],
    )
    for kind in ("credential-image", "scene-image"):
        status, stored, _ = await b.branch.call(
            "POST",
            f"/v1/applications/{receipt}/archive",
            body={
                "kind": kind,
                "content_type": "image/jpeg",
                "data": base64.b64encode(b"\xff\xd8" + kind.encode() * 20).decode(),
            },
        )
        assert status == 201, stored


async def test_card_of_another_province(pin_branch: PinBranch, tmp_path: Path) -> None:  # noqa: PLR0915 - one story on one card
    """Chongqing card at a 652300 branch: change, reset via the hub, lock, unlock, status."""
    b = pin_branch
    card = add_chongqing_card(b.platform, tmp_path / "chongqing.json")
    await b.insert(card)
    who = body(CHONGQING_SSN)

    b.pad.type_in("123456", HOLDER_PIN)  # from the initial PIN to the holder's own
    status, answer = await b.call("/v1/operations/pin-change", who)
    assert status == 200, answer.get("missing", answer)
    assert (answer["issuer_province"], answer["cross_region"]) == ("500000", True)
    assert answer["tries_left_after"] == 3
    assert card.state.pin == HOLDER_PIN
    await _receipt_takes_the_images(b, answer, "pin-change")

    routed = b.platform.hub.routed
    b.pad.type_in(NEW_PIN)
    with capture_logs() as logs:
        status, answer = await b.call("/v1/operations/pin-reset", who)
    assert status == 200, answer.get("missing", answer)
    assert answer["issuer_province"] == "500000"
    assert "500000" in answer["message_en"]
    assert b.platform.hub.routed > routed  # through the national hub
    assert [e["issuer"] for e in logs if e["event"] == "key_service_answered"] == ["500000"]

    b.pad.type_in(HOLDER_PIN)  # the old PIN no longer verifies ...
    status, answer = await b.call("/v1/operations/pin-change", who)
    assert (status, answer["code"], answer["tries_left"]) == (422, "pin-wrong", 2)
    b.pad.type_in(NEW_PIN, HOLDER_PIN)  # ... the new one does (and the tries are full again)
    status, answer = await b.call("/v1/operations/pin-change", who)
    assert status == 200, answer.get("missing", answer)
    assert (answer["tries_left_before"], answer["tries_left_after"]) == (2, 3)

    b.pad.type_in(NEW_PIN)  # counted down to the lock
    status, answer = await b.call("/v1/operations/pin-change", who)
    assert (status, answer["tries_left"]) == (422, 2)
    b.pad.type_in(WRONG_PIN)
    status, answer = await b.call("/v1/operations/pin-change", who)
    assert (status, answer["tries_left"]) == (422, 1)
    b.pad.type_in(WRONG_PIN)
    status, answer = await b.call("/v1/operations/pin-change", who)
    assert (status, answer["code"], answer["tries_left"]) == (409, "pin-locked", 0)
    status, answer = await b.call("/v1/operations/pin-change", who)
    assert (status, answer["code"]) == (409, "pin-locked")  # refused before the pad
    assert card.state.retries_left == 0

    status, answer = await b.call("/v1/operations/unlock", who)
    assert status == 200, answer.get("missing", answer)
    assert (answer["tries_left_before"], answer["tries_left_after"]) == (0, 3)
    assert card.state.pin == HOLDER_PIN  # the PIN stays
    await _receipt_takes_the_images(b, answer, "unlock")
    status, answer = await b.call("/v1/operations/unlock", who)
    assert (status, answer["code"], answer["tries_left"]) == (409, "pin-not-locked", 3)

    b.pad.type_in("123456")
    status, answer = await b.call("/v1/operations/pin-reset", who)
    assert (status, answer["code"]) == (422, "pin-default-refused")
    assert card.state.pin == HOLDER_PIN

    status, answer = await b.call("/v1/card-services/status", who)
    assert status == 200, answer.get("missing", answer)
    assert (answer["application_state"], answer["issuer_province"]) == ("1", "500000")
    assert answer["tries_left_before"] == 3

    status, answer = await b.call("/v1/operations/pin-reset", body(XINJIANG_SSN))
    assert (status, answer["code"]) == (409, "card-holder-mismatch")


async def test_card_of_this_province_and_secrets(pin_branch: PinBranch, tmp_path: Path) -> None:
    """A 652300 card: reset, then VERIFY with the new PIN; no secret anywhere afterwards."""
    b = pin_branch
    logs = io.StringIO()
    configure_logging("debug", "json", stream=logs)
    payloads: list[bytes] = []
    port = b.daemon.config.devices.broker.port  # type: ignore[union-attr]

    async def listen() -> None:
        async with aiomqtt.Client("127.0.0.1", port, identifier="scanner") as client:
            await client.subscribe("#", qos=1)
            async for message in client.messages:
                payloads.append(bytes(message.payload))  # noqa: PERF401

    listener = asyncio.create_task(listen())
    try:
        card = add_xinjiang_card(b.platform, tmp_path / "xinjiang.json")
        await b.insert(card)
        who = body(XINJIANG_SSN)
        b.pad.type_in(NEW_PIN)
        status, answer = await b.call("/v1/operations/pin-reset", who)
        assert status == 200, answer.get("missing", answer)
        assert (answer["issuer_province"], answer["cross_region"]) == ("650000", False)
        b.pad.type_in(NEW_PIN, HOLDER_PIN)
        status, answer = await b.call("/v1/operations/pin-change", who)
        assert status == 200, answer.get("missing", answer)
        assert card.state.pin == HOLDER_PIN
        await b.daemon.audit_reads.drain()
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
    assert payloads, "the broker carried no telemetry"
    places = {
        "MQTT payloads": b"\n".join(payloads),
        "logs": logs.getvalue().encode(),
        "database": await database_dump(str(b.daemon.config.database_url)),
        "key store files": await asyncio.to_thread(read_key_files, tmp_path),
    }
    assert b"card.pin-reset" in places["database"]
    needles: dict[str, list[bytes]] = {
        "identity number": [XINJIANG_SSN.encode()],
        "pin": [NEW_PIN.encode(), HOLDER_PIN.encode()],
    }
    for n, block in enumerate(b.pad.blocks):
        raw = block.ciphertext_bytes()
        needles[f"pin block {n}"] = [raw, raw.hex().encode(), raw.hex().upper().encode()]
    hits = [
        f"{what} in {where}"
        for where, haystack in places.items()
        for what, forms in needles.items()
        if any(form in haystack for form in forms)
    ]
    assert hits == []


async def test_one_request_at_a_time_at_a_window(
    pin_branch: PinBranch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A double click while the holder types: the second request is refused, one receipt."""
    b = pin_branch
    card = add_xinjiang_card(b.platform, tmp_path / "xinjiang.json")
    await b.insert(card)
    typing, typed = asyncio.Event(), asyncio.Event()
    read_new_pin = b.pad.read_new_pin

    async def holder_types(*, account: str, timeout: float) -> Any:  # noqa: ANN401, ASYNC109
        typing.set()
        await typed.wait()
        return await read_new_pin(account=account, timeout=timeout)

    monkeypatch.setattr(b.pad, "read_new_pin", holder_types)
    b.pad.type_in(NEW_PIN)
    first = asyncio.create_task(b.call("/v1/operations/pin-reset", body(XINJIANG_SSN)))
    await typing.wait()  # the holder is at the pad
    again = await asyncio.gather(
        *(b.call("/v1/operations/pin-reset", body(XINJIANG_SSN)) for _ in range(5))
    )
    assert [(status, answer["code"]) for status, answer in again] == [(409, "window-busy")] * 5
    typed.set()
    status, answer = await first
    assert status == 200, answer
    async with b.daemon.engine.connect() as conn:
        receipts = (
            await conn.execute(
                select(func.count())
                .select_from(ApplicationRow)
                .where(ApplicationRow.operation == "pin-reset")
            )
        ).scalar_one()
    assert receipts == 1
    assert card.state.pin == NEW_PIN
