"""Engines for SQLite (the default) and PostgreSQL (production), configured the same way.

SQLite gets, on every new connection: write-ahead logging (readers never block
the writer), foreign keys enforced, a busy timeout instead of an immediate
``database is locked``, and ``synchronous=FULL``: every commit is on the disk when
it returns, so a power cut loses nothing a teller was told was done (``NORMAL``,
consistent but losing the last commits on power loss, is a configuration
choice). PostgreSQL gets a bounded pool and a connect timeout.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

if TYPE_CHECKING:
    from sqlalchemy.pool import ConnectionPoolEntry

__all__ = ["create_engine", "is_sqlite", "session_factory"]


def is_sqlite(url: str) -> bool:
    """Tell whether ``url`` names an SQLite database."""
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(
    url: str,
    *,
    busy_timeout_ms: int = 5000,
    pool_size: int = 5,
    connect_timeout: float = 10.0,
    sqlite_synchronous: str = "FULL",
) -> AsyncEngine:
    """Create the async engine for ``url`` with the settings described above."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = _create_async_engine(
            parsed, connect_args={"timeout": busy_timeout_ms / 1000}, pool_pre_ping=False
        )
        event.listen(
            engine.sync_engine, "connect", _sqlite_pragmas(busy_timeout_ms, sqlite_synchronous)
        )
        return engine
    return _create_async_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"timeout": connect_timeout},
    )


def _sqlite_pragmas(busy_timeout_ms: int, synchronous: str) -> Any:  # noqa: ANN401 - an event hook
    if synchronous not in {"FULL", "NORMAL"}:
        raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")

    def on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:  # noqa: ANN401
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
        finally:
            cursor.close()

    return on_connect


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for one unit of work each; objects stay usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
