import asyncio
import os
import random
import signal
import stat
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select
from structlog.testing import capture_logs

from gateway.config import parse_config
from gateway.daemon import Daemon, serve
from gateway.runtime.db import create_engine, session_factory
from gateway.runtime.migrate import upgrade
from gateway.runtime.rows import DaemonRun
from tests.fakes import FakeClock
from tests.gateway.builders import daemon_config, master_key_file

pytestmark = pytest.mark.integration


async def start_serving(
    config_url: str,
    tmp_path: Path,
    clock: FakeClock,
    routes: list[web.RouteDef] | None = None,
    port: int = 0,
    **server: float | dict[str, str],
) -> tuple[asyncio.Task[int], Daemon]:
    """Run ``serve`` in a task (signals handled in this process) and wait until it listens."""
    started: asyncio.Future[Daemon] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve(
            daemon_config(config_url, tmp_path, port, **server),
            migrate=True,
            clock=clock,
            rng=random.Random(5),
            extra_routes=routes or [],
            on_started=started.set_result,
        )
    )
    waiter = asyncio.ensure_future(asyncio.shield(started))
    both: set[asyncio.Future[Any]] = {task, waiter}
    done, _ = await asyncio.wait(both, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        waiter.cancel()
        task.result()  # raise what went wrong
    return task, started.result()


async def runs_in(database_url: str) -> list[DaemonRun]:
    """Every recorded daemon run, oldest first."""
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            return list((await session.scalars(select(DaemonRun).order_by(DaemonRun.id))).all())
    finally:
        await engine.dispose()


async def test_sigterm_lets_the_slow_request_finish_and_exits_0(
    database_url: str, tmp_path: Path
) -> None:
    """SIGTERM during a slow request: the request completes, serve() returns 0, state recorded."""
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(_request: web.Request) -> web.Response:
        entered.set()
        await release.wait()
        return web.json_response({"done": True})

    clock = FakeClock(autojump=False)
    task, daemon = await start_serving(
        database_url, tmp_path, clock, [web.get("/slow", slow)], shutdown_timeout=20
    )
    await clock.wait_for_sleepers(2)  # the heartbeat recorded this run; branch reports counted
    async with aiohttp.ClientSession() as http:
        request = asyncio.create_task(http.get(f"{daemon.urls[0]}/slow"))
        await entered.wait()
        with capture_logs() as logs:
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(daemon.stopping.wait(), 10)
            assert not task.done()
            release.set()
            response = await asyncio.wait_for(request, 10)
            assert response.status == 200
            assert await response.json() == {"done": True}
            assert await asyncio.wait_for(task, 20) == 0
    events = [e["event"] for e in logs]
    assert events.index("daemon_stopping") < events.index("daemon_stopped")
    [run] = await runs_in(database_url)
    assert run.ended_cleanly is True
    assert run.stopped_at is not None


async def test_crashing_background_task_is_restarted_and_visible(
    database_url: str, tmp_path: Path
) -> None:
    """A background task that raises is logged, restarted after its backoff, and counted."""
    clock = FakeClock(autojump=False)
    task, daemon = await start_serving(database_url, tmp_path, clock)
    await clock.wait_for_sleepers(2)  # heartbeat and branch reports
    runs = 0

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise RuntimeError("device link lost")
        await asyncio.Event().wait()

    with capture_logs() as logs:
        daemon.supervisor.spawn("flaky", flaky)
        await clock.wait_for_sleepers(3)  # heartbeat, branch reports, flaky's backoff
        assert runs == 1
        await clock.advance(daemon.config.supervisor.backoff_initial)
    assert runs == 2
    crash = next(e for e in logs if e["event"] == "task_crashed")
    assert crash["task"] == "flaky"
    assert crash["exc_info"]

    async with aiohttp.ClientSession() as http:
        ready = await (await http.get(f"{daemon.urls[0]}/readyz")).json()
        metrics = await (await http.get(f"{daemon.urls[0]}/metrics")).text()
    assert ready["checks"]["tasks"]["flaky"] == {
        "running": True,
        "restarts": 1,
        "last_error": "RuntimeError: device link lost",
    }
    assert 'branchd_task_restarts_total{task="flaky"} 1.0' in metrics
    os.kill(os.getpid(), signal.SIGINT)
    assert await asyncio.wait_for(task, 20) == 0


async def test_unclean_previous_run_is_flagged(database_url: str, tmp_path: Path) -> None:
    """A run left without a stop record (SIGKILL, power cut) is flagged at the next start."""
    engine = create_engine(database_url)
    await upgrade(engine)
    crashed_clock = FakeClock()
    async with session_factory(engine).begin() as session:
        session.add(
            DaemonRun(
                branch_id="T-652300-01", version="0", hostname="h", pid=1,
                started_at=crashed_clock.now(), heartbeat_at=crashed_clock.now(),
            )
        )  # fmt: skip
    await engine.dispose()

    clock = FakeClock(autojump=False)
    with capture_logs() as logs:
        task, _daemon = await start_serving(database_url, tmp_path, clock)
        await clock.wait_for_sleepers(2)
    warning = next(e for e in logs if e["event"] == "previous_run_ended_uncleanly")
    assert warning["run_id"] == 1
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(task, 20) == 0
    old, new = await runs_in(database_url)
    assert old.ended_cleanly is False
    assert old.stopped_at == old.heartbeat_at
    assert new.ended_cleanly is True


async def test_start_failure_leaves_nothing_running(database_url: str, tmp_path: Path) -> None:
    """A port already taken fails the start cleanly: error raised, engine closed, no task left."""
    blocker = await asyncio.start_server(lambda _r, _w: None, "127.0.0.1", 0)
    port = blocker.sockets[0].getsockname()[1]
    try:
        with pytest.raises(OSError, match="address already in use"):
            await start_serving(database_url, tmp_path, FakeClock(autojump=False), port=port)
    finally:
        blocker.close()
        await blocker.wait_closed()
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not [t for t in others if not t.done()]


async def test_data_directory_and_database_files_are_private(tmp_path: Path) -> None:
    """The data directory is 0700 and the SQLite database, its WAL and the key store 0600."""
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    url = f"sqlite+aiosqlite:///{data / 'branchd.db'}"
    (data / "branchd.db").touch(mode=0o644)  # made before, by someone else's umask
    (data / "branchd.db").chmod(0o644)
    config = parse_config(
        {
            "data_dir": str(data),
            "branch": {"id": "T-652300-01", "region": "652300"},
            "server": {"host": "127.0.0.1", "port": 0},
            "database": {"url": url},
            "keystore": {"master_key": {"file": str(master_key_file(tmp_path))}},
        },
        environ={},
    )
    daemon = Daemon(config, clock=FakeClock(autojump=False), rng=random.Random(3))
    await daemon.start(migrate=True)
    try:
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        for name in ("branchd.db", "branchd.db-wal", "keystore.bin"):
            assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    finally:
        await daemon.stop()
