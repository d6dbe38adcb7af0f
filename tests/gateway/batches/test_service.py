"""The batch service on SQLite and PostgreSQL: import, submit, production, pickup, enabling."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from gateway.batches.cardlist import open_files
from gateway.batches.rows import BatchItemRow, BatchRow
from gateway.batches.schemas import BatchPickupIn
from gateway.batches.service import BatchService, application_id_of
from gateway.operations.catalogue import Material
from gateway.operations.rows import ApplicationRow
from gateway.operations.schemas import FeeIn, OperationRequest, PersonIn
from gateway.people import lifecycle
from gateway.people.rows import CardRow, PersonRow
from gateway.people.states import CardEvent
from gateway.runtime.problems import ProblemError
from gateway.upstream.models import OutboxRow
from production.model import Priority
from tests.gateway.batches.conftest import (
    HANDLER,
    SCAN,
    TELLER,
    Kit,
    as_problem,
    card_list,
    id_number,
    photo,
)

MATERIALS = [Material.HANDLER_ID_CARD, Material.BATCH_FILE]


async def import_rows(
    kit: Kit, rows: list[list[str]], *, priority: str = "normal", with_files: bool = True
) -> str:
    """Import a csv list; rows name p<n>.jpg and s<n>.pdf, present unless told otherwise."""
    files = {}
    if with_files:
        for row in rows:
            files[row[5]] = photo
            files[row[6]] = lambda: SCAN
    summary = await kit.service.import_batch(
        employer="昌吉市某某有限公司", handler=PersonIn(**HANDLER), materials=MATERIALS,
        priority=priority, list_name="list.csv", list_data=card_list(rows), files=files,
        terminal=TELLER,
    )  # fmt: skip
    return summary.id


def row(n: int, **changes: str) -> list[str]:
    """A valid row numbered ``n``."""
    values = {
        "no": str(n), "name": f"职工{n}", "id": id_number(n), "phone": "13800000000",
        "address": "昌吉", "photo": f"p{n}.jpg", "scan": f"s{n}.pdf", "ethnicity": "01",
    }  # fmt: skip
    values.update(changes)
    return list(values.values())


async def test_import_keeps_every_problem_and_seals_personal_data(kit: Kit) -> None:
    """Invalid rows keep all their problems (the xlsx report); nothing personal is stored plain."""
    batch_id = await import_rows(
        kit, [row(1), row(2, id="123", ethnicity=""), row(3, ethnicity="77")]
    )
    progress = await kit.service.progress(batch_id)
    assert progress.counts == {"ready": 1, "invalid": 2}
    assert progress.batch.status == "imported"
    assert progress.receipt_number
    report = load_workbook(io.BytesIO(await kit.service.report(batch_id))).worksheets[0]
    lines = [[c.value for c in r][:4] for r in report.iter_rows(min_row=2)]
    assert lines == [
        [3, "2", "id_number", "invalid:id-number"],
        [3, "2", "ethnicity", "missing:ethnicity"],
        [4, "3", "ethnicity", "invalid:ethnicity"],
    ]
    async with kit.sessions() as session:
        stored = (await session.scalars(select(BatchItemRow))).all()
    for item in stored:
        assert id_number(1).encode() not in item.personal_enc
        assert "职工".encode() not in item.personal_enc
    assert stored[0].id_index == kit.vault.index(id_number(1))
    assert stored[0].id_masked.startswith("652301")
    assert "*" in stored[0].id_masked


async def test_handler_materials_and_bad_files_are_refused_with_everything(kit: Kit) -> None:
    """Missing handler materials and an unreadable list are clear problems; nothing is stored."""
    with pytest.raises(ProblemError) as refused, as_problem():
        await kit.service.import_batch(
            employer="某公司", handler=PersonIn(**HANDLER), materials=[], priority="normal",
            list_name="list.csv", list_data=card_list([row(1)]), files={}, terminal=TELLER,
        )  # fmt: skip
    assert refused.value.problem.code == "incomplete-request"
    assert {m["code"] for m in refused.value.extra["missing"]} == {
        "missing:handler-identity", "missing:batch-submission",
    }  # fmt: skip
    with pytest.raises(ProblemError) as bad, as_problem():
        await kit.service.import_batch(
            employer="某公司", handler=PersonIn(**HANDLER), materials=MATERIALS,
            priority="normal", list_name="list.csv", list_data=b"a,b\n1,2\n", files={},
            terminal=TELLER,
        )  # fmt: skip
    assert bad.value.problem.code == "batch-file-invalid"


async def test_production_by_priority_and_in_line_order(kit: Kit) -> None:
    """Urgent batches first, then submission order, rows in line order, ``in_flight`` at a time."""
    normal = await import_rows(kit, [row(1), row(2)])
    urgent = await import_rows(kit, [row(3), row(4)], priority="urgent")
    await kit.service.submit(normal, TELLER)
    await kit.clock.advance(1)
    await kit.service.submit(urgent, TELLER)
    await kit.service.production_round()
    order = [app_id.rsplit("-", 1)[1] for app_id, _ in kit.production.submitted]
    assert order == ["2", "3"]  # lines 2-3 of the urgent batch (header is line 1)
    assert {p for _, p in kit.production.submitted} == {Priority.BATCH}
    assert not any(job.order.enable_on_issue for job in kit.production.jobs.values())
    assert all(urgent.replace("-", "")[:20] in a for a, _ in kit.production.submitted)
    kit.production.finish("job-1")
    kit.production.finish("job-2", ok=False)
    await kit.service.production_round()
    assert (await kit.service.progress(urgent)).counts == {"produced": 1, "failed": 1}
    assert (await kit.service.progress(urgent)).batch.status == "finished"
    assert (await kit.service.progress(normal)).counts == {"producing": 2}
    async with kit.sessions() as session:
        states = sorted((await session.scalars(select(CardRow.card_state))).all())
        acceptances = dict(
            (
                await session.execute(
                    select(BatchRow.id, ApplicationRow.status).join(
                        ApplicationRow, ApplicationRow.id == BatchRow.application_id
                    )
                )
            ).all()
        )
    assert states == ["01", "01", "02", "17"]
    # The finished batch's acceptance is done (no false overdue); the other is still open.
    assert acceptances == {urgent: "completed", normal: "accepted"}


async def test_refused_submission_is_retried_next_round(kit: Kit) -> None:
    """No blanks now: the row stays with production's journal entry pending; sent next round."""
    batch_id = await import_rows(kit, [row(1)])
    await kit.service.submit(batch_id, TELLER)
    kit.production.refuse = True
    await kit.service.production_round()
    assert kit.production.submitted == []
    kit.production.refuse = False
    await kit.service.production_round()
    assert len(kit.production.submitted) == 1
    assert (await kit.service.progress(batch_id)).counts == {"producing": 1}


