"""The day's close (日终) over the platform and bank simulators: counted, compared, closed.

The branch reports a loss (platform and bank through the outbox) and takes a fee
by a debit in the bank core; the close compares what it had acknowledged with
what each simulator says it accepted from this branch that day. SQLite and
PostgreSQL, mutual TLS to both simulators.
"""

from __future__ import annotations

import argparse
import asyncio
import io
from collections import Counter
from datetime import date
from typing import TYPE_CHECKING, Any

import pytest
from rich.console import Console
from sqlalchemy import func, select

from gateway.closing.client import run_async
from gateway.operations.rows import ApplicationRow, BusinessDayRow
from simulators.bank.simulator import Account
from tests.fakes import FakeClock
from tests.gateway.branch import ADULT, AGENT, apply_body
from tests.gateway.builders import TOKENS
from tests.gateway.cardservices.test_loss import loss_body, loss_world

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from tests.gateway.cardservices.test_loss import LossWorld

pytestmark = pytest.mark.integration

#: FakeClock's wall time, 2026-11-23 09:00 UTC, is 17:00 in Beijing: the same day.
DAY = "2026-11-23"
OTHER = {"id_number": AGENT, "name": "李四"}


@pytest.fixture
async def world(tmp_path: Path, database_url: str) -> AsyncIterator[LossWorld]:
    """The branch with the platform and bank simulators over mutual TLS."""
    async with loss_world(tmp_path, database_url, FakeClock(autojump=False)) as made:
        yield made


async def waive_all(world: LossWorld) -> None:
    """A supervisor waives the images every application of the day still lacks."""
    async with world.daemon.engine.connect() as conn:
        receipts = (
            await conn.execute(
                select(ApplicationRow.receipt_number).where(
                    ApplicationRow.archive_status == "incomplete"
                )
            )
        ).scalars()
    for receipt in list(receipts):
        status, answer = await world.post(
            f"/v1/applications/{receipt}/archive-waiver",
            {"reason": "扫描仪故障，纸质材料已留存"},
            role="supervisor",
        )
        assert status == 200, answer


async def a_day_of_work(world: LossWorld) -> str:
    """A loss reported (platform and bank), a reissue whose fee is debited at the bank."""
    await world.active_card()
    status, answer = await world.post("/v1/operations/report-formal-loss", loss_body(scope="both"))
    assert status == 200, answer
    status, answer = await world.post("/v1/operations/reissue", loss_body())
    assert status == 200, answer
    receipt = answer["receipt_number"]
    # the lost card's account is frozen now: the citizen names another account
    world.bank.accounts["D00000001"] = Account("6217000000000000009", ADULT, "D00000001")
    world.bank.accounts["D00000001"].state = "active"
    status, fee = await world.post(
        f"/v1/applications/{receipt}/fee", {"method": "debit", "account": "D00000001"}
    )
    assert status == 200, fee
    await world.delivered(2)  # report_loss and freeze acknowledged
    return str(receipt)


async def test_a_day_balanced_with_the_platform_and_the_bank_is_closed(world: LossWorld) -> None:
    """Refused while images are missing; then closed, balanced, with the day's counts."""
    await a_day_of_work(world)
    status, refused = await world.post(f"/v1/days/{DAY}/close", {}, role="supervisor")
    assert (status, refused["code"]) == (409, "day-archive-incomplete")
    assert len(refused["receipts"]) == 3  # the apply, the loss report, the reissue
    await waive_all(world)
    status, problem = await world.post(f"/v1/days/{DAY}/close", {})  # a teller may not
    assert (status, problem["code"]) == (403, "forbidden")
    status, closed = await world.post(f"/v1/days/{DAY}/close", {}, role="supervisor")
    assert status == 200, closed
    summary = closed["summary"]
    assert (closed["status"], summary["balanced"], summary["differences"]) == (
        "closed",
        True,
        [],
    ), summary
    assert summary["fees"]["settled"] == [{"method": "debit", "count": 1, "yuan": 20}]
    operations = {(o["operation"], o["status"]): o["count"] for o in summary["operations"]}
    assert operations == {
        ("apply", "accepted"): 1,
        ("report-formal-loss", "completed"): 1,
        ("reissue", "accepted"): 1,
    }
    assert summary["compared"] == ["bank", "platform"]
    status, read, _ = await world.branch.call("GET", f"/v1/days/{DAY}", role="ops")
    assert (status, read["status"], read["summary"]) == (200, "closed", summary)


async def test_a_message_the_platform_lost_is_a_difference(world: LossWorld) -> None:
    """The branch had the loss report acknowledged; the platform's day has none: listed."""
    await a_day_of_work(world)
    await waive_all(world)
    log = world.platform.endpoint.log
    lost = next(e for e in log if e.operation == "report_loss")
    log.remove(lost)
    status, closed = await world.post(f"/v1/days/{DAY}/close", {}, role="supervisor")
    assert status == 200, closed
    assert closed["summary"]["balanced"] is False
    assert closed["summary"]["differences"] == [
        {"target": "platform", "operation": "report_loss", "what": "count",
         "branch": 1, "remote": 0},
    ]  # fmt: skip


