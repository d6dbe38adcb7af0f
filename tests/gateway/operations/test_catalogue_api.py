"""``GET /v1/catalogue`` as configured: the fee and every channel's time limit."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.gateway.branch import apply_body, running_branch

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


async def test_the_catalogue_reports_the_configured_fee_and_time_limits(
    database_url: str, tmp_path: Path
) -> None:
    """35 yuan and 40 working days configured: the catalogue says so, per channel."""
    business = {
        "reissue_fee_yuan": 35,
        "online_apply_workdays": 40,
        "fee_rules": [{"region": "6523", "category": "senior", "yuan": 0}],
    }
    async with running_branch(database_url, tmp_path, business=business) as branch:
        status, found, _ = await branch.call("GET", "/v1/catalogue")
    assert status == 200
    reissue, apply = found["reissue"], found["apply"]
    assert (reissue["fee_yuan"], apply["fee_yuan"]) == (35, 0)
    assert reissue["fee_rules"] == [{"region": "6523", "category": "senior", "yuan": 0}]
    assert apply["time_limits"]["online"] == {"workdays": 40, "fault_hours": None}
    assert apply["time_limits"]["window"] == {"workdays": 0, "fault_hours": 24}
    assert found["batch-apply"]["time_limits"]["window"]["workdays"] == 10


async def test_lists_filter_by_day_and_terminal(database_url: str, tmp_path: Path) -> None:
    """From / to (business days) and the terminal that accepted; a bad value is named."""
    async with running_branch(database_url, tmp_path) as branch:
        status, accepted, _ = await branch.call("POST", "/v1/operations/apply", body=apply_body())
        assert status == 200, accepted

        async def listed(query: str) -> list[str]:
            status, found, _ = await branch.call("GET", f"/v1/applications?{query}")
            assert status == 200, found
            return [item["receipt_number"] for item in found["items"]]

        receipt = accepted["receipt_number"]
        # the branch's clock: 2026-11-23 17:00 in Beijing
        assert await listed("from=2026-11-23&to=2026-11-23") == [receipt]
        assert await listed("from=2026-11-24") == []
        assert await listed("to=2026-11-22") == []
        assert await listed("terminal=teller-01") == [receipt]
        assert await listed("terminal=kiosk-01") == []
        for bad in ("from=2026-13-01", "to=yesterday", "terminal=a%20b", "from=1999-12-31"):
            status, problem, _ = await branch.call("GET", f"/v1/applications?{bad}")
            assert (status, problem["code"], problem["parameter"]) == (
                400,
                "bad-request",
                bad.partition("=")[0],
            ), bad
        for bad_day in ("0001-01-01", "9999-12-31", "2026-02-30"):  # found by schemathesis
            status, problem, _ = await branch.call("GET", f"/v1/fees?day={bad_day}")
            assert (status, problem["code"], problem["parameter"]) == (400, "bad-request", "day")