async def test_a_holder_with_a_card_is_not_queued(kit: Kit) -> None:
    """Submitting gives no second card: the row becomes invalid with card-exists."""
    first = await import_rows(kit, [row(1)])
    await kit.service.submit(first, TELLER)
    again = await import_rows(kit, [row(1)])
    progress = await kit.service.submit(again, TELLER)
    assert progress.counts == {"invalid": 1}
    with pytest.raises(ProblemError) as twice, as_problem():
        await kit.service.submit(again, TELLER)
    assert twice.value.problem.code == "batch-state"


async def test_pickup_then_enabled_96_hours_later(kit: Kit) -> None:
    """Pickup moves cards to 03; 96 h later they are 04, application 1, enable queued."""
    batch_id = await import_rows(kit, [row(1), row(2)])
    await kit.service.submit(batch_id, TELLER)
    await kit.service.production_round()
    kit.production.finish("job-1")
    kit.production.finish("job-2")
    await kit.service.production_round()
    done = await kit.service.pickup(
        batch_id,
        BatchPickupIn(handler=PersonIn(**HANDLER), materials=[Material.HANDLER_ID_CARD]),
        TELLER,
    )
    assert done.lines == [2, 3]
    assert not done.changed_handler
    assert done.enable_due_at == kit.clock.now() + timedelta(hours=96)
    await kit.clock.advance(95 * 3600)
    assert await kit.service.enable_due() == 0
    await kit.clock.advance(3600)
    assert await kit.service.enable_due() == 2
    assert await kit.service.enable_due() == 0
    async with kit.sessions() as session:
        cards = (await session.scalars(select(CardRow))).all()
        messages = (await session.scalars(select(OutboxRow))).all()
    assert {(c.card_state, c.application_state) for c in cards} == {("04", "1")}
    assert sorted(m.operation for m in messages) == ["enable", "enable"]
    assert (await kit.service.progress(batch_id)).counts == {"enabled": 2}


