"""Concurrent requests for one holder: how many are carried out, and what they cost.

Run: ``.venv/bin/python bench/race.py [--concurrent 100] [--database-url URL]``.
The daemon (key store, a teller and a supervisor terminal) runs in this process
on a fresh SQLite file, or on the empty database at ``--database-url``. For each
single-shot operation it prepares a holder in the state the operation starts
from, then sends ``--concurrent`` copies of one request at once, each with its
own ``Idempotency-Key`` (and its own supervisor approval where the operation
needs one), and counts:

* the answers: 200s, and refusals by status and problem code;
* the effects stored: the holder's applications of that operation, the fees
  they carry, their card records and the audit entries of the operation.

A correct daemon answers one 200 and ``concurrent - 1`` 409s, and stores one
application, one fee, one state change and one audit entry; the script exits 1
otherwise. Speed, against a baseline measured in the same run: the wall time of
the concurrent burst against the same number of requests for the same kind of
holder sent one after another (the sequential burst gets one 200 and refusals
too, so both do the same work); the ratio says what the holder's serialisation
costs when everything arrives at once.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import secrets
import sys
import tempfile
import time
from collections import Counter
from datetime import date, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select, update
from stdnum.cn import ric

from devices.clock import SystemClock
from gateway.audit.rows import AuditEntryRow
from gateway.config import parse_config
from gateway.daemon import Daemon
from gateway.operations.catalogue import Operation
from gateway.operations.rows import ApplicationRow
from gateway.people.rows import CardRow
from gateway.runtime.logs import configure_logging

TOKENS = {role: f"race-{role}-" + "r" * 32 for role in ("teller", "supervisor")}
_O = Operation
#: (operation, the (application, card) state it starts from, None: a new person, materials).
CASES: list[tuple[Operation, tuple[str, str] | None, list[str]]] = [
    (_O.APPLY, None, ["applicant-id-card", "photo"]),
    (_O.ACTIVATE, ("0", "03"), ["applicant-id-card"]),
    (_O.REPORT_TEMPORARY_LOSS, ("1", "04"), ["applicant-id-card"]),
    (_O.REPORT_FORMAL_LOSS, ("1", "04"), ["applicant-id-card"]),
    (_O.CANCEL_LOSS, ("4", "06"), ["applicant-id-card"]),
    (_O.REISSUE, ("2", "05"), ["applicant-id-card"]),
    (_O.REPLACE, ("1", "04"), ["applicant-id-card", "applicant-ss-card"]),
    (_O.CANCEL, ("1", "04"), ["applicant-id-card"]),
    (_O.ROLLBACK, ("9", "09"), ["applicant-id-card"]),
]
_serial = itertools.count(1)


def _adult() -> str:
    n = next(_serial)
    head = f"110105{date(1960, 1, 1) + timedelta(days=n):%Y%m%d}{n % 1000:03d}"
    return head + ric.calc_check_digit(head + "0")


def _photo() -> str:
    import base64  # noqa: PLC0415 - only the bench's photo
    import io  # noqa: PLC0415

    from PIL import Image  # noqa: PLC0415

    image = Image.new("RGB", (358, 441), (255, 255, 255))
    image.paste((80, 80, 80), (90, 110, 270, 441))
    out = io.BytesIO()
    image.save(out, format="JPEG", dpi=(300, 300))
    return base64.b64encode(out.getvalue()).decode()


class Race:
    """The daemon and the calls the bench makes to it."""

    def __init__(self, daemon: Daemon, http: aiohttp.ClientSession) -> None:
        """Keep the daemon and the client session."""
        self.daemon = daemon
        self.http = http
        self.keys = itertools.count(1)
        self.photo = _photo()

    async def call(
        self, path: str, body: dict[str, Any], *, role: str = "teller", approval: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        """POST ``body`` with a fresh key."""
        headers = {
            "Authorization": f"Bearer {TOKENS[role]}",
            "Idempotency-Key": f"race-{next(self.keys)}",
        }
        if approval:
            headers["X-Approval-ID"] = approval
        async with self.http.post(self.daemon.urls[0] + path, json=body, headers=headers) as r:
            return r.status, await r.json(content_type=None)

    def body(self, id_number: str, materials: list[str]) -> dict[str, Any]:
        """A complete window request of the holder in person."""
        body: dict[str, Any] = {
            "case": "self",
            "channel": "window",
            "applicant": {"id_number": id_number, "name": "张三"},
            "materials": materials,
        }
        if "photo" in materials:
            body["photo"] = self.photo
        return body

    async def holder(self, state: tuple[str, str] | None) -> str:
        """A new holder whose card is in ``state`` (None: not yet applied)."""
        id_number = _adult()
        if state is None:
            return id_number
        status, result = await self.call(
            "/v1/operations/apply", self.body(id_number, ["applicant-id-card", "photo"])
        )
        assert status == HTTPStatus.OK, result  # noqa: S101 - the bench's own setup
        async with self.daemon.engine.begin() as conn:
            card = select(ApplicationRow.card_id).where(
                ApplicationRow.receipt_number == result["receipt_number"]
            )
            await conn.execute(
                update(CardRow)
                .where(CardRow.id == card.scalar_subquery())
                .values(application_state=state[0], card_state=state[1])
            )
        return id_number

    async def approvals(self, operation: Operation, body: dict[str, Any], n: int) -> list[str]:
        """``n`` supervisor approvals of ``body`` (each is used once)."""
        found = []
        for _ in range(n):
            status, approval = await self.call(
                "/v1/approvals",
                {"operation": operation.value, "request": body, "reason": "bench"},
                role="supervisor",
            )
            assert status == HTTPStatus.CREATED, approval  # noqa: S101
            found.append(str(approval["id"]))
        return found

    async def burst(
        self, operation: Operation, state: tuple[str, str] | None, materials: list[str], n: int,
        *, at_once: bool,
    ) -> tuple[Counter[str], dict[str, int], float]:  # fmt: skip
        """Send ``n`` copies of one request; the answers, the effects and the seconds."""
        id_number = await self.holder(state)
        body = self.body(id_number, materials)
        needs = operation in {_O.CANCEL, _O.ROLLBACK}
        approvals: list[str | None] = (
            list(await self.approvals(operation, body, n)) if needs else [None] * n
        )
        path = f"/v1/operations/{operation.value}"
        action = AuditEntryRow.action == f"operation.{operation}"
        audit_before = await self._count(AuditEntryRow, action)
        started = time.perf_counter()
        if at_once:
            answers = await asyncio.gather(*(self.call(path, body, approval=a) for a in approvals))
        else:
            answers = [await self.call(path, body, approval=a) for a in approvals]
        seconds = time.perf_counter() - started
        tally = Counter(
            "200" if status == 200 else f"{status} {answer.get('code')}"  # noqa: PLR2004
            for status, answer in answers
        )
        winner = next((a for s, a in answers if s == 200), None)  # noqa: PLR2004
        effects = {"applications": 0, "fee_yuan": 0, "cards": 0, "audit": 0}
        if winner is not None:
            async with self.daemon.engine.connect() as conn:
                person = (
                    await conn.execute(
                        select(ApplicationRow.person_id).where(
                            ApplicationRow.receipt_number == winner["receipt_number"]
                        )
                    )
                ).scalar_one()
                fees = (
                    await conn.execute(
                        select(ApplicationRow.fee_yuan).where(
                            ApplicationRow.person_id == person,
                            ApplicationRow.operation == operation.value,
                        )
                    )
                ).all()
                effects["applications"] = len(fees)
                effects["fee_yuan"] = sum(fee for (fee,) in fees)
                effects["cards"] = (
                    await conn.execute(
                        select(func.count()).select_from(CardRow).where(CardRow.person_id == person)
                    )
                ).scalar_one()
        effects["audit"] = await self._count(AuditEntryRow, action) - audit_before
        return tally, effects, seconds

    async def _count(self, table: Any, *where: Any) -> int:  # noqa: ANN401 - SQL expressions
        async with self.daemon.engine.connect() as conn:
            query = select(func.count()).select_from(table).where(*where)
            return int((await conn.execute(query)).scalar_one())


async def main(concurrent: int, database_url: str | None) -> int:
    """Run every case; print the table; 1 when any case stored more than one effect."""
    directory = Path(tempfile.mkdtemp(prefix="bench-race-"))
    master = directory / "master.key"
    master.write_text(secrets.token_hex(32), "ascii")
    master.chmod(0o600)
    settings: dict[str, Any] = {
        "data_dir": str(directory),
        "branch": {"id": "BENCH", "region": "652300"},
        "server": {"host": "127.0.0.1", "port": 0},
        "logging": {"level": "error"},
        "keystore": {"master_key": {"file": str(master)}},
        "terminals": [
            {"id": f"{role}-01", "role": role, "token": token} for role, token in TOKENS.items()
        ],
    }
    if database_url:
        settings["database"] = {"url": database_url}
    configure_logging("error", "json")
    daemon = Daemon(parse_config(settings), clock=SystemClock(), rng=random.Random())
    await daemon.start(migrate=True)
    failed = False
    backend = "PostgreSQL" if database_url and "postgresql" in database_url else "SQLite"
    print(f"{concurrent} requests per operation at once, each with its own key ({backend})")
    print(f"{'operation':24} {'answers':44} {'apps':>4} {'fee':>4} {'cards':>5} {'audit':>5}"
          f" {'at once s':>9} {'in turn s':>9} {'ratio':>6}")  # fmt: skip
    try:
        connector = aiohttp.TCPConnector(limit=concurrent)
        async with aiohttp.ClientSession(connector=connector) as http:
            race = Race(daemon, http)
            for operation, state, materials in CASES:
                tally, effects, at_once = await race.burst(
                    operation, state, materials, concurrent, at_once=True
                )
                _, _, in_turn = await race.burst(
                    operation, state, materials, concurrent, at_once=False
                )
                answers = ", ".join(f"{k}: {v}" for k, v in sorted(tally.items()))
                print(
                    f"{operation.value:24} {answers:44} {effects['applications']:>4}"
                    f" {effects['fee_yuan']:>4} {effects['cards']:>5} {effects['audit']:>5}"
                    f" {at_once:>9.3f} {in_turn:>9.3f} {at_once / in_turn:>6.2f}"
                )
                if tally["200"] != 1 or effects["applications"] != 1 or effects["audit"] != 1:
                    failed = True
    finally:
        await daemon.stop()
    print("one effect per operation" if not failed else "MORE THAN ONE EFFECT (see above)")
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrent", type=int, default=100)
    parser.add_argument("--database-url", default=None)
    options = parser.parse_args()
    sys.exit(asyncio.run(main(options.concurrent, options.database_url)))
