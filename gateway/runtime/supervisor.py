"""A supervisor for the daemon's background tasks.

Each task is a coroutine factory run in a loop: when the coroutine raises, the
crash is logged with its traceback, counted, and the task is started again after
a capped, jittered backoff (:mod:`devices.backoff`) measured on the injected
clock. A task that stayed up for ``reset_after`` seconds starts its backoff
afresh. A task that returns normally is finished and is not restarted. No task is
ever left dead without a log line saying so.

``stop()`` cancels every task and awaits them all, so shutdown leaves nothing
running.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from devices.backoff import BackoffPolicy, backoff_delays

if TYPE_CHECKING:
    import random

    from devices.clock import Clock

__all__ = ["Supervisor", "TaskState"]

log = structlog.get_logger(__name__)

TaskFactory = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class TaskState:
    """What the supervisor knows about one task (shown in ``/readyz``)."""

    name: str
    restarts: int = 0
    running: bool = False
    finished: bool = False
    last_error: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class Supervisor:
    """Runs named background tasks and restarts the ones that crash."""

    def __init__(
        self,
        *,
        clock: Clock,
        rng: random.Random,
        policy: BackoffPolicy | None = None,
        reset_after: float = 60.0,
        on_restart: Callable[[str], None] | None = None,
    ) -> None:
        """Set the clock and random source the restart delays are drawn from."""
        self._clock = clock
        self._rng = rng
        self._policy = policy or BackoffPolicy()
        self._reset_after = reset_after
        self._on_restart = on_restart
        self._tasks: dict[str, TaskState] = {}

    @property
    def tasks(self) -> dict[str, TaskState]:
        """The state of every task started so far, by name."""
        return dict(self._tasks)

    def spawn(self, name: str, factory: TaskFactory) -> None:
        """Start ``factory()`` as the task ``name`` and keep it running."""
        if name in self._tasks and not self._tasks[name].finished:
            raise ValueError(f"a task named {name!r} is already supervised")
        state = TaskState(name=name)
        state.task = asyncio.create_task(self._keep_running(state, factory), name=name)
        self._tasks[name] = state

    async def stop(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 - a bound, not a deadline API
        """Cancel every task and wait for all of them (at most ``timeout`` seconds)."""
        pending = [s.task for s in self._tasks.values() if s.task is not None and not s.task.done()]
        for task in pending:
            task.cancel()
        if not pending:
            return
        _done, still = await asyncio.wait(pending, timeout=timeout)
        for task in still:
            log.error("task_did_not_stop", task=task.get_name(), timeout=timeout)

    async def _keep_running(self, state: TaskState, factory: TaskFactory) -> None:
        delays = backoff_delays(self._policy, self._rng)
        while True:
            started = self._clock.monotonic()
            state.running = True
            try:
                await factory()
            except asyncio.CancelledError:
                state.running = False
                raise
            except Exception as exc:
                state.running = False
                state.restarts += 1
                state.last_error = f"{type(exc).__name__}: {exc}"
                if self._clock.monotonic() - started >= self._reset_after:
                    delays = backoff_delays(self._policy, self._rng)
                delay = next(delays)
                log.exception(
                    "task_crashed",
                    task=state.name,
                    restarts=state.restarts,
                    retry_in=round(delay, 3),
                )
                if self._on_restart is not None:
                    with contextlib.suppress(Exception):
                        self._on_restart(state.name)
                await self._clock.sleep(delay)
                log.info("task_restarting", task=state.name, restarts=state.restarts)
            else:
                state.running = False
                state.finished = True
                log.info("task_finished", task=state.name)
                return