async def test_auto_enable_task_runs_on_the_injected_clock(kit: Kit) -> None:
    """The supervised task wakes on the fake clock; no real sleeping."""
    import asyncio  # noqa: PLC0415
    import contextlib  # noqa: PLC0415

    batch_id = await import_rows(kit, [row(1)])
    await kit.service.submit(batch_id, TELLER)
    await kit.service.production_round()
    kit.production.finish("job-1")
    await kit.service.production_round()
    await kit.service.pickup(
        batch_id,
        BatchPickupIn(handler=PersonIn(**HANDLER), materials=[Material.HANDLER_ID_CARD]),
        TELLER,
    )
    kit.clock.autojump = False
    task = asyncio.create_task(kit.service.run_auto_enable())
    await kit.clock.wait_for_sleepers()
    assert (await kit.service.progress(batch_id)).counts == {"picked-up": 1}
    await kit.clock.advance(96 * 3600)
    for _ in range(500):  # the task's own database round trips, not a timer
        if (await kit.service.progress(batch_id)).counts == {"enabled": 1}:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task  # its transaction rolls back before the engine is closed
    assert (await kit.service.progress(batch_id)).counts == {"enabled": 1}
    assert set(kit.clock.sleeps) == {300.0}


async def test_changed_handler_needs_the_stamped_letter(kit: Kit) -> None:
    """Another handler: letter material and its scan, archived; else every missing item at once."""
    batch_id = await import_rows(kit, [row(1)])
    await kit.service.submit(batch_id, TELLER)
    await kit.service.production_round()
    kit.production.finish("job-1")
    await kit.service.production_round()
    other = PersonIn(id_number=id_number(900), name="李新")
    with pytest.raises(ProblemError) as refused, as_problem():
        await kit.service.pickup(
            batch_id, BatchPickupIn(handler=other, materials=[Material.HANDLER_ID_CARD]), TELLER
        )
    assert [m["code"] for m in refused.value.extra["missing"]] == [
        "missing:employer-letter", "missing:employer-letter-scan",
    ]  # fmt: skip
    import base64  # noqa: PLC0415

    done = await kit.service.pickup(
        batch_id,
        BatchPickupIn(
            handler=other,
            materials=[Material.HANDLER_ID_CARD, Material.EMPLOYER_LETTER],
            letter=base64.b64encode(SCAN).decode(),
        ),
        TELLER,
    )
    assert done.changed_handler
    with pytest.raises(ProblemError) as again, as_problem():
        await kit.service.pickup(
            batch_id, BatchPickupIn(handler=other, materials=[Material.HANDLER_ID_CARD]), TELLER
        )
    assert again.value.problem.code in {"incomplete-request", "batch-row-state"}


async def test_batch_to_single_only_while_queued(kit: Kit) -> None:
    """The holder's row goes to production at once with window priority; started rows refuse."""
    batch_id = await import_rows(kit, [row(1), row(2)])
    await kit.service.submit(batch_id, TELLER)
    body = OperationRequest(
        case="self", channel="window",  # type: ignore[arg-type]
        applicant=PersonIn(id_number=id_number(2), name="职工2"),
        materials=[Material.APPLICANT_ID_CARD],
    )  # fmt: skip
    kit.service.settings = type(kit.service.settings)(in_flight=0)
    from gateway.operations.schemas import ApprovalIn  # noqa: PLC0415
    from gateway.runtime.http.idempotency import request_digest  # noqa: PLC0415
    from tests.gateway.batches.conftest import SUPERVISOR  # noqa: PLC0415

    digest = request_digest("APPROVE", "batch-to-single", body.model_dump_json().encode())
    business = kit.business
    approval = await business.approve(
        ApprovalIn(operation="batch-to-single", request=body, reason="持卡人急需"),  # type: ignore[arg-type]
        digest, SUPERVISOR,
    )  # fmt: skip
    with pytest.raises(ProblemError) as mismatch, as_problem():
        await kit.service.to_single(batch_id, 2, body, TELLER, digest=digest, approval_id=None)
    assert mismatch.value.problem.code == "batch-holder-mismatch"
    result = await kit.service.to_single(
        batch_id, 3, body, TELLER, digest=digest, approval_id=approval.id
    )
    assert result.card_state == "01"
    assert kit.production.submitted[-1][1] is Priority.WINDOW
    assert kit.production.jobs["job-1"].order.enable_on_issue  # handed over at once
    kit.production.finish("job-1")
    await kit.service.production_round()
    rows = {r.line: r.status for r in await kit.service.rows(batch_id)}
    assert rows == {2: "queued", 3: "issued"}
    kit.service.settings = type(kit.service.settings)(in_flight=2)
    await kit.service.production_round()
    with pytest.raises(ProblemError) as started, as_problem():
        await kit.service.to_single(batch_id, 2, body, TELLER, digest=digest, approval_id=None)
    assert started.value.problem.code == "batch-row-state"


