"""Application status by receipt number, answered from memory while nothing changed.

The status query by receipt number is the API's hottest read (tellers, kiosks
and the citizen's phone ask again and again while a card is made). The daemon
is the only writer of its database: the API, the production and batch
services all write through its one engine; of the command-line tools only
``branchd db upgrade`` touches those tables, and the daemon is restarted after
an upgrade. So the engine itself can say when an answer may have changed:

* every statement the engine runs that writes a table the answer is read from
  (``applications``, ``persons``, ``cards``) moves a generation counter when it runs, and
  again when its connection goes back to the pool, that is after its commit or
  rollback;
* an answer is cached with the generation that was current *before* it was
  read, and used only while that generation is still current.

A read that overlaps a write in any order is therefore never served later: the
write moves the generation after the read began (at the latest when its
connection is returned, after the commit), so the answer read under the old
generation is dropped. Any write to those tables, of any row, empties the whole
cache logically; at a branch's write rate (a few per minute) against its read
rate that costs nothing.

Only complete answers are cached (not "not found"), at most ``size`` of them,
least recently used first out. The ``overdue`` flag depends on the day, so an
answer is also tied to the business day it was rendered on.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web
from sqlalchemy import event

if TYPE_CHECKING:
    from datetime import date

    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncEngine
    from sqlalchemy.pool import ConnectionPoolEntry

__all__ = ["STATUS_CACHE", "StatusCache"]

#: Tables an application's status answer is read from.
WATCHED: Final = ("applications", "persons", "cards")
_READS: Final = ("SELECT", "PRAGMA", "SAVEPOINT", "RELEASE", "BEGIN", "SHOW", "SET ")
_DIRTY: Final = "branchd_status_cache_dirty"


@dataclass(frozen=True, slots=True)
class _Entry:
    generation: int
    day: date
    body: bytes


class StatusCache:
    """Rendered status answers by receipt number, invalidated by the engine's own writes."""

    def __init__(self, engine: AsyncEngine, *, size: int = 4096) -> None:
        """Watch ``engine``'s statements; keep at most ``size`` answers."""
        self._size = size
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self.generation = 0
        self.hits = 0
        self.misses = 0
        sync = engine.sync_engine
        event.listen(sync, "after_cursor_execute", self._after_execute)
        event.listen(sync, "checkin", self._checkin)

    def get(self, receipt: str, day: date) -> bytes | None:
        """The answer for ``receipt`` on ``day`` if nothing was written since it was read."""
        entry = self._entries.get(receipt)
        if entry is None or entry.generation != self.generation or entry.day != day:
            self.misses += 1
            return None
        self._entries.move_to_end(receipt)
        self.hits += 1
        return entry.body

    def put(self, receipt: str, generation: int, day: date, body: bytes) -> None:
        """Keep ``body``, read under ``generation`` (taken before the read began)."""
        if generation != self.generation:
            return  # something was written meanwhile: the answer may be old already
        self._entries[receipt] = _Entry(generation, day, body)
        self._entries.move_to_end(receipt)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        """How many answers are kept (current or not)."""
        return len(self._entries)

    def _after_execute(
        self,
        conn: Connection,
        _cursor: Any,  # noqa: ANN401
        statement: str,
        _parameters: Any,  # noqa: ANN401
        _context: Any,  # noqa: ANN401
        _executemany: bool,  # noqa: FBT001
    ) -> None:
        if statement.lstrip()[:9].upper().startswith(_READS):
            return
        if any(table in statement for table in WATCHED):
            self.generation += 1
            conn.info[_DIRTY] = True  # the connection record's info: seen again at check-in

    def _checkin(self, _dbapi_connection: Any, record: ConnectionPoolEntry) -> None:  # noqa: ANN401
        if record.info.pop(_DIRTY, False):
            self.generation += 1  # committed or rolled back: readers from now on see it


#: The application's cache (made when the API routes are mounted).
STATUS_CACHE: Final = web.AppKey("status_cache", StatusCache)
