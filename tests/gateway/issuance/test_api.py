"""Instant issuance through the teller API, over the demo's simulated world.

The daemon runs in this process with ``[production]``: the printer is the
station simulator on a real pty, the chips sit in an in-process reader, the
platform and the bank are the simulators over mutual TLS, telemetry goes to an
in-process MQTT broker. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import base64
from typing import TYPE_CHECKING, Any

import aiohttp
import aiomqtt
import pytest
from sqlalchemy import text

from gateway.demo.world import (
    DEMO_BRANCH,
    DEMO_PROVINCE,
    FEEDER,
    DemoWorld,
    demo_id_number,
    demo_photo,
)
from gateway.upstream import PeerKeysFile
from gateway.upstream.notices import NOTICE_PATH
from protocols.mqtt.reports import StockReport, decode_report
from protocols.platform import Status
from simulators.platform.notices import push_online_application
from tests.gateway.issuance.world import Teller

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

pytestmark = pytest.mark.integration


@pytest.fixture
async def make_world(tmp_path: Path, database_url: str) -> AsyncIterator[Callable[..., Any]]:
    """Start a world with the given options; stopped at the end of the test."""
    worlds: list[DemoWorld] = []

    async def make(**options: Any) -> Teller:  # noqa: ANN401
        world = DemoWorld(
            tmp_path / "world",
            port=0,
            time_scale=0.0,
            database_url=database_url,
            **options,
        )
        await world.__aenter__()
        worlds.append(world)
        http = aiohttp.ClientSession()
        world_http.append(http)
        return Teller(world, http)

    world_http: list[aiohttp.ClientSession] = []
    try:
        yield make
    finally:
        for http in world_http:
            await http.close()
        for world in reversed(worlds):
            await world.__aexit__(None, None, None)


async def test_qc_refusal_jam_and_faulty_chip_are_spoiled_and_the_stock_reconciles(
    make_world: Callable[..., Any],
) -> None:
    """A refused card, a jammed blank and a dead chip are spoiled; two good cards; it adds up."""
    teller: Teller = await make_world(
        blanks=10, jam_on_feed=frozenset({3}), faulty_chips=frozenset({4})
    )
    await teller.load(10)
    first = await teller.apply(1, "孙丽")
    status, job = await teller.call("POST", "/v1/production/jobs", {"receipt_number": first})
    assert status == 202, job
    one = job["job_id"]
    await teller.qc(one, passed=False, reason="print_defect")
    await teller.qc(one, passed=True)
    issued = await teller.until(one, lambda j: j["status"] == "issued")
    assert issued["card_seq"] == 2
    # Submitting again answers the same job: one application, one card.
    status, again = await teller.call("POST", "/v1/production/jobs", {"receipt_number": first})
    assert (status, again["job_id"], again["status"]) == (202, one, "issued")

    second = await teller.apply(2, "周杰")
    status, job = await teller.call("POST", "/v1/production/jobs", {"receipt_number": second})
    assert status == 202, job
    two = job["job_id"]
    await teller.qc(two, passed=True)
    done = await teller.until(two, lambda j: j["status"] == "issued")
    assert done["card_seq"] == 3  # blank 3 jammed, blank 4's chip refused every write

    station = teller.world.station
    assert station is not None
    snapshot = station.snapshot()
    status, result = await teller.call(
        "POST", "/v1/stock/reconciliations", {"counted": {FEEDER: snapshot["feeder"]}}
    )
    assert status == 200, result
    assert result["ok"], result["problems"]
    (feeder,) = result["feeders"]
    assert (feeder["loaded"], feeder["issued"], feeder["spoiled"]) == (10, 2, 3)
    assert feeder["remaining"] == snapshot["feeder"] == 5
    # The tray holds both cards of the first job (the teller set the refused one
    # aside as spoiled) and the second job's card; the jam and the dead chip went
    # to the reject box.
    tray = sorted(c["card_number"] for c in snapshot["output_tray"])
    assert tray == sorted([issued["card_number"]] * 2 + [done["card_number"]])
    assert len(snapshot["reject_box"]) == 2
    good = [snapshot["output_tray"][1], snapshot["output_tray"][2]]
    platform = teller.world.platform
    assert platform is not None
    for card in good:
        on_platform = platform.provinces[DEMO_PROVINCE].cards[card["card_number"]]
        assert on_platform.aaz501 == card["card_id_code"]
        assert on_platform.aaz502 == "1"

    await teller.until_settled(first)


async def test_refusals_change_nothing(make_world: Callable[..., Any]) -> None:
    """Unknown receipt, no blanks, kiosk, QC not waiting, unapproved and replayed adjustments."""
    teller: Teller = await make_world(quality_check="automatic")
    receipt = await teller.apply(3, "吴刚")
    status, problem = await teller.call(
        "POST", "/v1/production/jobs", {"receipt_number": "SS00000000000000000000"}
    )
    assert (status, problem["code"]) == (404, "not-found")
    status, problem = await teller.call("POST", "/v1/production/jobs", {"receipt_number": receipt})
    assert (status, problem["code"]) == (409, "production-no-blanks"), problem
    assert problem["detail_zh"]
    status, problem = await teller.call(
        "POST", "/v1/production/jobs", {"receipt_number": receipt}, role="kiosk"
    )
    assert (status, problem["code"]) == (403, "forbidden")
    # Nothing moved: after loading, the same application is made.
    await teller.load(2)
    status, job = await teller.call("POST", "/v1/production/jobs", {"receipt_number": receipt})
    assert status == 202, job
    await teller.until(job["job_id"], lambda j: j["status"] == "issued")
    status, problem = await teller.call(
        "POST", f"/v1/production/jobs/{job['job_id']}/quality-check", {"passed": True}
    )
    assert (status, problem["code"]) == (409, "production-qc-not-waiting")
    status, problem = await teller.call("GET", "/v1/production/jobs/nope")
    assert (status, problem["code"]) == (404, "not-found")

    adjustment = {"feeder": FEEDER, "delta": -1, "reason": "blank found bent in the box"}
    status, problem = await teller.call("POST", "/v1/stock/adjustments", adjustment)
    assert (status, problem["code"]) == (403, "approval-required")
    status, problem = await teller.call(
        "POST", "/v1/stock/approvals", {"adjustment": adjustment}, role="teller"
    )
    assert (status, problem["code"]) == (403, "forbidden")
    status, approval = await teller.call(
        "POST", "/v1/stock/approvals", {"adjustment": adjustment}, role="supervisor"
    )
    assert status == 201, approval
    other = {**adjustment, "delta": -2}
    status, problem = await teller.call(
        "POST", "/v1/stock/adjustments", other, headers={"X-Approval-ID": approval["id"]}
    )
    assert (status, problem["code"]) == (403, "approval-invalid")
    status, feeder = await teller.call(
        "POST", "/v1/stock/adjustments", adjustment, headers={"X-Approval-ID": approval["id"]}
    )
    assert (status, feeder["adjusted"], feeder["remaining"]) == (201, -1, 0), feeder
    status, problem = await teller.call(
        "POST", "/v1/stock/adjustments", adjustment, headers={"X-Approval-ID": approval["id"]}
    )
    assert (status, problem["code"]) == (403, "approval-invalid")  # used once
    status, problem = await teller.call(
        "POST", "/v1/stock/destructions", {"feeder": FEEDER, "quantity": 1, "reason": "shred"}
    )
    assert (status, problem["code"]) == (422, "stock-refused")  # nothing was spoiled
    status, stock = await teller.call("GET", "/v1/stock", role="ops")
    assert status == 200
    assert stock["feeders"][0]["issued"] == 1


async def test_a_non_card_application_is_not_producible(make_world: Callable[..., Any]) -> None:
    """A loss report's receipt makes no card: 409 with the reason."""
    teller: Teller = await make_world(quality_check="automatic")
    await teller.load(2)
    receipt = await teller.apply(5, "郑爽")
    status, job = await teller.call("POST", "/v1/production/jobs", {"receipt_number": receipt})
    assert status == 202
    await teller.until(job["job_id"], lambda j: j["status"] == "issued")
    await teller.until_settled(receipt)  # the loss report needs the card issued
    loss = {
        "case": "self",
        "channel": "window",
        "applicant": {"id_number": demo_id_number(5), "name": "郑爽"},
        "materials": ["applicant-id-card"],
    }
    status, result = await teller.call("POST", "/v1/operations/report-temporary-loss", loss)
    assert status == 200, result
    status, problem = await teller.call(
        "POST", "/v1/production/jobs", {"receipt_number": result["receipt_number"]}
    )
    assert (status, problem["code"], problem["reason"]) == (
        409,
        "production-not-producible",
        "not-producible",
    )