def test_open_files_reads_folders_and_zips(tmp_path: pytest.TempPathFactory) -> None:
    """Files by name from a folder or a zip (sub-folders flattened)."""
    from pathlib import Path  # noqa: PLC0415

    from tests.gateway.batches.conftest import files_zip  # noqa: PLC0415

    base = Path(str(tmp_path))
    (base / "a.jpg").write_bytes(b"x")
    assert open_files(base)["a.jpg"]() == b"x"
    (base / "f.zip").write_bytes(files_zip({"b.pdf": SCAN}))
    assert open_files(base / "f.zip")["b.pdf"]() == SCAN


def test_application_ids_are_stable() -> None:
    """Resubmitting a row finds its job: the application id depends on batch and line only."""
    item = BatchItemRow(batch_id="12345678-1234-4234-8234-123456789012", line=7)
    assert application_id_of(item) == "batch-12345678123442348234-7"
    assert BatchService.__doc__
    assert PersonRow.__tablename__ == "persons"


async def test_production_waits_for_the_recovery_of_production(kit: Kit) -> None:
    """The production task submits nothing before production has recovered its journal."""
    import asyncio  # noqa: PLC0415

    batch_id = await import_rows(kit, [row(1)])
    await kit.service.submit(batch_id, TELLER)
    kit.production.started.clear()
    kit.clock.autojump = False
    task = asyncio.create_task(kit.service.run_production())
    for _ in range(20):
        await asyncio.sleep(0)
    assert kit.production.submitted == []
    assert kit.clock.sleeps == []
    kit.production.started.set()
    await kit.clock.wait_for_sleepers()
    task.cancel()
    assert len(kit.production.submitted) == 1
    assert (await kit.service.progress(batch_id)).counts == {"producing": 1}


async def test_a_batch_reissue_is_made_after_its_fee_and_cancels_the_old_cards(kit: Kit) -> None:
    """补换卡明细表 (001 §3.2): each holder's card moves aside, new ones are made once paid.

    Holder 1's card was formally lost (reissue applies), holder 2's is in use (a
    reissue does not), holder 3 has no card here: one row is queued, two are
    invalid with their reason. The batch's acceptance owes 20 yuan for the one new
    card and nothing is made until it is settled; the made card waits for pickup
    (``02``, 96-hour auto-enable as any batch card) and the lost one is cancelled,
    its cancellation in the outbox for the platform.
    """
    first = await import_rows(kit, [row(1), row(2)])
    await kit.service.submit(first, TELLER)
    await kit.service.production_round()
    kit.production.finish("job-1")
    kit.production.finish("job-2")
    await kit.service.production_round()
    async with kit.sessions.begin() as session:
        lost, in_use = (await session.scalars(select(CardRow).order_by(CardRow.id))).all()
        for card in (lost, in_use):
            lifecycle.step(card, CardEvent.PICK_UP)
        lifecycle.step(lost, CardEvent.REPORT_FORMAL_LOSS)
    summary = await kit.service.import_batch(
        operation="reissue", employer="昌吉市某某有限公司", handler=PersonIn(**HANDLER),
        materials=MATERIALS, priority="normal", list_name="list.csv",
        list_data=card_list([row(1), row(2), row(3)]),
        files={name: content for n in (1, 2, 3) for name, content in
               ((f"p{n}.jpg", photo), (f"s{n}.pdf", lambda: SCAN))},
        terminal=TELLER,
    )  # fmt: skip
    progress = await kit.service.submit(summary.id, TELLER)
    assert progress.counts == {"queued": 1, "invalid": 2}
    problems = {item.line: json.loads(item.problems or "[]")[0][1] for item in
                await kit.service.rows(summary.id) if item.problems}  # fmt: skip
    assert problems == {3: "card-state", 4: "no-card"}
    async with kit.sessions() as session:
        application = await session.scalar(
            select(ApplicationRow).where(ApplicationRow.receipt_number == summary.receipt_number)
        )
    assert application is not None
    assert (application.operation, application.fee_yuan, application.fee_status) == (
        "reissue",
        20,
        "due",
    )
    submitted = len(kit.production.submitted)
    await kit.service.production_round()
    assert len(kit.production.submitted) == submitted  # 完成费用清缴 … 等待制卡
    fee = await kit.business.fees.settle(summary.receipt_number, FeeIn(method="cash"), TELLER)
    assert (fee.status, fee.yuan) == ("settled", 20)
    await kit.service.production_round()
    assert len(kit.production.submitted) == submitted + 1
    kit.production.finish(f"job-{submitted + 1}")
    await kit.service.production_round()
    async with kit.sessions() as session:
        states = {
            card.id: card.card_state
            for card in (await session.scalars(select(CardRow).order_by(CardRow.id))).all()
        }
        cancellations = (
            await session.scalars(
                select(OutboxRow.operation).where(OutboxRow.operation == "cancel_card")
            )
        ).all()
    assert states == {lost.id: "09", in_use.id: "03", max(states): "02"}
    assert len(cancellations) == 1
    assert (await kit.service.progress(summary.id)).batch.status == "finished"


