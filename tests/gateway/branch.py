"""The running branch the API tests talk to: a daemon with a key store and terminals."""

import asyncio
import base64
import contextlib
import io
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image
from stdnum.cn import ric

from gateway.daemon import Daemon, serve
from tests.fakes import FakeClock
from tests.gateway.builders import TOKENS, branch_config

ADULT = "11010519491231002X"
MINOR = "1101052015010100" + "1" + ric.calc_check_digit("110105201501010010")
AGENT = "1101051980010100" + "2" + ric.calc_check_digit("110105198001010020")


def jpeg_photo() -> str:
    """A conforming photo (358x441, 300 DPI, white background), base64."""
    image = Image.new("RGB", (358, 441), (255, 255, 255))
    image.paste((80, 80, 80), (90, 110, 270, 441))
    out = io.BytesIO()
    image.save(out, format="JPEG", dpi=(300, 300))
    return base64.b64encode(out.getvalue()).decode()


@dataclass(frozen=True)
class Reply:
    """The raw answer: body bytes, content type and headers."""

    body: bytes
    content_type: str
    headers: dict[str, str]


@dataclass
class Branch:
    """A running daemon and a way to call it as each terminal."""

    daemon: Daemon
    http: aiohttp.ClientSession
    keys: int = 0

    async def call(  # noqa: PLR0913 - one knob per part of an HTTP request
        self,
        method: str,
        path: str,
        *,
        role: str = "teller",
        body: dict[str, Any] | None = None,
        key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any], Reply]:
        """Call the API as the terminal of ``role``; a fresh Idempotency-Key per POST."""
        sent = {"Authorization": f"Bearer {TOKENS[role]}", **(headers or {})}
        if method == "POST":
            self.keys += 1
            sent["Idempotency-Key"] = key if key is not None else f"k-{self.keys}"
        async with self.http.request(
            method, self.daemon.urls[0] + path, json=body, headers=sent
        ) as response:
            raw = await response.read()
            reply = Reply(raw, response.content_type, dict(response.headers))
            return response.status, await response.json(), reply


@contextlib.asynccontextmanager
async def running_branch(
    database_url: str,
    tmp_path: Path,
    **sections: Any,  # noqa: ANN401 - config sections
) -> AsyncIterator[Branch]:
    """A daemon with a key store and four terminals; ``sections`` added to its config."""
    config = branch_config(database_url, tmp_path, **sections)
    started: asyncio.Future[Daemon] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve(config, migrate=True, clock=FakeClock(autojump=False), on_started=started.set_result)
    )
    waiter = asyncio.ensure_future(asyncio.shield(started))
    both: set[asyncio.Future[Any]] = {task, waiter}
    done, _ = await asyncio.wait(both, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        waiter.cancel()
        task.result()  # raise what went wrong at start
    daemon = started.result()
    async with aiohttp.ClientSession() as http:
        yield Branch(daemon, http)
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(task, 20) == 0


@pytest.fixture
async def branch(database_url: str, tmp_path: Path) -> AsyncIterator[Branch]:
    """A daemon with a key store and four terminals (teller, supervisor, kiosk, ops)."""
    async with running_branch(database_url, tmp_path) as running:
        yield running


def apply_body(**changes: Any) -> dict[str, Any]:  # noqa: ANN401
    """A complete window application of an adult, in person."""
    body: dict[str, Any] = {
        "case": "self",
        "channel": "window",
        "applicant": {"id_number": ADULT, "name": "张三"},
        "materials": ["applicant-id-card", "photo"],
        "photo": jpeg_photo(),
    }
    body.update(changes)
    return body
