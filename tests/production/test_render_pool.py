"""The daemon's surface process: same panels as in a thread, and it dies with the daemon."""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from gateway.issuance.render_pool import SurfacePool
from production import CardFace, CardLayout, render_panels
from tests.production.conftest import photo_png

ROOT = Path(__file__).resolve().parents[2]


async def test_the_process_draws_what_a_thread_draws() -> None:
    """Panels drawn in the pool's process are byte for byte those drawn here."""
    face = CardFace(
        name="张三",
        ssn="33010619900101123X",
        card_number="B00000001",
        issue_date=dt.date(2026, 11, 23),
        photo=photo_png(),
    )
    pool = SurfacePool()
    try:
        loop = asyncio.get_running_loop()
        drawn = await loop.run_in_executor(pool, render_panels, face, CardLayout())
    finally:
        pool.shutdown()
    assert drawn == render_panels(face, CardLayout())


async def test_a_dead_process_is_started_again() -> None:
    """Killed, the surface process fails the face it held; the next face gets a new one."""
    face = CardFace("A", "1", "2", dt.date(2026, 1, 1))
    pool = SurfacePool()
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(pool, render_panels, face, CardLayout())
        (first,) = multiprocessing.active_children()
        assert first.pid is not None
        held = loop.run_in_executor(pool, time.sleep, 30)
        os.kill(first.pid, signal.SIGKILL)
        with pytest.raises(BrokenProcessPool):
            await held
        drawn = await loop.run_in_executor(pool, render_panels, face, CardLayout())
        assert drawn == render_panels(face, CardLayout())
        assert [child.pid for child in multiprocessing.active_children()] != [first.pid]
    finally:
        pool.shutdown()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_the_process_dies_when_the_daemon_is_killed() -> None:
    """``kill -9`` of its parent leaves no surface process behind."""
    script = textwrap.dedent(
        """
        import datetime as dt, multiprocessing, sys
        from gateway.issuance.render_pool import SurfacePool
        from production import CardFace, CardLayout, render_panels

        if __name__ == "__main__":
            pool = SurfacePool()
            face = CardFace("A", "1", "2", dt.date(2026, 1, 1))
            pool.submit(render_panels, face, CardLayout()).result()
            print(*(p.pid for p in multiprocessing.active_children()), flush=True)
            sys.stdin.read()
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # the orphaned tracker reports the semaphores it cleans up
        text=True,
    ) as parent:
        assert parent.stdout is not None
        children = [int(pid) for pid in parent.stdout.readline().split()]
        assert children, "the pool started no process"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
    deadline = time.monotonic() + 10  # waits for the kernel's signal, not for a timer
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in children)
