"""``branchd audit verify`` against the monitor's copy: each kind of tampering is named.

The branch's log is written with a fake clock over the last five hours, its
hourly checkpoints are signed with the branch key store and handed to a real
monitor (its store and HTTP API, served on a loopback port); then the database
is changed behind the daemon's back, as an attacker with the database (and even
the key) would, and the real command runs as a subprocess.
"""

# ruff: noqa: S608 - the tampering statements are the test's own SQL, numbers only

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from aiohttp import web
from sqlalchemy import text

from gateway.assembly import open_keystore
from gateway.audit.anchors import AnchorService
from gateway.audit.log import AuditLog
from gateway.cli.audit import audit_public_key
from gateway.config import load_config
from gateway.monitor.http import create_monitor_app
from gateway.monitor.service import Monitor
from gateway.monitor.settings import MonitorSettings
from gateway.runtime.db import create_engine, session_factory
from gateway.runtime.keys import KeyStoreSigner
from gateway.runtime.migrate import upgrade
from security.audit import AuditEntry, entry_hash
from security.suites import GM
from tests.conftest import free_port
from tests.fakes import FakeClock
from tests.gateway.builders import config_toml, master_key_file
from tests.gateway.test_cli import branchd

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = pytest.mark.integration

BRANCH = "T-652300-01"
PROVINCE = "650000"
HOURS = 5


class MonitorInbox:
    """Hands published checkpoints to the monitor as its MQTT intake would."""

    def __init__(self, monitor: Monitor) -> None:
        """Deliver to ``monitor``."""
        self.monitor = monitor

    async def publish(self, topic: str, payload: bytes, retain: bool) -> None:  # noqa: FBT001
        """Take one message (QoS 1 acknowledged once it is kept)."""
        assert not retain
        await self.monitor.take_checkpoint(topic, payload)


async def tamper(engine: AsyncEngine, backend: str, *statements: str) -> None:
    """Run ``statements`` with the audit tables' append-only triggers out of the way."""
    tables = ("audit_log", "audit_checkpoints", "audit_anchors")
    async with engine.begin() as conn:
        for table in tables:
            if backend == "postgresql":
                await conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
            else:
                for operation in ("update", "delete"):
                    await conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_{operation}"))
        for statement in statements:
            await conn.execute(text(statement))


async def rechain(engine: AsyncEngine, backend: str, seq: int) -> None:
    """Edit entry ``seq`` and recompute the chain from it on, as the daemon would have."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT seq, at, actor, action, subject, prev_hash "
                    "FROM audit_log WHERE seq >= :seq ORDER BY seq"
                ),
                {"seq": seq},
            )
        ).all()
    statements = []
    prev = bytes.fromhex(rows[0].prev_hash)
    for row in rows:
        at = row.at if isinstance(row.at, datetime) else datetime.fromisoformat(str(row.at))
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
        subject = "card:FORGED" if row.seq == seq else row.subject
        entry = AuditEntry(row.seq, at, row.actor, row.action, subject, {}, prev)
        digest = entry_hash(GM, entry)
        statements.append(
            f"UPDATE audit_log SET subject = '{subject}', prev_hash = '{prev.hex()}', "
            f"hash = '{digest.hex()}' WHERE seq = {row.seq}"
        )
        prev = digest
    await tamper(engine, backend, *statements)


class Branch:
    """A branch database with hourly anchors, and the monitor that holds their copy."""

    def __init__(self, path: Path, engine: AsyncEngine, log: AuditLog, url: str) -> None:
        """Keep the parts."""
        self.path, self.engine, self.log, self.url = path, engine, log, url
        self.anchors: list[int] = []


@pytest.fixture
async def branch(database_url: str, tmp_path: Path) -> AsyncIterator[Branch]:
    """Five hours of entries, every finished hour signed and kept by a served monitor."""
    path = tmp_path / "branchd.toml"
    path.write_text(
        config_toml(database_url, tmp_path, free_port(), master_key_file(tmp_path))
        + "[audit]\ncheckpoint_period = 3600\n",
        "utf-8",
    )
    config = load_config(path)
    store = open_keystore(config, create=True)
    assert store is not None
    signer = KeyStoreSigner(store, "branch-signing", create=True)
    assert audit_public_key(config) == 0  # printed; the monitor's copy is written below
    key = store.public_key("branch-signing")
    (tmp_path / "branch.der").write_bytes(key)

    real_now = datetime.now(UTC)
    clock = FakeClock(wall=real_now - timedelta(hours=HOURS))
    monitor_engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}")
    settings = MonitorSettings(
        province=PROVINCE, data_dir=tmp_path, audit_keys={BRANCH: tmp_path / "branch.der"}
    )
    monitor = Monitor(settings, engine=monitor_engine, clock=clock, rng=random.Random(1))
    await monitor.store.create()
    runner = web.AppRunner(create_monitor_app(monitor))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()

    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        log = AuditLog(session_factory(engine), GM, clock)
        service = AnchorService(
            log, signer, branch=BRANCH, period=3600, clock=clock, rng=random.Random(1),
            publisher=MonitorInbox(monitor), province=PROVINCE,
        )  # fmt: skip
        for hour in range(HOURS):
            for n in range(2):
                await log.append("teller-01", "card.status", f"card:{hour}-{n}")
            await clock.sleep(3600)
            made = await service.checkpoint()
            assert await service.send_pending() == len(made)
        result = Branch(path, engine, log, f"http://127.0.0.1:{port}")
        result.anchors = [anchor.end for anchor in await log.anchors()]
        assert len(result.anchors) >= HOURS
        assert await log.pending_anchors() == []
        yield result
    finally:
        await engine.dispose()
        await runner.cleanup()
        await monitor_engine.dispose()


async def verify(branch: Branch, *extra: str) -> tuple[int, str]:
    """Run ``branchd audit verify`` against the branch (and its monitor unless told)."""
    status, out, err = await branchd("audit", "verify", "--config", str(branch.path), *extra)
    assert "Traceback" not in err, err
    return status, out


async def test_intact_log_agrees_with_the_monitor(branch: Branch) -> None:
    """An untouched log verifies, every finished hour checkpointed, the monitor's copy equal."""
    status, out = await verify(branch, "--monitor", branch.url)
    assert status == 0, out
    assert "audit log intact: 10 entries" in out
    assert f"{len(branch.anchors)} period checkpoints" in out
    assert f"compared with the monitor's {len(branch.anchors)} checkpoints" in out