async def test_twenty_batch_to_single_at_once_take_the_row_out_once(kit: Kit) -> None:
    """20 approved requests at once for one row: one card to production, the others refused."""
    import asyncio  # noqa: PLC0415

    from gateway.operations.schemas import ApprovalIn  # noqa: PLC0415
    from gateway.runtime.http.idempotency import request_digest  # noqa: PLC0415
    from gateway.runtime.refusals import Refusal  # noqa: PLC0415
    from tests.gateway.batches.conftest import SUPERVISOR  # noqa: PLC0415

    batch_id = await import_rows(kit, [row(1)])
    kit.service.settings = type(kit.service.settings)(in_flight=0)  # the row stays queued
    await kit.service.submit(batch_id, TELLER)
    body = OperationRequest(
        case="self", channel="window",  # type: ignore[arg-type]
        applicant=PersonIn(id_number=id_number(1), name="职工1"),
        materials=[Material.APPLICANT_ID_CARD],
    )  # fmt: skip
    digest = request_digest("APPROVE", "batch-to-single", body.model_dump_json().encode())
    asked = ApprovalIn(operation="batch-to-single", request=body, reason="持卡人急需")  # type: ignore[arg-type]
    approvals = [await kit.business.approve(asked, digest, SUPERVISOR) for _ in range(20)]

    async def take_out(approval_id: str) -> str:
        try:
            await kit.service.to_single(
                batch_id, 2, body, TELLER, digest=digest, approval_id=approval_id
            )
        except Refusal as refused:  # the batch's or the operation's, by its reason
            return str(refused.reason)
        return "ok"

    outcomes = await asyncio.gather(*(take_out(a.id) for a in approvals))
    assert outcomes.count("ok") == 1, outcomes
    assert set(outcomes) - {"ok"} <= {
        "batch-row-state",
        "operation-illegal-transition",
        "operation-state-conflict",
    }, outcomes
    assert len(kit.production.submitted) == 1
    async with kit.sessions() as session:
        states = (await session.scalars(select(CardRow.card_state))).all()
        receipts = (
            await session.scalars(
                select(ApplicationRow.receipt_number).where(
                    ApplicationRow.operation == "batch-to-single"
                )
            )
        ).all()
    assert (list(states), len(receipts)) == (["01"], 1)


async def test_ten_submits_of_a_reissue_list_at_once_queue_it_once(kit: Kit) -> None:
    """The holder's lost card moves aside once, one new card, one fee, however often submitted."""
    import asyncio  # noqa: PLC0415

    from gateway.batches.errors import BatchRefusal  # noqa: PLC0415

    first = await import_rows(kit, [row(1)])
    await kit.service.submit(first, TELLER)
    await kit.service.production_round()
    kit.production.finish("job-1")
    await kit.service.production_round()
    async with kit.sessions.begin() as session:
        [lost] = (await session.scalars(select(CardRow))).all()
        lifecycle.step(lost, CardEvent.PICK_UP)
        lifecycle.step(lost, CardEvent.REPORT_FORMAL_LOSS)
    summary = await kit.service.import_batch(
        operation="reissue", employer="昌吉市某某有限公司", handler=PersonIn(**HANDLER),
        materials=MATERIALS, priority="normal", list_name="list.csv",
        list_data=card_list([row(1)]),
        files={"p1.jpg": photo, "s1.pdf": lambda: SCAN}, terminal=TELLER,
    )  # fmt: skip

    async def submit() -> str:
        try:
            await kit.service.submit(summary.id, TELLER)
        except BatchRefusal as refused:
            return str(refused.reason)
        return "ok"

    outcomes = await asyncio.gather(*(submit() for _ in range(10)))
    assert sorted(outcomes) == ["batch-state"] * 9 + ["ok"], outcomes
    async with kit.sessions() as session:
        states = sorted((await session.scalars(select(CardRow.card_state))).all())
        fee = await session.scalar(
            select(ApplicationRow.fee_yuan).where(
                ApplicationRow.receipt_number == summary.receipt_number
            )
        )
    assert (states, fee) == (["00", "07"], 20)  # the lost card aside, one new card, one fee
