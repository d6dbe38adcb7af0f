"""The status answer cache: kept while nothing is written, dropped by any write it may miss.

Runs over a real SQLite file through the async engine, as the daemon does.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import text

from gateway.operations.status_cache import StatusCache
from gateway.runtime.db import create_engine

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from sqlalchemy.ext.asyncio import AsyncEngine

DAY = date(2026, 11, 23)
RECEIPT = "SS652300202611230000017"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A SQLite engine with the two watched tables and one other."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'cache.db'}")
    async with engine.begin() as conn:
        for table in ("persons", "applications", "audit_log"):
            await conn.execute(text(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, v TEXT)"))
    yield engine
    await engine.dispose()


async def test_kept_until_a_watched_table_is_written(engine: AsyncEngine) -> None:
    """An answer is served until a write to applications or persons commits."""
    cache = StatusCache(engine)
    cache.put(RECEIPT, cache.generation, DAY, b"answer")
    assert cache.get(RECEIPT, DAY) == b"answer"
    async with engine.connect() as conn:  # reads change nothing
        await conn.execute(text("SELECT v FROM applications WHERE id = 1"))
    async with engine.begin() as conn:  # nor do writes to other tables
        await conn.execute(text("INSERT INTO audit_log (v) VALUES ('x')"))
    assert cache.get(RECEIPT, DAY) == b"answer"
    for table in ("applications", "persons"):
        cache.put(RECEIPT, cache.generation, DAY, b"answer")
        async with engine.begin() as conn:
            await conn.execute(text(f"UPDATE {table} SET v = 'y'"))  # noqa: S608 - our names
        assert cache.get(RECEIPT, DAY) is None


async def test_a_read_overlapping_a_write_is_not_kept(engine: AsyncEngine) -> None:
    """An answer read under a generation that moved on meanwhile is not kept."""
    cache = StatusCache(engine)
    before = cache.generation  # the reader starts
    async with engine.begin() as conn:  # a writer commits while the reader waits
        await conn.execute(text("INSERT INTO applications (v) VALUES ('accepted')"))
    cache.put(RECEIPT, before, DAY, b"old")
    assert cache.get(RECEIPT, DAY) is None


async def test_a_read_between_write_and_commit_is_dropped_at_commit(engine: AsyncEngine) -> None:
    """A reader starting after the write ran but before it committed saw the old row."""
    cache = StatusCache(engine)
    async with engine.connect() as writer:
        await writer.execute(text("INSERT INTO applications (v) VALUES ('completed')"))
        during = cache.generation  # a reader starts now and reads the uncommitted-over row
        cache.put(RECEIPT, during, DAY, b"old")
        assert cache.get(RECEIPT, DAY) == b"old"  # still current: nothing committed yet
        await writer.commit()
    assert cache.get(RECEIPT, DAY) is None  # the writer's connection went back: dropped


async def test_rolled_back_write_also_moves_on(engine: AsyncEngine) -> None:
    """A rolled-back write moves the generation too (harmless: the next read refills)."""
    cache = StatusCache(engine)
    start = cache.generation
    async with engine.connect() as conn:
        await conn.execute(text("UPDATE applications SET v = 'z'"))
        await conn.rollback()
    assert cache.generation == start + 2


async def test_answers_are_tied_to_their_day_and_bounded(engine: AsyncEngine) -> None:
    """Another day misses (overdue may differ); the least recently used go first."""
    cache = StatusCache(engine, size=2)
    cache.put("a", cache.generation, DAY, b"a")
    assert cache.get("a", date(2026, 11, 24)) is None
    cache.put("b", cache.generation, DAY, b"b")
    assert cache.get("a", DAY) == b"a"  # "a" is now the most recently used
    cache.put("c", cache.generation, DAY, b"c")
    assert len(cache) == 2
    assert cache.get("b", DAY) is None
    assert cache.get("a", DAY) == b"a"
    assert cache.get("c", DAY) == b"c"
    assert (cache.hits, cache.misses) == (3, 2)
