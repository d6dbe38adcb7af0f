"""The status query by receipt number through the API, answered from memory.

Every query is audited, cached or not; a change to the application by any
writer of the daemon (here: production completing it) is seen at once.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from gateway.operations.receipts import ReceiptNumber, make_receipt_number
from gateway.operations.status_cache import STATUS_CACHE, StatusCache
from tests.gateway.branch import AGENT, Branch, apply_body

pytestmark = pytest.mark.integration


def _cache(branch: Branch) -> StatusCache:
    runner = branch.daemon._runner
    assert runner is not None
    return runner.app[STATUS_CACHE]


async def test_cached_answer_follows_every_write(branch: Branch) -> None:
    """Repeated queries hit the cache; a status change by another writer shows at once."""
    status, result, _ = await branch.call("POST", "/v1/operations/apply", body=apply_body())
    assert status == 200, result
    receipt = result["receipt_number"]
    cache = _cache(branch)
    answers = []
    for _ in range(3):
        status, found, reply = await branch.call("GET", f"/v1/applications/{receipt}")
        assert status == 200
        assert reply.content_type == "application/json"
        answers.append(found)
    assert answers[0] == answers[1] == answers[2]
    assert answers[0]["status"] == "accepted"
    assert cache.hits >= 2
    async with branch.daemon.engine.begin() as conn:  # as production does when the card is made
        await conn.execute(
            text("UPDATE applications SET status = 'completed' WHERE receipt_number = :r"),
            {"r": receipt},
        )
    status, found, _ = await branch.call("GET", f"/v1/applications/{receipt}")
    assert (status, found["status"]) == (200, "completed")
    spaced = " ".join((receipt[:8], receipt[8:])).lower()  # another spelling: parsed, same answer
    status, again, _ = await branch.call("GET", f"/v1/applications/{spaced}")
    assert (status, again) == (200, found)

    await branch.daemon.audit_reads.drain()
    async with branch.daemon.engine.connect() as conn:
        audited = (
            await conn.execute(
                text("SELECT subject FROM audit_log WHERE action = 'query.application'")
            )
        ).all()
    assert [row[0] for row in audited] == [f"receipt:{receipt}"] * 5


async def test_unknown_receipt_is_not_cached(branch: Branch) -> None:
    """A receipt with no application answers 404 each time, also once it exists."""
    _, result, _ = await branch.call("POST", "/v1/operations/apply", body=apply_body())
    receipt = result["receipt_number"]
    parsed = ReceiptNumber.parse(receipt)
    later = str(make_receipt_number(parsed.region, parsed.day, parsed.sequence + 1))
    for _ in range(2):
        status, problem, _ = await branch.call("GET", f"/v1/applications/{later}")
        assert (status, problem["code"]) == (404, "not-found")
    body = apply_body(applicant={"id_number": AGENT, "name": "王五"})
    status, second, _ = await branch.call("POST", "/v1/operations/apply", body=body)
    assert (status, second["receipt_number"]) == (200, later)
    status, found, _ = await branch.call("GET", f"/v1/applications/{later}")
    assert (status, found["receipt_number"]) == (200, later)
