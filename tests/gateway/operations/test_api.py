"""The teller API end to end: daemon, real database, key store, terminals with tokens."""

from typing import Any

import pytest
from sqlalchemy import text

from tests.gateway.branch import ADULT, AGENT, MINOR, Branch, apply_body

pytestmark = pytest.mark.integration


async def test_new_card_with_two_missing_materials_lists_both(branch: Branch) -> None:
    """An adult proxy application without photo and agent ID answers 422 listing both."""
    status, body, response = await branch.call(
        "POST",
        "/v1/operations/apply",
        body=apply_body(
            case="adult-proxy",
            agent={"id_number": AGENT, "name": "李四"},
            materials=["applicant-id-card"],
            photo=None,
        ),
    )
    assert status == 422
    assert response.content_type == "application/problem+json"
    assert body["code"] == "incomplete-request"
    assert [m["code"] for m in body["missing"]] == ["missing:photo", "missing:agent-identity"]
    assert all(m["title_zh"] and m["title_en"] for m in body["missing"])


async def test_apply_then_query_by_receipt_and_identity(branch: Branch) -> None:
    """A complete application gets a receipt number; queries find it with masked data only."""
    status, result, _ = await branch.call("POST", "/v1/operations/apply", body=apply_body())
    assert status == 200, result
    assert result["status"] == "accepted"
    assert result["card_state"] == "01"
    receipt = result["receipt_number"]
    status, found, _ = await branch.call("GET", f"/v1/applications/{receipt}")
    assert status == 200
    assert found["holder"] == "110105********002X"
    assert found["deadline"] == result["deadline"]
    status, cards, _ = await branch.call(
        "GET", "/v1/persons/cards", headers={"X-Identity-Number": ADULT}
    )
    assert status == 200
    assert cards["cards"][0]["application_state"] == "0"
    typo = receipt[:-2] + str((int(receipt[-2]) + 1) % 10) + receipt[-1]
    status, problem, _ = await branch.call("GET", f"/v1/applications/{typo}")
    assert (status, problem["code"]) == (400, "invalid-receipt-number")


async def test_replay_returns_identical_body_and_changed_body_is_refused(branch: Branch) -> None:
    """The same Idempotency-Key replays the stored answer; another body with it gets 422."""
    first_status, _, first = await branch.call(
        "POST", "/v1/operations/apply", body=apply_body(), key="apply-1"
    )
    status, _, again = await branch.call(
        "POST", "/v1/operations/apply", body=apply_body(), key="apply-1"
    )
    assert (status, again.body) == (first_status, first.body)
    assert again.headers["Idempotent-Replayed"] == "true"
    changed = apply_body(applicant={"id_number": ADULT, "name": "张叁"})
    status, problem, _ = await branch.call(
        "POST", "/v1/operations/apply", body=changed, key="apply-1"
    )
    assert (status, problem["code"]) == (422, "idempotency-key-reused")
    status, problem, _ = await branch.call(
        "POST", "/v1/operations/apply", body=apply_body(), key=""
    )
    assert (status, problem["code"]) == (400, "idempotency-key-required")


async def test_cancellation_needs_window_and_a_bound_approval(branch: Branch) -> None:
    """A kiosk is refused a cancellation; a teller needs a supervisor's approval of that request."""
    await branch.call("POST", "/v1/operations/apply", body=apply_body())
    cancel = {
        "case": "self",
        "channel": "window",
        "applicant": {"id_number": ADULT, "name": "张三"},
        "materials": ["applicant-id-card"],
    }
    status, problem, _ = await branch.call(
        "POST", "/v1/operations/cancel", role="kiosk", body={**cancel, "channel": "kiosk"}
    )
    assert (status, problem["code"]) == (403, "forbidden")
    status, problem, _ = await branch.call("POST", "/v1/operations/cancel", body=cancel)
    assert (status, problem["code"]) == (403, "approval-required")

    status, approval, _ = await branch.call(
        "POST", "/v1/approvals", role="supervisor",
        body={"operation": "cancel", "request": cancel, "reason": "持卡人申请注销"},
    )  # fmt: skip
    assert status == 201, approval
    other = {**cancel, "materials": ["applicant-ss-card"]}
    status, problem, _ = await branch.call(
        "POST", "/v1/operations/cancel", body=other, headers={"X-Approval-ID": approval["id"]}
    )
    assert (status, problem["code"]) == (403, "approval-invalid")
    status, result, _ = await branch.call(
        "POST", "/v1/operations/cancel", body=cancel, headers={"X-Approval-ID": approval["id"]}
    )
    assert status == 200, result
    assert (result["application_state"], result["card_state"]) == ("9", "09")
    status, problem, _ = await branch.call(
        "POST", "/v1/operations/cancel", body=cancel, headers={"X-Approval-ID": approval["id"]}
    )
    assert (status, problem["code"]) == (403, "approval-invalid")  # used once


