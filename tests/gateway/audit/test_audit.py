import json
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit.log import AuditLog
from gateway.runtime.db import create_engine, session_factory
from gateway.runtime.migrate import upgrade
from security.audit import AuditFault, AuditProblem
from security.suites import GM, INTL, CryptoSuite
from tests.fakes import FakeClock

pytestmark = pytest.mark.integration

ID_NUMBER = "11010519491231002X"


class SuiteSigner:
    """Signs checkpoints with a signing key of a crypto suite (a key store stand-in)."""

    def __init__(self, suite: CryptoSuite) -> None:
        """Make a fresh signing key."""
        self.suite = suite
        self.key = suite.generate_signing_key()

    def sign(self, data: bytes) -> tuple[str, int, bytes]:
        """Sign with version 1 of the branch key."""
        return "branch-signing", 1, self.suite.sign(self.key, data)

    def check(self, key_id: str, key_version: int, data: bytes, signature: bytes) -> bool:
        """Check against the one key this signer has."""
        return (key_id, key_version) == ("branch-signing", 1) and self.suite.verify(
            self.key.public_key, signature, data
        )


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated database of the backend under test."""
    engine = create_engine(database_url)
    await upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture(params=[GM, INTL], ids=["gm", "intl"])
def suite(request: pytest.FixtureRequest) -> CryptoSuite:
    """Each crypto suite (SM3 and SHA-256 chains)."""
    chosen: CryptoSuite = request.param
    return chosen


async def filled(engine: AsyncEngine, suite: CryptoSuite, clock: FakeClock) -> AuditLog:
    """An audit log with five entries, one per hour."""
    log = AuditLog(session_factory(engine), suite, clock)
    for n in range(1, 6):
        await log.append("teller-01", "pin.reset", f"card:A{n}", {"holder": ID_NUMBER, "n": n})
        await clock.sleep(3600)
    return log


async def tamper(engine: AsyncEngine, backend: str, statement: str) -> None:
    """Change the audit table behind the daemon's back (triggers disabled, as an attacker would)."""
    async with engine.begin() as conn:
        if backend == "postgresql":
            await conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        else:
            await conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
            await conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
        await conn.execute(text(statement))


async def test_intact_chain_verifies(engine: AsyncEngine, suite: CryptoSuite) -> None:
    """Five appended entries verify; details were redacted before hashing and storing."""
    log = await filled(engine, suite, FakeClock())
    report = await log.verify(None)
    assert report.entries == 5
    assert report.problem is None
    async with engine.connect() as conn:
        stored = (await conn.execute(text("SELECT details FROM audit_log WHERE seq = 1"))).scalar()
    assert json.loads(str(stored))["holder"] == "110105********002X"


async def test_database_refuses_update_and_delete(engine: AsyncEngine) -> None:
    """The audit table is append-only at the database level."""
    await filled(engine, INTL, FakeClock())
    for statement in ("UPDATE audit_log SET actor = 'x' WHERE seq = 2", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(text(statement))


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (
            "UPDATE audit_log SET actor = 'mallory' WHERE seq = 3",
            AuditProblem(3, AuditFault.EDITED),
        ),
        ("DELETE FROM audit_log WHERE seq = 2", AuditProblem(2, AuditFault.MISSING)),
        # Move entry 4 to the end: the sequence has a hole where it was.
        ("UPDATE audit_log SET seq = 9 WHERE seq = 4", AuditProblem(4, AuditFault.MISSING)),
        # Swap the contents of entries 2 and 3 (reordering), keeping the numbers.
        (
            (
                "UPDATE audit_log SET subject = CASE seq WHEN 2 THEN 'card:A3' ELSE 'card:A2' END "
                "WHERE seq IN (2, 3)"
            ),
            AuditProblem(2, AuditFault.EDITED),
        ),
    ],
    ids=["edited", "deleted", "moved", "reordered"],
)
async def test_tampering_is_found_and_named(
    engine: AsyncEngine, db_backend: str, statement: str, expected: AuditProblem
) -> None:
    """Editing, deleting or reordering rows makes verification fail at the first bad entry."""
    log = await filled(engine, GM, FakeClock())
    await tamper(engine, db_backend, statement)
    report = await log.verify(None)
    assert report.problem == expected
    assert report.problem.describe().startswith(f"audit entry #{expected.seq}: ")


async def test_inserted_entry_breaks_the_link(engine: AsyncEngine, db_backend: str) -> None:
    """An entry inserted with a self-consistent hash but a forged link is found."""
    clock = FakeClock()
    log = await filled(engine, GM, clock)
    # Copy entry 5 as entry 6: its own hash is recomputable, but it does not follow 5.
    forged = await log.append("x", "y", "z")
    await tamper(engine, db_backend, f"DELETE FROM audit_log WHERE seq = {forged.entry.seq}")  # noqa: S608
    async with engine.begin() as conn:
        row = (await conn.execute(text("SELECT * FROM audit_log WHERE seq = 5"))).mappings().one()
        await conn.execute(
            text(
                "INSERT INTO audit_log (seq, at, actor, action, subject, details, prev_hash, hash) "
                "VALUES (6, :at, :actor, :action, :subject, :details, :prev_hash, :hash)"
            ),
            dict(row),
        )
    report = await log.verify(None)
    assert report.problem is not None
    assert report.problem.seq == 6


async def test_checkpoints_catch_a_rewritten_tail(engine: AsyncEngine, db_backend: str) -> None:
    """Rewriting the chain consistently after a signed day is caught by the checkpoint."""
    clock = FakeClock()
    signer = SuiteSigner(GM)
    log = await filled(engine, GM, clock)
    await clock.sleep(86400)  # the business day is over
    assert len(await log.checkpoint_finished_days(signer)) == 1
    assert await log.checkpoint_finished_days(signer) == []  # once per day
    report = await log.verify(signer)
    assert report.problem is None
    assert report.checkpoints == 1

    # Delete the last entry of the signed day: the chain itself still links.
    await tamper(engine, db_backend, "DELETE FROM audit_log WHERE seq = 5")
    report = await log.verify(signer)
    assert report.problem == AuditProblem(5, AuditFault.CHECKPOINT_MISMATCH)


async def test_forged_checkpoint_signature(engine: AsyncEngine) -> None:
    """A checkpoint whose signature does not verify is reported."""
    clock = FakeClock()
    log = await filled(engine, INTL, clock)
    await clock.sleep(timedelta(days=1).total_seconds())
    await log.checkpoint_finished_days(SuiteSigner(INTL))
    report = await log.verify(SuiteSigner(INTL))  # another key
    assert report.problem is not None
    assert report.problem.fault is AuditFault.CHECKPOINT_SIGNATURE
