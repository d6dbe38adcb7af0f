"""A teller system's calls against a daemon with ``[production]`` (demo world or process)."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

from gateway.demo.world import FEEDER, DemoWorld, demo_id_number, demo_photo

if TYPE_CHECKING:
    from collections.abc import Callable

    import aiohttp

__all__ = ["WAIT", "Teller"]

WAIT = 60.0  # seconds a card may take end to end on a loaded machine


class Teller:
    """API calls as the world's terminals."""

    def __init__(self, world: DemoWorld, http: aiohttp.ClientSession) -> None:
        """Bind to a running world."""
        self.world = world
        self.http = http

    async def call(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        role: str = "teller",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """One call; POSTs get a fresh Idempotency-Key."""
        sent = {"Authorization": f"Bearer {self.world.tokens[role]}", **(headers or {})}
        if method == "POST":
            sent.setdefault("Idempotency-Key", uuid.uuid4().hex)
        async with self.http.request(
            method, self.world.base_url + path, json=body, headers=sent
        ) as response:
            return response.status, await response.json(content_type=None)

    async def apply(self, serial: int, name: str = "赵敏") -> str:
        """A complete window application; its receipt number."""
        body = {
            "case": "self",
            "channel": "window",
            "applicant": {"id_number": demo_id_number(serial), "name": name},
            "materials": ["applicant-id-card", "photo"],
            "photo": demo_photo(),
        }
        status, result = await self.call("POST", "/v1/operations/apply", body)
        assert status == 200, result
        return str(result["receipt_number"])

    async def load(self, quantity: int) -> None:
        """Blanks into the feeder."""
        status, result = await self.call(
            "POST", "/v1/stock/loads", {"feeder": FEEDER, "quantity": quantity, "box": "B-1"}
        )
        assert status == 201, result

    async def job(self, job_id: str) -> dict[str, Any]:
        """The job's current view."""
        status, job = await self.call("GET", f"/v1/production/jobs/{job_id}")
        assert status == 200, job
        return dict(job)

    async def until(
        self, job_id: str, done: Callable[[dict[str, Any]], bool], *, resume: bool = True
    ) -> dict[str, Any]:
        """Poll the job until ``done``; resume the station when a jam paused it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while True:
            job = await self.job(job_id)
            if done(job):
                return job
            assert job["status"] != "failed", job
            assert loop.time() < deadline, job
            if resume:
                _, queue = await self.call("GET", "/v1/production/queue")
                for station in queue["stations"]:
                    if station["paused"]:
                        status, _ = await self.call(
                            "POST", f"/v1/production/stations/{station['name']}/resume"
                        )
                        assert status == 200
            await asyncio.sleep(0.05)

    async def until_settled(self, receipt: str) -> dict[str, Any]:
        """Poll the application until its card record is settled (just after its job ends)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while True:
            status, application = await self.call("GET", f"/v1/applications/{receipt}")
            assert status == 200, application
            if application["status"] == "completed":
                return dict(application)
            assert loop.time() < deadline, application
            await asyncio.sleep(0.05)

    async def qc(self, job_id: str, *, passed: bool, reason: str = "") -> None:
        """The teller's verdict, once the card waits for it."""
        await self.until(job_id, lambda j: bool(j["waiting_for_quality_check"]))
        status, result = await self.call(
            "POST",
            f"/v1/production/jobs/{job_id}/quality-check",
            {"passed": passed, "reason": reason},
        )
        assert status == 200, result
