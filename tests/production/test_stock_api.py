"""The blank-card stock API refuses what the ledger cannot hold, and then changes nothing.

Loads, destructions, adjustments (and their approvals) and counts name a
feeder of the configured stations (a count, a destruction or an adjustment may
also name one the ledger already holds); counts are JSON integers, never
booleans, strings or fractions; a load moves at least one card and a counted
feeder holds zero or more. After each refusal the ledger is read back through
the API and from the database, unchanged. The daemon is the demo world's, in
this process, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from sqlalchemy import text

from gateway.demo.world import FEEDER, DemoWorld
from tests.gateway.issuance.world import Teller

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


class Stock:
    """A teller's stock calls, and the ledger read back."""

    def __init__(self, world: DemoWorld, http: aiohttp.ClientSession) -> None:
        """Bind to a running world."""
        self.world = world
        self.http = http
        self.teller = Teller(world, http)

    async def post(
        self, path: str, body: object, *, role: str = "teller", **headers: str
    ) -> tuple[int, str, Any]:
        """POST ``body`` as JSON; status, content type and the decoded answer."""
        sent = {
            "Authorization": f"Bearer {self.world.tokens[role]}",
            "Idempotency-Key": uuid.uuid4().hex,
            **headers,
        }
        async with self.http.post(self.world.base_url + path, json=body, headers=sent) as answer:
            return answer.status, answer.content_type, await answer.json(content_type=None)

    async def load(self, quantity: int) -> None:
        """Blanks into the demo station's feeder."""
        status, _, answer = await self.post(
            "/v1/stock/loads", {"feeder": FEEDER, "quantity": quantity, "box": "B-1"}
        )
        assert status == 201, answer

    async def snapshot(self) -> tuple[Any, list[tuple[Any, ...]]]:
        """The stock as the API shows it, and every ledger row in the database."""
        status, stock = await self.teller.call("GET", "/v1/stock", role="ops")
        assert status == 200, stock
        assert self.world.daemon is not None
        async with self.world.daemon.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT key, feeder, kind, quantity FROM production_stock ORDER BY key")
            )
            return stock, [tuple(row) for row in rows]

    async def refused(
        self, path: str, body: object, status: int, code: str, *, role: str = "teller", **h: str
    ) -> dict[str, Any]:
        """POST ``body``: a problem with ``status`` and ``code``, and the ledger unchanged."""
        before = await self.snapshot()
        answer_status, content_type, problem = await self.post(path, body, role=role, **h)
        assert (answer_status, content_type) == (status, PROBLEM), (body, problem)
        assert problem["code"] == code, (body, problem)
        assert await self.snapshot() == before, body
        return dict(problem)


@pytest.fixture
async def stock(tmp_path: Path, database_url: str) -> AsyncIterator[Stock]:
    """The demo world on ``database_url``, with no blanks loaded yet."""
    async with (
        DemoWorld(tmp_path / "world", port=0, time_scale=0.0, database_url=database_url) as world,
        aiohttp.ClientSession() as http,
    ):
        yield Stock(world, http)


async def test_a_load_into_a_feeder_that_does_not_exist_is_refused(stock: Stock) -> None:
    """No feeder is made by a load: stock-unknown-feeder names it and the known ones."""
    for feeder in ("nope", "printer-1", FEEDER.upper(), FEEDER + "x"):
        problem = await stock.refused(
            "/v1/stock/loads",
            {"feeder": feeder, "quantity": 5, "box": "B-1"},
            422,
            "stock-unknown-feeder",
        )
        assert (problem["feeder"], problem["feeders"]) == (feeder, [FEEDER])
    feeders, rows = await stock.snapshot()
    assert (feeders, rows) == ({"feeders": []}, [])
    status, _, loaded = await stock.post(
        "/v1/stock/loads", {"feeder": FEEDER, "quantity": 5, "box": "B-1"}
    )
    assert (status, loaded["feeder"], loaded["remaining"]) == (201, FEEDER, 5)


async def test_a_load_is_a_positive_json_integer(stock: Stock) -> None:
    """Booleans, strings, fractions, zero and negatives are not a number of cards."""
    quantities: list[object] = [True, False, 0, -1, -10_000, 10_001, 2**63, "5", 5.0, 1.5, None]
    for quantity in [*quantities, [5], {}]:
        await stock.refused(
            "/v1/stock/loads",
            {"feeder": FEEDER, "quantity": quantity, "box": "B-1"},
            422,
            "invalid-request",
        )


async def test_destructions_and_adjustments_refuse_unknown_feeders_and_booleans(
    stock: Stock,
) -> None:
    """Destroy, approve and adjust: unknown feeders and non-integer counts change nothing."""
    await stock.load(3)
    for body in (
        {"feeder": "nope", "quantity": 1, "reason": "shred"},
        {"feeder": FEEDER, "quantity": True, "reason": "shred"},
        {"feeder": FEEDER, "quantity": -1, "reason": "shred"},
    ):
        code = "stock-unknown-feeder" if body["feeder"] == "nope" else "invalid-request"
        await stock.refused("/v1/stock/destructions", body, 422, code)
    for adjustment in (
        {"feeder": "nope", "delta": 1, "reason": "recount"},
        {"feeder": FEEDER, "delta": True, "reason": "recount"},
        {"feeder": FEEDER, "delta": "1", "reason": "recount"},
    ):
        code = "stock-unknown-feeder" if adjustment["feeder"] == "nope" else "invalid-request"
        await stock.refused(
            "/v1/stock/approvals", {"adjustment": adjustment}, 422, code, role="supervisor"
        )
        await stock.refused(
            "/v1/stock/adjustments", adjustment, 422, code, **{"X-Approval-ID": "a-1"}
        )


COUNTS: list[tuple[dict[str, object], str]] = [
    ({FEEDER: True}, "invalid-request"),
    ({FEEDER: False}, "invalid-request"),
    ({FEEDER: -1}, "invalid-request"),
    ({FEEDER: "3"}, "invalid-request"),
    ({FEEDER: 3.0}, "invalid-request"),
    ({FEEDER: None}, "invalid-request"),
    ({FEEDER: 10**30}, "invalid-request"),
    ({"bad name": 3}, "invalid-request"),
    ({"\u0000": 3}, "invalid-request"),
    ({"nope": 3}, "stock-unknown-feeder"),
    ({FEEDER: 3, "nope": 0}, "stock-unknown-feeder"),
]


async def test_a_count_is_a_non_negative_integer_of_a_known_feeder(stock: Stock) -> None:
    """The operator's count: a JSON integer of zero or more, for a known feeder."""
    await stock.load(3)
    for counted, code in COUNTS:
        problem = await stock.refused("/v1/stock/reconciliations", {"counted": counted}, 422, code)
        if code == "stock-unknown-feeder":
            assert (problem["feeder"], problem["unknown"]) == ("nope", ["nope"])


async def test_good_counts_still_reconcile(stock: Stock) -> None:
    """Zero is a count; a right count reconciles and a wrong one is reported, not refused."""
    await stock.load(3)
    status, _, result = await stock.post("/v1/stock/reconciliations", {"counted": {FEEDER: 3}})
    assert (status, result["ok"]) == (200, True)
    status, _, result = await stock.post(
        "/v1/stock/reconciliations", {"counted": {FEEDER: 0}}, role="ops"
    )
    assert (status, result["ok"]) == (200, False)
    assert result["problems"] == [f"{FEEDER}: counted 0 blanks, the ledger says 3"]