async def test_roles_and_authentication(branch: Branch) -> None:
    """No token: 401; an ops terminal cannot do business; a teller cannot approve."""
    async with branch.http.get(branch.daemon.urls[0] + "/v1/applications") as response:
        assert response.status == 401
        assert (await response.json())["code"] == "unauthenticated"
    status, problem, _ = await branch.call(
        "POST", "/v1/operations/apply", role="ops", body=apply_body()
    )
    assert (status, problem["code"]) == (403, "forbidden")
    status, problem, _ = await branch.call(
        "POST",
        "/v1/approvals",
        body={"operation": "cancel", "request": apply_body(), "reason": "x1"},
    )
    assert (status, problem["code"]) == (403, "forbidden")


async def test_illegal_transition_and_case_checks(branch: Branch) -> None:
    """A loss never reported cannot be cancelled; a minor cannot come as an adult."""
    await branch.call("POST", "/v1/operations/apply", body=apply_body())
    body = {
        "case": "self",
        "channel": "window",
        "applicant": {"id_number": ADULT, "name": "张三"},
        "materials": ["applicant-id-card"],
    }
    status, problem, _ = await branch.call("POST", "/v1/operations/cancel-loss", body=body)
    assert (status, problem["code"], problem["machine"]) == (
        409,
        "illegal-transition",
        "application",
    )
    minor = apply_body(
        case="adult-proxy",
        applicant={"id_number": MINOR, "name": "小明"},
        agent={"id_number": AGENT, "name": "李四"},
        materials=["applicant-id-card", "photo", "agent-id-card"],
    )
    status, problem, _ = await branch.call("POST", "/v1/operations/apply", body=minor)
    assert (status, [m["code"] for m in problem["missing"]]) == (422, ["case-mismatch"])


async def test_validation_errors_listed(branch: Branch) -> None:
    """A malformed body answers 422 invalid-request listing every field problem."""
    status, problem, _ = await branch.call(
        "POST", "/v1/operations/apply", body={"case": "nobody", "channel": "window"}
    )
    assert (status, problem["code"]) == (422, "invalid-request")
    fields = {e["field"] for e in problem["errors"]}
    assert {"case", "applicant"} <= fields


async def test_list_with_cursor_pagination(branch: Branch) -> None:
    """Applications list newest first, two per page, following the cursor to the end."""
    numbers = [ADULT, MINOR]
    for n, id_number in enumerate(numbers):
        case = "self" if n == 0 else "minor-proxy"
        extra: dict[str, Any] = {"agent": {"id_number": AGENT, "name": "李四"}} if n else {}
        materials = ["applicant-id-card", "photo"] + (["agent-id-card"] if n else [])
        status, _, _ = await branch.call(
            "POST", "/v1/operations/apply",
            body=apply_body(case=case, applicant={"id_number": id_number, "name": "某"},
                            materials=materials, **extra),
        )  # fmt: skip
        assert status == 200
    status, page, _ = await branch.call("GET", "/v1/applications?limit=1")
    assert status == 200
    assert len(page["items"]) == 1
    status, rest, _ = await branch.call(
        "GET", f"/v1/applications?limit=1&cursor={page['next_cursor']}"
    )
    assert rest["next_cursor"] is None
    assert page["items"][0]["receipt_number"] != rest["items"][0]["receipt_number"]