async def test_branch_reports_on_the_ops_page_and_over_mqtt(
    make_world: Callable[..., Any],
) -> None:
    """Cards per hour, stock, queues: on /ops and retained on the broker for monitors."""
    teller: Teller = await make_world(quality_check="automatic")
    await teller.load(5)
    receipt = await teller.apply(6, "冯程")
    status, job = await teller.call("POST", "/v1/production/jobs", {"receipt_number": receipt})
    assert status == 202
    await teller.until(job["job_id"], lambda j: j["status"] == "issued")
    await teller.until_settled(receipt)
    daemon = teller.world.daemon
    assert daemon is not None
    assert daemon.reports is not None
    await daemon.reports.publish()
    async with teller.http.get(teller.world.base_url + "/ops/api/branch") as response:
        assert response.status == 200
        view = await response.json()
    reports = view["reports"]
    assert sum(h["issued"] for h in reports["production"]["hours"]) == 1
    assert reports["stock"]["feeders"][0]["remaining"] == 4
    assert reports["applications"]["open"] == 0
    async with teller.http.get(teller.world.base_url + "/ops") as response:
        assert response.status == 200
        assert "text/html" in response.headers["Content-Type"]
    topic = f"sscard/v1/{DEMO_PROVINCE}/{DEMO_BRANCH}/daemon/stock"
    async with aiomqtt.Client(
        "127.0.0.1",
        teller.world.broker_port,
        identifier="test-monitor",
        protocol=aiomqtt.ProtocolVersion.V311,
    ) as client:
        await client.subscribe(topic, qos=1)
        message = await asyncio.wait_for(anext(aiter(client.messages)), 10)
    assert isinstance(message.payload, bytes)
    stock = decode_report("stock", message.payload)
    assert isinstance(stock, StockReport)
    assert stock.feeders[0].remaining == 4
    assert stock.reconciled is True  # the reconciliation at start found nothing wrong


