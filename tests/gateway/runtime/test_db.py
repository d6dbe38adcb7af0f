from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.runtime.db import create_engine, session_factory
from gateway.runtime.migrate import alembic_config, current_revision, head_revision, upgrade
from gateway.runtime.rows import DaemonRun

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on an empty database of the backend under test."""
    engine = create_engine(database_url, busy_timeout_ms=3000)
    yield engine
    await engine.dispose()


async def test_upgrade_creates_the_schema_and_reaches_head(engine: AsyncEngine) -> None:
    """Migrations take an empty database to this build's head revision."""
    assert await current_revision(engine) is None
    await upgrade(engine)
    assert await current_revision(engine) == head_revision()
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
    assert {"alembic_version", "daemon_runs"} <= set(tables)


async def test_upgrade_twice_is_harmless(engine: AsyncEngine) -> None:
    """Running the upgrade on a current database changes nothing."""
    await upgrade(engine)
    await upgrade(engine)
    assert await current_revision(engine) == head_revision()


async def test_downgrade_to_base_and_back(engine: AsyncEngine) -> None:
    """Every migration can be undone and redone."""
    await upgrade(engine)
    await upgrade_to(engine, "base")
    assert await current_revision(engine) is None
    await upgrade(engine)
    assert await current_revision(engine) == head_revision()


async def upgrade_to(engine: AsyncEngine, revision: str) -> None:
    """Downgrade through Alembic on the async engine."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), revision))


async def test_timestamps_come_back_in_utc(engine: AsyncEngine) -> None:
    """Aware datetimes in any zone are stored and returned as UTC on every backend."""
    await upgrade(engine)
    beijing = timezone(timedelta(hours=8))
    started = datetime(2026, 11, 23, 17, 30, tzinfo=beijing)
    sessions = session_factory(engine)
    async with sessions.begin() as session:
        session.add(
            DaemonRun(
                branch_id="B1", version="t", hostname="h", pid=1,
                started_at=started, heartbeat_at=started,
            )
        )  # fmt: skip
    async with sessions() as session:
        run = (await session.scalars(select(DaemonRun))).one()
    assert run.started_at == started
    assert run.started_at.tzinfo == UTC
    assert run.started_at.hour == 9


async def test_naive_datetimes_refused(engine: AsyncEngine) -> None:
    """A naive datetime is a bug; it is refused instead of being stored ambiguously."""
    await upgrade(engine)
    naive = datetime(2026, 11, 23, 9, 0)  # noqa: DTZ001 - the point of the test
    async with session_factory(engine)() as session:
        session.add(
            DaemonRun(branch_id="B1", version="t", hostname="h", pid=1,
                      started_at=naive, heartbeat_at=naive)
        )  # fmt: skip
        with pytest.raises(Exception, match="naive datetime"):
            await session.flush()


async def test_sqlite_pragmas(tmp_path: Path) -> None:
    """SQLite connections use WAL, enforce foreign keys and wait on locks."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", busy_timeout_ms=3000)
    try:
        async with engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
            fks = (await conn.execute(text("PRAGMA foreign_keys"))).scalar()
            busy = (await conn.execute(text("PRAGMA busy_timeout"))).scalar()
    finally:
        await engine.dispose()
    assert mode == "wal"
    assert fks == 1
    assert busy == 3000


async def test_migrations_match_the_models(engine: AsyncEngine) -> None:
    """After upgrading, Alembic finds no difference between the schema and the models."""
    from alembic.autogenerate import compare_metadata  # noqa: PLC0415
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415

    import gateway.issuance.journal  # noqa: PLC0415 - registers the production tables
    import gateway.tables  # noqa: F401, PLC0415 - every table on the metadata
    from gateway.runtime.rows import Base  # noqa: PLC0415

    await upgrade(engine)

    def diff(connection: object) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})  # type: ignore[arg-type]
        return list(compare_metadata(context, Base.metadata))

    async with engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == []
