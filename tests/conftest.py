"""Shared fixtures: database backends (SQLite and a throwaway PostgreSQL), fake clock.

Tests that need a database take ``database_url``; they run once per backend
selected with ``--db`` (default: both). A missing real part (PostgreSQL here;
broker, pcscd, ... later) skips on a developer machine but FAILS when ``CI`` or
``BRANCHD_REQUIRE_PARTS`` is set: in CI a skipped integration test is a missing
install step.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Final, NoReturn

import asyncpg
import pytest

from tests.fakes import FakeClock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

BACKENDS = ("sqlite", "postgresql")


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--db`` to choose the database backends."""
    parser.addoption(
        "--db",
        default=os.environ.get("BRANCHD_TEST_DB", ",".join(BACKENDS)),
        help="comma-separated database backends to run database tests on (sqlite,postgresql)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that uses ``db_backend`` once per selected backend."""
    if "db_backend" in metafunc.fixturenames:
        chosen = selected_backends(metafunc.config)
        unknown = set(chosen) - set(BACKENDS)
        if unknown:
            raise pytest.UsageError(f"unknown --db backend(s): {', '.join(sorted(unknown))}")
        metafunc.parametrize("db_backend", chosen)


#: The test modules that use the machine's one pcscd (its socket and the vpcd ports
#: are fixed). pytest-xdist sends them all to one worker, which runs them one after
#: another while the other workers take the rest; a ``pcsc`` test elsewhere is refused.
PCSC_MODULES: Final = frozenset(
    {
        "tests/devices/card/test_pcsc_integration.py",
        "tests/devices/station/test_station_vpcd.py",
        "tests/gateway/cardservices/test_card_events_e2e.py",
        "tests/gateway/cardservices/test_daemon_pad.py",
        "tests/gateway/cardservices/test_pin_e2e.py",
        "tests/gateway/issuance/test_crash.py",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that needs pcscd is in one of :data:`PCSC_MODULES`."""
    for item in items:
        uses_pcscd = "pcscd" in getattr(item, "fixturenames", ())
        if item.get_closest_marker("pcsc") or uses_pcscd:
            module = item.nodeid.partition("::")[0]
            if module not in PCSC_MODULES:
                raise pytest.UsageError(f"{module} uses pcscd: add it to PCSC_MODULES")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Tests go to free workers one by one, except the pcscd ones: one worker for all.

    (pytest-xdist's ``loadgroup`` marks groups by rewriting node ids, which pytest 9
    no longer takes; a scope per test, and one scope for the pcscd modules, does it.)
    """
    from xdist.scheduler import LoadScopeScheduling  # noqa: PLC0415 - only under xdist

    class PcscOnOneWorker(LoadScopeScheduling):  # type: ignore[misc] # xdist has no types
        def _split_scope(self, nodeid: str) -> str:
            return "pcsc" if nodeid.partition("::")[0] in PCSC_MODULES else nodeid

    return PcscOnOneWorker(config, log)


def parts_required() -> bool:
    """True in CI and in the project's test command: missing parts fail, not skip."""
    return bool(os.environ.get("CI") or os.environ.get("BRANCHD_REQUIRE_PARTS"))


def missing_part(what: str) -> NoReturn:
    """Fail (CI) or skip (developer machine) a test whose real part is missing."""
    if parts_required():
        pytest.fail(f"required part missing: {what}", pytrace=False)
    pytest.skip(f"part missing: {what}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pg_bindir() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server for the session: ``$BRANCHD_TEST_POSTGRES_URL`` or a throwaway one.

    The throwaway cluster lives in a temporary directory, listens on a free
    port on 127.0.0.1, runs with fsync off, and is removed at the end. PostgreSQL
    refuses to run as root, so as root it runs as the ``postgres`` user.
    """
    given = os.environ.get("BRANCHD_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    bindir = _pg_bindir()
    if bindir is None:
        missing_part("PostgreSQL server (initdb, pg_ctl): apt-get install postgresql")
    prefix: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="branchd-pg-"))
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            missing_part("runuser (util-linux), to run PostgreSQL as the postgres user")
        shutil.chown(base, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    data, log = base / "data", base / "server.log"
    port = free_port()
    try:
        subprocess.run(
            [*prefix, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
             "-E", "UTF8", "--no-sync", "--no-instructions"],
            check=True, capture_output=True,
        )  # fmt: skip
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
             "-o", f"-F -p {port} -k {base} -c listen_addresses=127.0.0.1", "start"],
            check=True, capture_output=True,
        )  # fmt: skip
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode(errors="replace")[-2000:]
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"could not start a throwaway PostgreSQL: {detail}", pytrace=False)
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


def _plain_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@contextlib.asynccontextmanager
async def fresh_database(
    db_backend: str, directory: Path, request: pytest.FixtureRequest
) -> AsyncIterator[str]:
    """An empty database on ``db_backend``, removed at the end.

    SQLite: a new file in ``directory``; PostgreSQL: a new database on the session's server.
    """
    if db_backend == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / 'branchd.db'}"
        return
    server: str = request.getfixturevalue("postgres_server")
    name = f"branchd_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_plain_dsn(server))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    head, _, _ = server.rpartition("/")
    try:
        yield f"{head}/{name}"
    finally:
        admin = await asyncpg.connect(_plain_dsn(server))
        with contextlib.suppress(asyncpg.PostgresError):
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def selected_backends(config: pytest.Config) -> list[str]:
    """The database backends chosen with ``--db``."""
    return [b.strip() for b in str(config.getoption("--db")).split(",") if b.strip()]


@pytest.fixture
async def database_url(
    db_backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[str]:
    """An empty database on ``db_backend``: a fresh SQLite file or a new PostgreSQL database."""
    async with fresh_database(db_backend, tmp_path, request) as url:
        yield url


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock that jumps to each sleep's deadline at once."""
    return FakeClock()
