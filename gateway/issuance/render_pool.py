"""A process that draws card surfaces, so the daemon's event loop keeps the GIL.

Pillow holds the GIL while it draws text, so a surface drawn in a thread
stops the event loop for milliseconds at a time, and with it every station's
next journal commit and chip exchange. :class:`SurfacePool` is a pool of
one process (started on its first card, by ``spawn``: the daemon has threads,
so it does not fork) that :class:`~production.ProductionSettings` takes as
its ``renderer``. A face and its photo go in (tens of kilobytes pickled), two
packed 1-bit panels come out.

The process must not outlive the daemon: a daemon killed with ``kill -9``
cannot stop it, so on Linux it asks the kernel for ``SIGKILL`` when its parent
dies, and it exits at once if the parent is already gone when it starts.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Final, ParamSpec, TypeVar

import structlog

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["SurfacePool"]

log = structlog.get_logger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

_PR_SET_PDEATHSIG: Final = 1


class SurfacePool(Executor):
    """One surface process, started again when it has died.

    A process that died (killed, out of memory) breaks a
    :class:`~concurrent.futures.ProcessPoolExecutor` for good: the faces it
    was drawing fail with ``BrokenProcessPool`` (the controller draws them
    again) and so would every later one. Here the next face starts a new
    process.
    """

    def __init__(self) -> None:
        """No process yet: it starts with the first face."""
        self._pool = _one_process()

    def submit(  # noqa: D102 - Executor.submit
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[T]:
        try:
            return self._pool.submit(fn, *args, **kwargs)
        except BrokenProcessPool:
            log.warning("surface_process_restarted")
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = _one_process()
            return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:  # noqa: D102, FBT001, FBT002 - Executor.shutdown
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def _one_process() -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_die_with_parent,
        initargs=(os.getpid(),),
    )


def _die_with_parent(parent: int) -> None:  # pragma: no cover - runs in the worker process
    """In the worker: be killed when ``parent`` dies; exit now if it already has."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request above took effect
        os._exit(0)
