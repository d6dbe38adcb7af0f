"""Online applications the platform sends here: kept once, listed with their deadline, verified.

The platform simulator pushes each application in a sealed envelope to the
daemon's notice endpoint over HTTP (the loss notices' channel), in both
dialects; the branch's answer is opened and read. SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import date
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import func, select

from gateway.demo.world import demo_photo
from gateway.operations.rows import ApplicationRow
from gateway.people.rows import CardRow
from gateway.upstream import PeerKeysFile
from gateway.upstream.notices import NOTICE_PATH
from protocols.platform import Status
from simulators.platform.notices import push_online_application
from tests.fakes import FakeClock
from tests.gateway.branch import ADULT, AGENT
from tests.gateway.cardservices.test_loss import LossWorld, loss_world
from tests.gateway.upstream.conftest import BRANCH, PROVINCE

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from protocols.platform import Result

pytestmark = pytest.mark.integration

CONCURRENT = 20


@pytest.fixture
async def world(tmp_path: Path, database_url: str) -> AsyncIterator[LossWorld]:
    """The branch with the platform (and bank) simulators over mutual TLS."""
    async with loss_world(tmp_path, database_url, FakeClock(autojump=False)) as made:
        yield made


async def push(world: LossWorld, **changes: Any) -> Result:  # noqa: ANN401
    """The platform sends the branch one online application (the adult's, by default)."""
    arguments: dict[str, Any] = {
        "province": PROVINCE,
        "url": world.daemon.urls[0] + NOTICE_PATH,
        "branch": BRANCH,
        "branch_keys": PeerKeysFile(world.peers),
        "online_ref": "WS-2026-000001",
        "ssn": ADULT,
        "name": "张三",
        "applied_on": "2026-11-02",
        "now": world.clock.now(),
    }
    arguments.update(changes)
    return await push_online_application(world.platform, **arguments)


async def count(world: LossWorld) -> int:
    """How many application rows there are."""
    async with world.daemon.engine.connect() as conn:
        return int((await conn.execute(select(func.count(ApplicationRow.id)))).scalar_one())


async def test_an_online_application_is_kept_once_and_listed_with_its_deadline(
    world: LossWorld,
) -> None:
    """Kept with its receipt; a copy or a resend finds it; listed with 30 working days."""
    first = await push(world, message_id="OA-1")
    assert first.status is Status.OK, first
    receipt = first.fields["receiptNumber"]
    assert (await push(world, message_id="OA-1")) == first  # the same item again
    again = await push(world, message_id="OA-2")  # resent under a new id
    assert (again.status, again.fields["receiptNumber"]) == (Status.ALREADY_APPLIED, receipt)
    assert await count(world) == 1
    status, listed, _ = await world.branch.call("GET", "/v1/applications?channel=online")
    assert status == 200, listed
    [item] = listed["items"]
    # 30 working days from 2 November 2026 (a Monday): 14 December.
    assert (item["receipt_number"], item["operation"], item["status"]) == (
        receipt,
        "apply",
        "accepted",
    )
    assert (item["deadline"], item["overdue"]) == (date(2026, 12, 14).isoformat(), False)
    assert (item["online_ref"], item["verified_at"]) == ("WS-2026-000001", None)
    status, person, _ = await world.branch.call(
        "GET", "/v1/persons/cards", headers={"X-Identity-Number": ADULT}
    )
    assert [card["card_state"] for card in person["cards"]] == ["00"]


async def test_refusals_keep_nothing(world: LossWorld) -> None:
    """A bad number, an applicant with a card, an id of another person: refused, nothing kept."""
    bad = await push(world, ssn="110105199001010000")
    assert bad.status is Status.INVALID_REQUEST
    for day in ("0001-01-01", "2099-01-01", "2026-02-30"):  # before 2000, not yet, no such day
        assert (await push(world, applied_on=day)).status is Status.INVALID_REQUEST, day
    assert await count(world) == 0
    assert (await push(world)).status is Status.OK
    other = await push(world, ssn=AGENT, name="李四")  # the same online id, another person
    assert other.status is Status.INVALID_STATE
    has_card = await push(world, online_ref="WS-2026-000002")  # the adult has a card now
    assert has_card.status is Status.INVALID_STATE
    assert await count(world) == 1


async def test_a_closed_day_takes_no_online_application(world: LossWorld) -> None:
    """After the day's close the item is answered error with nothing kept; reopened, kept."""
    status, closed, _ = await world.branch.call(
        "POST", "/v1/days/2026-11-23/close", role="supervisor"
    )
    assert status == 200, closed
    refused = await push(world, message_id="OA-D1")
    assert (refused.status, "已日终" in refused.message) == (Status.ERROR, True), refused
    assert await count(world) == 0
    async with world.daemon.engine.connect() as conn:  # no holder, no card left behind
        assert (await conn.execute(select(func.count(CardRow.id)))).scalar_one() == 0
    status, _, _ = await world.branch.call(
        "POST", "/v1/days/2026-11-23/reopen", body={"reason": "补录线上申请"}, role="supervisor"
    )
    assert status == 200
    assert (await push(world, message_id="OA-D2")).status is Status.OK
    assert await count(world) == 1


async def test_twenty_resends_at_once_keep_one_application(world: LossWorld) -> None:
    """The platform resends an application 20 times at once, each under its own id: one kept."""
    results = await asyncio.gather(*(push(world, message_id=f"OA-C{n}") for n in range(CONCURRENT)))
    statuses = Counter(result.status for result in results)
    assert statuses[Status.OK] == 1, statuses
    assert set(statuses) <= {Status.OK, Status.ALREADY_APPLIED, Status.ERROR}, statuses
    receipts = {r.fields["receiptNumber"] for r in results if r.succeeded}
    assert len(receipts) == 1
    assert await count(world) == 1


async def test_the_citizen_is_verified_once_at_the_window(world: LossWorld) -> None:
    """线下核验: the document and the photo; once (20 at once: one); then the images are due."""
    receipt = (await push(world)).fields["receiptNumber"]
    path = f"/v1/applications/{receipt}/verification"
    status, problem, _ = await world.branch.call("POST", path, body={"materials": []})
    assert (status, problem["code"]) == (422, "incomplete-request")
    assert {m["code"] for m in problem["missing"]} == {
        "missing:applicant-identity",
        "missing:photo",
    }
    body = {
        "materials": ["applicant-id-card", "photo"],
        "photo": demo_photo(),
    }
    answers = await asyncio.gather(
        *(world.branch.call("POST", path, body=body) for _ in range(CONCURRENT))
    )
    tally = Counter(
        "ok" if status == 200 else (status, answer["code"]) for status, answer, _ in answers
    )
    assert tally == Counter({"ok": 1, (409, "not-verifiable"): CONCURRENT - 1}), tally
    [verified] = [answer for status, answer, _ in answers if status == 200]
    assert (verified["online_ref"], verified["archive_status"]) == ("WS-2026-000001", "incomplete")
    status, found, _ = await world.branch.call("GET", f"/v1/applications/{receipt}")
    assert found["verified_at"] == verified["verified_at"]
    async with world.daemon.engine.connect() as conn:
        photo = (
            await conn.execute(
                select(ApplicationRow.verified_by).where(ApplicationRow.receipt_number == receipt)
            )
        ).scalar_one()
    assert photo == "teller-01"
    # a window application is not an online one to verify
    status, problem, _ = await world.branch.call(
        "POST", "/v1/applications/" + receipt.replace(receipt[-2:], "00") + "/verification",
        body=body,
    )  # fmt: skip
    assert status in {400, 404}, problem