async def test_a_reissue_after_formal_loss_makes_a_new_card_and_cancels_the_old(
    make_world: Callable[..., Any],
) -> None:
    """补领: a new card record and number; the lost card is cancelled here and on the platform."""
    teller: Teller = await make_world(quality_check="automatic")
    await teller.load(4)
    receipt = await teller.apply(7, "秦岚")
    status, job = await teller.call("POST", "/v1/production/jobs", {"receipt_number": receipt})
    assert status == 202
    first = await teller.until(job["job_id"], lambda j: j["status"] == "issued")
    await teller.until_settled(receipt)
    holder = {"id_number": demo_id_number(7), "name": "秦岚"}
    for operation in ("report-formal-loss", "reissue"):
        body = {
            "case": "self",
            "channel": "window",
            "applicant": holder,
            "materials": ["applicant-id-card"],
        }
        status, result = await teller.call("POST", f"/v1/operations/{operation}", body)
        assert status == 200, result
    assert result["card_state"] == "07"
    reissue = result["receipt_number"]
    status, fee = await teller.call(
        "POST", f"/v1/applications/{reissue}/fee", {"method": "pos", "reference": "POS-0007"}
    )
    assert (status, fee["status"]) == (200, "settled"), fee
    status, job = await teller.call("POST", "/v1/production/jobs", {"receipt_number": reissue})
    assert status == 202, job
    second = await teller.until(job["job_id"], lambda j: j["status"] == "issued")
    assert second["card_number"] != first["card_number"]
    platform = teller.world.platform
    assert platform is not None
    cards = platform.provinces[DEMO_PROVINCE].cards
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while cards[first["card_number"]].aaz502 != "9":  # the cancellation goes by the outbox
        assert loop.time() < deadline, cards[first["card_number"]]
        await asyncio.sleep(0.05)
    assert cards[second["card_number"]].aaz502 == "1"
    status, found = await teller.call(
        "GET", "/v1/persons/cards", headers={"X-Identity-Number": demo_id_number(7)}
    )
    assert status == 200, found
    states = {c["card_number"]: c["card_state"] for c in found["cards"]}
    assert states == {first["card_number"]: "09", second["card_number"]: "03"}


