"""The simulators' pseudo-terminals: opening them, stable links, writing without blocking.

The simulators (printer, PIN pad) keep the master file descriptor non-blocking and
may replace it at any moment (a dropped and restored link), so every chunk asks
for the current one.
"""

from __future__ import annotations

import asyncio
import os
import pty
import tty
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["close_pty", "open_pty", "point_link", "write_to_pty"]


def open_pty() -> tuple[int, int, str]:
    """A raw pty pair: the non-blocking master, the slave (kept open), the slave's path."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    return master, slave, os.ttyname(slave)


def close_pty(master: int | None, slave: int | None, link: str | None) -> bool:
    """Stop reading ``master`` and close both sides; remove the stable ``link``.

    A closed pty's number is reused by the next pty anyone opens, so the link
    must not outlive it. Returns whether a master was open.
    """
    if master is not None:
        asyncio.get_running_loop().remove_reader(master)
        os.close(master)
    if slave is not None:
        os.close(slave)
    if link:
        Path(link).unlink(missing_ok=True)
    return master is not None


def point_link(link: Path, target: str) -> None:
    """Make ``link`` point at ``target`` atomically (a rename over the old link)."""
    tmp = link.with_name(link.name + ".tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    tmp.replace(link)


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