async def test_a_closed_day_takes_nothing_until_a_supervisor_reopens_it(world: LossWorld) -> None:
    """After the close: no acceptance, no fee; reopened with a reason, work goes on."""
    receipt = await a_day_of_work(world)
    await waive_all(world)
    status, _ = await world.post(f"/v1/days/{DAY}/close", {}, role="supervisor")
    assert status == 200
    before = await _applications(world)
    status, refused = await world.post("/v1/operations/apply", apply_body(applicant=OTHER))
    assert (status, refused["code"], refused["day"]) == (409, "day-closed", DAY)
    assert await _applications(world) == before  # nothing accepted
    status, refused = await world.post(f"/v1/applications/{receipt}/fee", {"method": "cash"})
    assert (status, refused["code"]) == (409, "day-closed")
    async with world.daemon.engine.connect() as conn:  # the day before the close stands
        fee = (
            await conn.execute(
                select(ApplicationRow.fee_status).where(ApplicationRow.receipt_number == receipt)
            )
        ).scalar_one()
    assert fee == "settled"  # settled by the debit before the close, not again
    status, refused = await world.post(f"/v1/days/{DAY}/reopen", {"reason": "补录一笔"})
    assert (status, refused["code"]) == (403, "forbidden")
    status, opened = await world.post(
        f"/v1/days/{DAY}/reopen", {"reason": "补录一笔挂失业务"}, role="supervisor"
    )
    assert (status, opened["status"], opened["reopen_reason"]) == (200, "open", "补录一笔挂失业务")
    status, answer = await world.post("/v1/operations/apply", apply_body(applicant=OTHER))
    assert status == 200, answer


async def test_twenty_closes_at_once_close_once(world: LossWorld) -> None:
    """20 supervisors' closes at once: one closes the day, the others find it closed."""
    await a_day_of_work(world)
    await waive_all(world)
    answers = await asyncio.gather(
        *(world.post(f"/v1/days/{DAY}/close", {}, role="supervisor") for _ in range(20))
    )
    tally: Counter[Any] = Counter(
        "ok" if status == 200 else (status, answer["code"]) for status, answer in answers
    )
    assert tally == Counter({"ok": 1, (409, "day-already-closed"): 19}), tally
    status, future = await world.post("/v1/days/2026-11-24/close", {}, role="supervisor")
    assert (status, future["code"]) == (422, "day-in-future")


async def test_branchd_day_close_through_the_api(world: LossWorld, tmp_path: Path) -> None:
    """``branchd day close`` with a supervisor's token: exit 0 balanced; ``show`` reads it."""
    await a_day_of_work(world)
    await waive_all(world)
    token = tmp_path / "supervisor.token"
    token.write_text(TOKENS["supervisor"], encoding="ascii")
    options = {
        "url": world.daemon.urls[0], "token_file": token, "cert": None, "key": None,
        "ca": None, "idempotency_key": None, "day": DAY,
    }  # fmt: skip
    out = io.StringIO()
    console = Console(file=out, width=120, highlight=False)
    closed = await run_async(argparse.Namespace(day_command="close", **options), console=console)
    assert closed == 0, out.getvalue()
    assert "balanced" in out.getvalue()
    assert "NOT balanced" not in out.getvalue()
    again = await run_async(argparse.Namespace(day_command="close", **options), console=console)
    assert again == 1  # refused: closed already
    shown = await run_async(argparse.Namespace(day_command="show", **options), console=console)
    assert shown == 0


async def test_a_day_that_is_no_business_day_is_a_bad_request(world: LossWorld) -> None:
    """Not a date, or before 2000: 400 ``invalid-day``, nothing read or closed."""
    for text in ("2026-13-01", "0001-01-01", "20261123", "1999-12-31"):
        status, problem = await world.post(f"/v1/days/{text}/close", {}, role="supervisor")
        assert (status, problem["code"]) == (400, "invalid-day"), text
        status, problem, _ = await world.branch.call("GET", f"/v1/days/{text}")
        assert (status, problem["code"]) == (400, "invalid-day"), text


async def _applications(world: LossWorld) -> int:
    async with world.daemon.engine.connect() as conn:
        return int((await conn.execute(select(func.count(ApplicationRow.id)))).scalar_one())


async def test_twenty_reopens_at_once_reopen_once(world: LossWorld) -> None:
    """One supervisor's reopening is kept with its reason; the others find the day open."""
    status, _ = await world.post(f"/v1/days/{DAY}/close", {}, role="supervisor")
    assert status == 200
    answers = await asyncio.gather(
        *(
            world.post(f"/v1/days/{DAY}/reopen", {"reason": f"补录 {n}"}, role="supervisor")
            for n in range(20)
        )
    )
    ok = [answer for status, answer in answers if status == 200]
    refused = Counter((status, answer["code"]) for status, answer in answers if status != 200)
    assert len(ok) == 1, answers
    assert refused == Counter({(409, "day-not-closed"): 19}), refused
    async with world.daemon.engine.connect() as conn:
        stored = (
            await conn.execute(
                select(BusinessDayRow.status, BusinessDayRow.reopen_reason).where(
                    BusinessDayRow.day == date(2026, 11, 23)
                )
            )
        ).one()
    assert tuple(stored) == ("open", ok[0]["reopen_reason"])
