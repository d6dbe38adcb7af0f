"""Engines for SQLite (the default) and PostgreSQL (production), configured the same way.

SQLite gets, on every new connection: write-ahead logging (readers never block
the writer), foreign keys enforced, a busy timeout instead of an immediate
``database is locked``, and ``synchronous=FULL``: every commit is on the disk when
it returns, so a power cut loses nothing a teller was told was done (``NORMAL``,
consistent but losing the last commits on power loss, is a configuration
choice). PostgreSQL gets a bounded pool and a connect timeout.

Write transactions hold what they read
--------------------------------------
A state change reads the row and writes it in one transaction that nobody else
can change underneath it:

* ``sessions.begin()`` is a **write transaction**. On SQLite it starts with
  ``BEGIN IMMEDIATE``: it takes the database's one write lock before its first
  read, so two of them run one after the other and the second reads what the
  first committed (Python's sqlite3 would otherwise begin only at the first
  INSERT or UPDATE, after the reads). On PostgreSQL the code reads the rows it
  changes with ``SELECT ... FOR UPDATE`` (``with_for_update()``, which SQLite's
  compiler leaves out), and a per-holder lock row serialises a holder's
  operations (see ``gateway/operations/service.py``).
* ``sessions()`` without ``begin()`` reads: on SQLite it takes no write lock and
  never waits for a writer (WAL).
* The database forbids the duplicate as well (unique and partial unique
  indexes, migration ``0009``), so a path that forgets to lock fails with an
  integrity error instead of storing a second effect.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.orm import Session, SessionTransaction, SessionTransactionOrigin

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import DeclarativeBase
    from sqlalchemy.pool import ConnectionPoolEntry

__all__ = ["create_engine", "insert_or_ignore", "is_sqlite", "private_file", "session_factory"]


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
            private_file(Path(parsed.database))
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


def private_file(path: Path) -> None:
    """Make ``path`` (created empty when missing) readable by its owner only, 0600.

    Its directory is created 0700 when missing. SQLite gives the ``-wal`` and
    ``-shm`` files the database file's permissions, so they are private too; a
    database made before, with wider permissions, is narrowed.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        if os.fstat(descriptor).st_mode & 0o077:
            os.fchmod(descriptor, 0o600)
    finally:
        os.close(descriptor)


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


class _BranchSession(Session):
    """A session whose explicit ``begin()`` is a write transaction on SQLite."""


@event.listens_for(_BranchSession, "after_begin")
def _begin_immediate(
    _session: Session, transaction: SessionTransaction, connection: Connection
) -> None:
    """Take SQLite's write lock before the first read of a ``begin()`` transaction.

    Python's sqlite3 (in its default, legacy transaction mode) sends no BEGIN
    of its own until the first INSERT/UPDATE/DELETE, so nothing has begun yet
    when this runs; commit and rollback end the transaction as usual.
    """
    if transaction.origin is SessionTransactionOrigin.BEGIN and connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for one unit of work each; objects stay usable after commit.

    ``factory.begin()`` (or ``session.begin()`` on a fresh session) is a write
    transaction, ``factory()`` alone a read: see the module's docstring.
    """
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=_BranchSession)


async def insert_or_ignore(
    session: AsyncSession,
    model: type[DeclarativeBase],
    values: Mapping[str, object],
    *,
    key: str | tuple[str, ...],
) -> bool:
    """Insert one row unless a row with the same unique ``key`` exists; True if inserted.

    ``INSERT ... ON CONFLICT (key) DO NOTHING`` on both backends: a concurrent
    insert of the same key waits for the other transaction and then does
    nothing, instead of failing the request with an integrity error; the stored
    row keeps its fields.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    columns = [key] if isinstance(key, str) else list(key)
    statement = insert(model).values(dict(values)).on_conflict_do_nothing(index_elements=columns)
    result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0))
