"""Acceptance: a real branch daemon, a real monitor, Mosquitto, and the dashboard in Chromium.

``branchd run`` publishes its presence (Last Will: offline) to Mosquitto;
``branchd monitor`` aggregates it and serves the dashboard. Killing the daemon
with SIGKILL shows the branch offline in the browser within the configured
time, with a ``daemon_offline`` alert; restarting it clears the alert.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from tests.conftest import free_port
from tests.gateway.builders import config_toml

if TYPE_CHECKING:
    from pathlib import Path

    from selenium.webdriver.remote.webdriver import WebDriver

    from tests.devices.agent.conftest import Mosquitto

pytestmark = pytest.mark.integration

BRANCHD = [sys.executable, "-m", "gateway"]
BRANCH = "T-652300-01"
OFFLINE_AFTER = 1.0  # seconds: [alerts] daemon_offline_after of the monitor under test
SHOWN_WITHIN = 10.0  # seconds from SIGKILL to the offline row and the alert in the browser


async def start(args: list[str], log: Path) -> asyncio.subprocess.Process:
    """Start ``branchd ARGS`` with its output in ``log``."""
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(*BRANCHD, *args, stdout=out, stderr=out)


async def poll_json(url: str, check: Any, timeout: float = 30.0) -> Any:  # noqa: ANN401, ASYNC109
    """GET ``url`` until ``check(body)`` is true (deadline ``timeout``); return the body."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url) as response:
                    body = await response.json()
                    if response.status == 200 and check(body):
                        return body
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{url}: condition not met within {timeout} s")
            await asyncio.sleep(0.1)  # polling interval of the deadline loop, not a timer wait


def wait_for(driver: WebDriver, selector: str, *, gone: bool = False, timeout: float = 20) -> None:
    """Wait in the browser until ``selector`` matches (or, with ``gone``, no longer does)."""
    from selenium.webdriver.common.by import By  # noqa: PLC0415
    from selenium.webdriver.support.wait import WebDriverWait  # noqa: PLC0415

    def matched(d: WebDriver) -> bool:
        found = bool(d.find_elements(By.CSS_SELECTOR, selector))
        return not found if gone else found

    WebDriverWait(driver, timeout, poll_frequency=0.1).until(matched)


async def kill(process: asyncio.subprocess.Process) -> None:
    """SIGKILL and reap."""
    if process.returncode is None:
        process.send_signal(signal.SIGKILL)
        await process.wait()


@pytest.mark.timeout(180)
async def test_killed_daemon_shows_offline_with_alert_and_restart_clears_it(
    broker: Mosquitto, chromium: WebDriver, tmp_path: Path
) -> None:
    """SIGKILL -> offline row and alert in Chromium within seconds; restart -> alert cleared."""
    daemon_config = tmp_path / "branchd.toml"
    daemon_config.write_text(
        config_toml(f"sqlite+aiosqlite:///{tmp_path / 'branch.db'}", tmp_path, free_port())
        + f'[devices]\nprovince = "650000"\nbranch = "{BRANCH}"\n'
        f'[devices.broker]\nhost = "127.0.0.1"\nport = {broker.port}\nkeepalive = 5\n'
        "reconnect_initial = 0.1\nreconnect_max = 1.0\n",
        encoding="utf-8",
    )
    port = free_port()
    monitor_config = tmp_path / "monitor.toml"
    monitor_config.write_text(
        'province = "650000"\nclient_id = "monitor-test"\n'
        f'[broker]\nhost = "127.0.0.1"\nport = {broker.port}\nreconnect_initial = 0.1\n'
        f'[server]\nhost = "127.0.0.1"\nport = {port}\npush_interval = 0.2\n'
        f"[alerts]\ndaemon_offline_after = {OFFLINE_AFTER}\nevaluate_interval = 0.2\n"
        "[history]\nflush_interval = 0.5\n",
        encoding="utf-8",
    )
    base = f"http://127.0.0.1:{port}"
    monitor = await start(["monitor", "--config", str(monitor_config)], tmp_path / "monitor.log")
    daemon = await start(
        ["run", "--migrate", "--config", str(daemon_config)], tmp_path / "daemon.log"
    )
    try:
        await poll_json(f"{base}/healthz", lambda b: b["broker"])
        online = await poll_json(
            f"{base}/api/branches/{BRANCH}", lambda b: b["presence"] == "online", timeout=60
        )
        assert online["alerts"] == []

        await asyncio.to_thread(chromium.get, f"{base}/")
        row = f'tr[data-branch="{BRANCH}"]'
        await asyncio.to_thread(wait_for, chromium, f'{row}[data-presence="online"]')

        killed_at = time.monotonic()
        await kill(daemon)
        await asyncio.to_thread(
            wait_for, chromium, f'{row}[data-presence="offline"]', timeout=SHOWN_WITHIN
        )
        alert = f'li.alert[data-rule="daemon_offline"][data-branch="{BRANCH}"]'
        await asyncio.to_thread(wait_for, chromium, alert, timeout=SHOWN_WITHIN)
        shown_after = time.monotonic() - killed_at
        assert shown_after < SHOWN_WITHIN
        screenshot = tmp_path / "dashboard-offline.png"
        assert await asyncio.to_thread(chromium.save_screenshot, str(screenshot))
        assert screenshot.stat().st_size > 1000

        alerts = await poll_json(f"{base}/api/alerts", lambda b: b["alerts"])
        [raised] = alerts["alerts"]
        assert raised["rule"] == "daemon_offline"
        assert raised["detail"] == "connection_lost"  # the Last Will's reason

        daemon = await start(["run", "--config", str(daemon_config)], tmp_path / "daemon.log")
        await asyncio.to_thread(wait_for, chromium, alert, gone=True, timeout=60)
        await asyncio.to_thread(wait_for, chromium, f'{row}[data-presence="online"]')
        await poll_json(f"{base}/api/alerts", lambda b: b["alerts"] == [])
        recent = await poll_json(f"{base}/api/alerts?recent=1", lambda b: b["alerts"])
        assert recent["alerts"][0]["cleared_at"] is not None

        await asyncio.to_thread(chromium.get, f"{base}/#/branch/{BRANCH}")
        await asyncio.to_thread(wait_for, chromium, '#branch-title[data-presence="online"]')
        metrics = await poll_json(f"{base}/healthz", lambda b: b["branches"] == 1)
        assert metrics["offline"] == 0
    finally:
        await kill(daemon)
        if monitor.returncode is None:
            monitor.send_signal(signal.SIGTERM)
            status = await asyncio.wait_for(monitor.wait(), 30)
            assert status == 0, (tmp_path / "monitor.log").read_text()[-3000:]
    log = (tmp_path / "monitor.log").read_text()
    assert "Traceback" not in log
    assert any(
        json.loads(line).get("event") == "alert_raised"
        for line in log.splitlines()
        if line.startswith("{")
    )