async def test_rechained_edit_is_named(branch: Branch, db_backend: str) -> None:
    """An entry rewritten with a recomputed chain no longer matches the signed hashes."""
    await rechain(branch.engine, db_backend, 3)
    status, out = await verify(branch)
    assert status == 1
    assert "audit log NOT intact: audit entry #" in out
    assert ": rechained (the branch's checkpoint" in out


async def test_rechained_and_resigned_is_caught_by_the_monitor(
    branch: Branch, db_backend: str
) -> None:
    """Re-chained and re-signed with the branch key, the log only disagrees with the monitor."""
    await rechain(branch.engine, db_backend, 3)
    await tamper(branch.engine, db_backend, "DELETE FROM audit_anchors")
    store = open_keystore(load_config(branch.path))
    assert store is not None
    signer = KeyStoreSigner(store, "branch-signing")
    # The attacker re-signs every period of the rewritten chain (same clock: same periods).
    assert len(await branch.log.checkpoint_periods(signer, BRANCH, 3600)) == len(branch.anchors)
    status, out = await verify(branch)
    assert status == 0, out  # locally consistent: the box alone cannot tell
    status, out = await verify(branch, "--monitor", branch.url)
    assert status == 1
    assert ": rechained (the monitor's checkpoint" in out


async def test_truncated_tail_is_named(branch: Branch, db_backend: str) -> None:
    """Entries after a checkpoint deleted, with the later checkpoints: the monitor has them."""
    keep = branch.anchors[1]
    async with branch.engine.connect() as conn:
        last = (
            await conn.execute(
                text(f"SELECT last_seq FROM audit_anchors WHERE period_end = {keep}")
            )
        ).scalar_one()
    await tamper(
        branch.engine,
        db_backend,
        f"DELETE FROM audit_log WHERE seq > {last}",
        f"DELETE FROM audit_anchors WHERE period_end > {keep}",
    )
    status, out = await verify(branch, "--monitor", branch.url)
    assert status == 1
    assert f"audit entry #{last + 1}: truncated (the monitor's checkpoint" in out


async def test_wiped_log_is_named(branch: Branch, db_backend: str) -> None:
    """Everything deleted, checkpoints included: intact alone, wiped against the monitor."""
    await tamper(
        branch.engine,
        db_backend,
        "DELETE FROM audit_log",
        "DELETE FROM audit_anchors",
        "DELETE FROM audit_anchors_pending",
        "DELETE FROM audit_checkpoints",
    )
    status, out = await verify(branch)
    assert status == 0, out
    assert "0 entries" in out
    status, out = await verify(branch, "--monitor", branch.url)
    assert status == 1
    assert ": wiped (the monitor holds the checkpoint" in out


async def test_deleted_checkpoint_is_named(branch: Branch, db_backend: str) -> None:
    """A finished hour without its checkpoint is a finding; the monitor says it had one."""
    await tamper(
        branch.engine,
        db_backend,
        f"DELETE FROM audit_anchors WHERE period_end = {branch.anchors[2]}",
    )
    status, out = await verify(branch)
    assert status == 1
    assert ": checkpoint-missing (no checkpoint of the period" in out
    status, out = await verify(branch, "--monitor", branch.url)
    assert status == 1
    assert ": checkpoint-deleted (the monitor holds the checkpoint" in out


async def test_unreachable_monitor_is_said_not_failed(branch: Branch) -> None:
    """An unreachable monitor is reported; it fails the command only with --require-monitor."""
    away = f"http://127.0.0.1:{free_port()}"
    status, out = await verify(branch, "--monitor", away)
    assert status == 0, out
    assert f"monitor NOT reachable at {away}" in out
    status, out = await verify(branch, "--monitor", away, "--require-monitor")
    assert status == 1
    assert "monitor NOT reachable" in out