async def test_openapi_and_docs(branch: Branch) -> None:
    """/openapi.json is OpenAPI 3.1 with a path per operation; /docs is a page."""
    async with branch.http.get(branch.daemon.urls[0] + "/openapi.json") as response:
        document = await response.json()
    assert document["openapi"] == "3.1.0"
    assert "/v1/operations/pin-reset" in document["paths"]
    assert "OperationRequest" in document["components"]["schemas"]
    async with branch.http.get(branch.daemon.urls[0] + "/docs") as response:
        assert "openapi.json" in await response.text()


async def test_reads_of_personal_data_are_audited(branch: Branch) -> None:
    """Queries are audited too (through the queue), with masked identity numbers only."""
    _, result, _ = await branch.call("POST", "/v1/operations/apply", body=apply_body())
    await branch.call("GET", f"/v1/applications/{result['receipt_number']}")
    await branch.call("GET", "/v1/persons/cards", headers={"X-Identity-Number": ADULT})
    await branch.daemon.audit_reads.drain()
    report = await branch.daemon.audit.verify(None)
    assert report.problem is None
    async with branch.daemon.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT action, subject FROM audit_log"))).all()
    actions = [row[0] for row in rows]
    assert "operation.apply" in actions
    assert "query.application" in actions
    assert ("query.person-cards", "holder:110105********002X") in [tuple(r) for r in rows]
    assert all(ADULT not in str(row) for row in rows)


async def test_fee_waiver_needs_a_supervisor_approval(branch: Branch) -> None:
    """Replacing a card costs 20 yuan; waiving the fee needs an approval of that request."""
    await branch.call("POST", "/v1/operations/apply", body=apply_body())
    async with branch.daemon.engine.begin() as conn:  # the card was issued and activated
        await conn.execute(text("UPDATE cards SET card_state = '04', application_state = '1'"))
    replace = {
        "case": "self",
        "channel": "window",
        "applicant": {"id_number": ADULT, "name": "张三"},
        "materials": ["applicant-ss-card"],
    }
    status, result, _ = await branch.call("POST", "/v1/operations/replace", body=replace)
    assert (status, result["fee_yuan"], result["fee_waived"]) == (200, 20, False)
    assert result["card_state"] == "08"
    async with branch.daemon.engine.begin() as conn:  # the replacement was made and handed over
        await conn.execute(text("UPDATE cards SET card_state = '04'"))
        await conn.execute(text("UPDATE applications SET status = 'completed'"))
    waived = {**replace, "fee_waived": True}
    status, problem, _ = await branch.call("POST", "/v1/operations/replace", body=waived)
    assert (status, problem["code"]) == (403, "approval-required")
    status, approval, _ = await branch.call(
        "POST",
        "/v1/approvals",
        role="supervisor",
        body={"operation": "replace", "request": waived, "reason": "低保户减免工本费"},
    )
    status, result, _ = await branch.call(
        "POST", "/v1/operations/replace", body=waived, headers={"X-Approval-ID": approval["id"]}
    )
    assert (status, result["fee_yuan"], result["fee_waived"]) == (200, 20, True)


async def test_pin_operations_refused_until_the_pin_pad_is_wired(branch: Branch) -> None:
    """PIN reset, change and unlock answer 501 and change nothing (no pretend success)."""
    await branch.call("POST", "/v1/operations/apply", body=apply_body())
    body = {
        "case": "self",
        "channel": "window",
        "applicant": {"id_number": ADULT, "name": "张三"},
        "materials": ["applicant-id-card"],
    }
    for operation in ("pin-reset", "pin-change", "unlock"):
        status, problem, _ = await branch.call("POST", f"/v1/operations/{operation}", body=body)
        assert (status, problem["code"]) == (404, "pin-services-unavailable")
    status, page, _ = await branch.call("GET", "/v1/applications")
    assert [item["operation"] for item in page["items"]] == ["apply"]
