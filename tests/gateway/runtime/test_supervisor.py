import asyncio
import random

import pytest
from structlog.testing import capture_logs

from devices.backoff import BackoffPolicy
from gateway.runtime.supervisor import Supervisor
from tests.fakes import FakeClock


def make_supervisor(clock: FakeClock, restarts: list[str] | None = None) -> Supervisor:
    """A supervisor with a 1 s .. 8 s backoff and a seeded random source."""
    return Supervisor(
        clock=clock,
        rng=random.Random(1),
        policy=BackoffPolicy(initial=1.0, maximum=8.0),
        reset_after=60.0,
        on_restart=None if restarts is None else restarts.append,
    )


async def test_crashing_task_is_logged_and_restarted_with_backoff() -> None:
    """Each crash is logged with its traceback and followed by a growing, capped delay."""
    clock = FakeClock(autojump=True)
    restarts: list[str] = []
    supervisor = make_supervisor(clock, restarts)
    runs = 0
    done = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs <= 5:
            raise RuntimeError(f"boom {runs}")
        done.set()

    with capture_logs() as logs:
        supervisor.spawn("flaky", flaky)
        await asyncio.wait_for(done.wait(), 5)
        await supervisor.stop()

    crashes = [e for e in logs if e["event"] == "task_crashed"]
    assert len(crashes) == 5
    assert all(e["exc_info"] for e in crashes)
    assert crashes[0]["task"] == "flaky"
    assert restarts == ["flaky"] * 5
    ceilings = [1.0, 2.0, 4.0, 8.0, 8.0]
    for delay, ceiling in zip(clock.sleeps, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    state = supervisor.tasks["flaky"]
    assert state.restarts == 5
    assert state.finished
    assert state.last_error == "RuntimeError: boom 5"


async def test_backoff_resets_after_a_long_healthy_run() -> None:
    """A task that ran longer than reset_after starts its backoff again from the beginning."""
    clock = FakeClock(autojump=True)
    supervisor = make_supervisor(clock)
    runs = 0
    done = asyncio.Event()

    async def crashes_after_a_while() -> None:
        nonlocal runs
        runs += 1
        if runs == 4:
            await clock.sleep(120)  # a long healthy run
        if runs <= 4:
            raise RuntimeError("boom")
        done.set()

    supervisor.spawn("t", crashes_after_a_while)
    await asyncio.wait_for(done.wait(), 5)
    await supervisor.stop()
    delays = [d for d in clock.sleeps if d != 120]
    assert delays[2] > 2.0  # third crash: ceiling 4
    assert delays[3] <= 1.0  # after the long run: back to ceiling 1


async def test_restart_waits_on_the_clock_not_on_real_time() -> None:
    """With a manual clock the restart happens exactly when time is advanced past the delay."""
    clock = FakeClock(autojump=False)
    supervisor = make_supervisor(clock)
    runs = 0

    async def fails_once_then_waits() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise RuntimeError("first run fails")
        await asyncio.Event().wait()

    supervisor.spawn("t", fails_once_then_waits)
    await clock.wait_for_sleepers(1)
    assert runs == 1
    await clock.advance(clock.sleeps[0] - 0.01)
    assert runs == 1
    await clock.advance(0.02)
    assert runs == 2
    await supervisor.stop()
    assert not supervisor.tasks["t"].running


async def test_task_that_returns_is_finished_not_restarted() -> None:
    """A task that returns normally is logged as finished and not started again."""
    clock = FakeClock()
    supervisor = make_supervisor(clock)
    calls = 0

    async def once() -> None:
        nonlocal calls
        calls += 1

    with capture_logs() as logs:
        supervisor.spawn("once", once)
        for _ in range(5):
            await asyncio.sleep(0)
    assert calls == 1
    assert supervisor.tasks["once"].finished
    assert any(e["event"] == "task_finished" for e in logs)


async def test_stop_cancels_and_awaits_every_task() -> None:
    """stop() leaves no task running, including ones blocked forever."""
    supervisor = make_supervisor(FakeClock())
    cancelled: list[str] = []

    async def forever(name: str) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(name)
            raise

    supervisor.spawn("a", lambda: forever("a"))
    supervisor.spawn("b", lambda: forever("b"))
    await asyncio.sleep(0)
    await supervisor.stop()
    assert sorted(cancelled) == ["a", "b"]
    assert all(s.task is not None and s.task.done() for s in supervisor.tasks.values())


async def test_duplicate_names_refused() -> None:
    """Two running tasks cannot share a name (their states would be confused)."""
    supervisor = make_supervisor(FakeClock())

    async def forever() -> None:
        await asyncio.Event().wait()

    supervisor.spawn("a", forever)
    with pytest.raises(ValueError, match="already supervised"):
        supervisor.spawn("a", forever)
    await supervisor.stop()
