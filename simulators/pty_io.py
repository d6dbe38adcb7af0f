"""Writing to the master side of a simulator's pseudo-terminal, without blocking the loop.

The simulators (printer, PIN pad) keep the master file descriptor non-blocking and
may replace it at any moment (a dropped and restored link), so every chunk asks
for the current one.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["write_to_pty"]


async def write_to_pty(master: Callable[[], int | None], data: bytes) -> None:
    """Write all of ``data`` to ``master()``; give up quietly when the link is gone."""
    view = memoryview(data)
    while view:
        fd = master()
        if fd is None:
            return
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            await _writable(fd)
            continue
        except OSError:
            return
        view = view[written:]


async def _writable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    loop.add_writer(fd, ready.set_result, None)
    try:
        await ready
    finally:
        loop.remove_writer(fd)
