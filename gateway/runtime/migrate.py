"""Run Alembic migrations from inside the daemon, on its own async engine.

``branchd db upgrade`` and ``branchd demo`` call :func:`upgrade`; ``/readyz``
compares :func:`current_revision` with :func:`head_revision`. Alembic runs on
the synchronous side of an async connection (``run_sync``), so it works under a
running event loop, on SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["MIGRATIONS_DIR", "alembic_config", "current_revision", "head_revision", "upgrade"]

#: The Alembic scripts (``gateway/migrations``): the schema of every feature's tables.
MIGRATIONS_DIR = Path(__file__).parent.parent / "migrations"


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    """An Alembic configuration pointing at our migrations, bound to ``connection``."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (the newest by default) in one transaction."""

    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or ``None`` for an empty database."""

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(read)


@cache
def head_revision() -> str | None:
    """The newest revision this build ships (read once from the package)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