async def test_asks_for_one_application_are_taken_one_at_a_time(
    make_world: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two asks at once: one job, and never two submissions of the application in flight.

    Taken together, one ask failing its precondition put the card back (``00``)
    while the other's job was being journaled, and the next ask made a second
    job, and a second card, for the same application.
    """
    teller: Teller = await make_world(quality_check="automatic")
    await teller.load(2)
    receipt = await teller.apply(8, "钱多")
    assert teller.world.daemon is not None
    daemon = teller.world.daemon
    assert daemon is not None
    production = daemon.production
    assert production is not None
    real_submit = production.controller.submit
    in_flight = most = 0

    async def submit(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        try:
            for _ in range(20):  # give the other ask every chance to come in
                await asyncio.sleep(0)
            return await real_submit(*args, **kwargs)
        finally:
            in_flight -= 1

    monkeypatch.setattr(production.controller, "submit", submit)
    body = {"receipt_number": receipt}
    answers = await asyncio.gather(
        teller.call("POST", "/v1/production/jobs", body),
        teller.call("POST", "/v1/production/jobs", body),
    )
    assert [status for status, _ in answers] == [202, 202]
    assert answers[0][1]["job_id"] == answers[1][1]["job_id"]
    assert most == 1
    await teller.until(answers[0][1]["job_id"], lambda j: j["status"] == "issued")


async def _photo_went_everywhere(world: DemoWorld, job_id: str, card_number: str) -> None:
    """The photo taken at the window went to the platform in pre-open and onto the card."""
    assert world.platform is not None
    assert world.daemon is not None
    assert world.daemon.production is not None
    assert world.platform.provinces[DEMO_PROVINCE].cards[card_number].photo == demo_photo()
    made = await world.daemon.production.journal.load_job(job_id)
    assert made is not None
    assert made.order.photo == base64.b64decode(demo_photo())


async def test_twenty_reissues_at_once_make_one_receipt_fee_job_and_card(
    make_world: Callable[..., Any],
) -> None:
    """20 concurrent reissues for one holder, then 20 concurrent production asks: one of each.

    One receipt and one 20-yuan fee; one production job; one new card, issued on the
    platform and bound in the bank once; the lost card cancelled.
    """
    teller: Teller = await make_world(quality_check="automatic")
    await teller.load(4)
    receipt = await teller.apply(9, "孙莉")
    status, job = await teller.call("POST", "/v1/production/jobs", {"receipt_number": receipt})
    assert status == 202, job
    first = await teller.until(job["job_id"], lambda j: j["status"] == "issued")
    await teller.until_settled(receipt)
    world = teller.world
    await _photo_went_everywhere(world, job["job_id"], first["card_number"])
    assert world.platform is not None
    assert world.daemon is not None
    body = {
        "case": "self",
        "channel": "window",
        "applicant": {"id_number": demo_id_number(9), "name": "孙莉"},
        "materials": ["applicant-id-card"],
    }
    # The card alone is reported lost: its bank account stays usable for the fee.
    loss = {**body, "scope": "social-security"}
    status, result = await teller.call("POST", "/v1/operations/report-formal-loss", loss)
    assert status == 200, result
    assert world.bank is not None
    accounts_before = len(world.bank.accounts)

    answers = await asyncio.gather(
        *(teller.call("POST", "/v1/operations/reissue", body) for _ in range(20))
    )
    accepted = [answer for status, answer in answers if status == 200]
    refused = [answer["code"] for status, answer in answers if status != 200]
    assert len(accepted) == 1, answers
    assert set(refused) <= {"illegal-transition", "state-conflict"}, refused
    assert len(refused) == 19
    reissue = accepted[0]["receipt_number"]
    assert accepted[0]["fee_status"] == "due"
    status, refused = await teller.call("POST", "/v1/production/jobs", {"receipt_number": reissue})
    assert (status, refused["code"]) == (409, "production-fee-due")  # not made before it is paid
    fees_before = world.bank.accounts[first["card_number"]].fees_fen
    status, fee = await teller.call(
        "POST", f"/v1/applications/{reissue}/fee",
        {"method": "debit", "account": first["card_number"]},
    )  # fmt: skip
    assert (status, fee["status"], fee["yuan"]) == (200, "settled", 20), fee
    assert world.bank.accounts[first["card_number"]].fees_fen == fees_before + 2000
    asks = await asyncio.gather(
        *(
            teller.call("POST", "/v1/production/jobs", {"receipt_number": reissue})
            for _ in range(20)
        )
    )
    assert {status for status, _ in asks} == {202}, asks
    assert len({job["job_id"] for _, job in asks}) == 1  # the same job for every ask
    second = await teller.until(asks[0][1]["job_id"], lambda j: j["status"] == "issued")
    await teller.until_settled(reissue)

    async with world.daemon.engine.connect() as conn:
        fees = (
            await conn.execute(
                text("SELECT fee_yuan FROM applications WHERE operation = 'reissue'")
            )
        ).all()
        jobs = (
            await conn.execute(
                text("SELECT count(*) FROM production_jobs WHERE application_id LIKE :r"),
                {"r": f"{reissue}%"},
            )
        ).scalar_one()
    assert [fee for (fee,) in fees] == [20]  # one receipt, one fee
    assert jobs == 1
    status, found = await teller.call(
        "GET", "/v1/persons/cards", headers={"X-Identity-Number": demo_id_number(9)}
    )
    assert status == 200, found
    states = {c["card_number"]: c["card_state"] for c in found["cards"]}
    assert states == {first["card_number"]: "09", second["card_number"]: "03"}  # one new card
    cards = world.platform.provinces[DEMO_PROVINCE].cards
    holders = [c for c in cards.values() if c.aac002 == demo_id_number(9)]
    assert sorted(c.aaz500 for c in holders) == sorted(states)  # the platform made one more
    assert len(world.bank.accounts) == accounts_before + 1  # bound in the bank once


async def test_a_window_card_whose_job_failed_is_queued_again_and_waits_for_pickup(
    make_world: Callable[..., Any],
) -> None:
    """001 §1.1.3: failed on the devices, the card is due in 24 h and is made by itself.

    The first job spoils its three blanks (dead chips) and fails: the card record is
    ``17`` and the deadline moves to the end of the 24 hours. The automatic retry
    runs behind the window's jobs and makes the card, which then waits for its
    holder (``02``), not enabled on the platform, its bank account bound; the
    holder's pickup hands it over. A card that failed as often as allowed is left
    to the teller.
    """
    teller: Teller = await make_world(quality_check="automatic", faulty_chips=frozenset({1, 2, 3}))
    daemon = teller.world.daemon
    assert daemon is not None
    production = daemon.production
    assert production is not None
    await teller.load(6)
    receipt = await teller.apply(11, "韩雪")
    status, job = await teller.call("POST", "/v1/production/jobs", {"receipt_number": receipt})
    assert status == 202, job
    failed = await teller.until(job["job_id"], lambda j: j["status"] == "failed", resume=True)
    assert failed["card_seq"] == 3
    holder = {"X-Identity-Number": demo_id_number(11)}

    async def card_state() -> str:
        status, found = await teller.call("GET", "/v1/persons/cards", headers=holder)
        assert status == 200, found
        return str(found["cards"][0]["card_state"])

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while await card_state() != "17":  # settled just after the job ended
        assert loop.time() < deadline
        await asyncio.sleep(0.05)
    status, failed_view = await teller.call("GET", f"/v1/applications/{receipt}")
    assert failed_view["progress"]["code"] == "in-production"  # queued again: still 制卡中
    assert await production.requeue_due(attempts=0, minutes=0.0) == []  # retries off
    assert await production.requeue_due(attempts=1, minutes=0.0) == [receipt]
    settled = await teller.until_settled(receipt)
    assert await card_state() == "02"
    assert (settled["status"], settled["progress"]["code"]) == ("completed", "awaiting-pickup")
    platform = teller.world.platform
    assert platform is not None
    [card] = [
        c for c in platform.provinces[DEMO_PROVINCE].cards.values()
        if c.aac002 == demo_id_number(11)
    ]  # fmt: skip
    assert card.aaz502 == "0"  # made, not enabled: enabled when the holder takes it
    assert await production.requeue_due(attempts=1, minutes=0.0) == []  # nothing failed now
    body = {
        "case": "self",
        "channel": "window",
        "applicant": {"id_number": demo_id_number(11), "name": "韩雪"},
        "materials": ["applicant-id-card", "receipt"],
    }
    status, picked = await teller.call("POST", "/v1/operations/pickup", body)
    assert status == 200, picked
    assert await card_state() == "03"


async def test_an_online_application_is_made_only_after_its_verification(
    make_world: Callable[..., Any],
) -> None:
    """000 线上申请 → 线下核验 → 领卡: pushed by the platform, verified here, then made here."""
    teller: Teller = await make_world(quality_check="automatic")
    await teller.load(2)
    world = teller.world
    assert world.platform is not None
    daemon = world.daemon
    assert daemon is not None
    sent = await push_online_application(
        world.platform, province=DEMO_PROVINCE, url=world.base_url + NOTICE_PATH,
        branch=DEMO_BRANCH, branch_keys=PeerKeysFile(world.directory / "peer-keys.json"),
        online_ref="WS-2026-123456", ssn=demo_id_number(12), name="冯晓",
        applied_on="2026-11-02", now=daemon.clock.now(),
    )  # fmt: skip
    assert sent.status is Status.OK, sent
    receipt = sent.fields["receiptNumber"]

    async def progress() -> str:
        status, application = await teller.call("GET", f"/v1/applications/{receipt}")
        assert status == 200, application
        return str(application["progress"]["code"])

    assert await progress() == "verifying"
    status, refused = await teller.call("POST", "/v1/production/jobs", {"receipt_number": receipt})
    assert (status, refused["code"], refused["reason"]) == (
        409,
        "production-not-producible",
        "not-verified",
    )
    body = {"materials": ["applicant-id-card", "photo"], "photo": demo_photo()}
    status, verified = await teller.call("POST", f"/v1/applications/{receipt}/verification", body)
    assert status == 200, verified
    assert await progress() == "submitted"
    status, job = await teller.call("POST", "/v1/production/jobs", {"receipt_number": receipt})
    assert status == 202, job
    await teller.until(job["job_id"], lambda j: j["status"] == "issued")
    settled = await teller.until_settled(receipt)
    assert (settled["channel"], settled["status"], settled["overdue"]) == (
        "online",
        "completed",
        False,
    )
    # handed over at the window: 已领取
    assert settled["progress"] == {"code": "picked-up", "zh": "已领取", "en": "Picked up"}
