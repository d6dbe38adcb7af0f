"""Alembic environment: migrations run on the connection the daemon hands over.

The daemon (``branchd db upgrade``, ``branchd demo``) passes a synchronous
connection in ``config.attributes["connection"]``. For developers running the
``alembic`` tool by hand (``alembic revision --autogenerate``), a URL in
``sqlalchemy.url`` is used instead.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.tables import METADATA

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

target_metadata = METADATA


def run_on(connection: Connection) -> None:
    """Configure the migration context on ``connection`` and run the migrations."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_from_url(url: str) -> None:
    """Open our own engine when started by the ``alembic`` command line."""
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(run_on)
    await engine.dispose()


given = context.config.attributes.get("connection")
if given is not None:
    run_on(given)
else:
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set sqlalchemy.url, or run migrations with `branchd db upgrade`")
    asyncio.run(run_from_url(url))
