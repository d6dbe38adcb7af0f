import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from gateway.assembly import open_keystore
from gateway.audit.log import AuditLog
from gateway.cli.main import main
from gateway.config import load_config
from gateway.demo.world import DEMO_ADDRESS, DEMO_PHONE, demo_id_number
from gateway.runtime.db import create_engine, session_factory
from gateway.runtime.keys import KeyStoreSigner
from gateway.runtime.migrate import upgrade
from security.suites import GM
from tests.conftest import free_port
from tests.fakes import FakeClock
from tests.gateway.audit.test_audit import tamper
from tests.gateway.builders import config_toml, master_key_file

pytestmark = pytest.mark.integration

BRANCHD = [sys.executable, "-m", "gateway"]
COMMANDS = [[], ["run"], ["demo"], ["check-config"], ["db"], ["db", "upgrade"], ["pki"],
            ["audit"], ["audit", "verify"], ["sim"], ["sim", "card"], ["sim", "printer"],
            ["sim", "platform"], ["sim", "bank"], ["sim", "station"], ["sim", "pinpad"],
            ["agent"], ["monitor"],
            ["batch"], ["batch", "template"], ["batch", "check"],
            ["outbox"], ["outbox", "list"], ["outbox", "retry"], ["stock"],
            ["pki", "init"], ["pki", "issue"], ["pki", "show"],
            ["db", "current"], ["version"]]  # fmt: skip


async def branchd(*args: str, timeout: float = 60) -> tuple[int, str, str]:  # noqa: ASYNC109
    """Run ``branchd ARGS`` to completion; return status, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        *BRANCHD, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def read_until(stream: asyncio.StreamReader, predicate: str, seen: list[str]) -> str:
    """Read lines (kept in ``seen``) until one contains ``predicate``; return that line."""
    while True:
        line = (await asyncio.wait_for(stream.readline(), 60)).decode()
        if not line:
            raise AssertionError(f"stream ended before {predicate!r}:\n{''.join(seen)}")
        seen.append(line)
        if predicate in line:
            return line


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "branchd")
def test_help_on_every_command(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """``--help`` works on every command and sub-command."""
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    assert "usage: branchd" in capsys.readouterr().out


async def test_version() -> None:
    """``branchd version`` prints the distribution's version."""
    status, out, _ = await branchd("version")
    assert status == 0
    assert out.startswith("sscard-branchd ")


async def test_invalid_config_one_message_exit_2(tmp_path: Path) -> None:
    """An invalid file: exit 2, a message naming key, value and expectation, no traceback."""
    path = tmp_path / "branchd.toml"
    path.write_text('[branch]\nid = "B1"\nregion = "xx"\n[server]\nport = "http"\n', "utf-8")
    for command in (["check-config", str(path)], ["run", "--config", str(path)]):
        status, out, err = await branchd(*command)
        assert status == 2
        assert out == ""
        assert "Traceback" not in err
        assert "branch.region" in err
        assert "(got 'xx')" in err
        assert "server.port: Input should be a valid integer" in err


async def test_missing_config_file_exit_2(tmp_path: Path) -> None:
    """A configuration file that does not exist is exit 2 with its name."""
    status, _, err = await branchd("run", "--config", str(tmp_path / "nope.toml"))
    assert status == 2
    assert "nope.toml" in err
    assert "Traceback" not in err


async def test_check_config_hides_secrets(tmp_path: Path) -> None:
    """A valid file is summarised without showing the database password."""
    path = tmp_path / "branchd.toml"
    path.write_text(
        config_toml("postgresql+asyncpg://u:s3cret@db/x", tmp_path, 8080), encoding="utf-8"
    )
    status, out, _ = await branchd("check-config", str(path))
    assert status == 0
    assert "OK" in out
    assert "s3cret" not in out


@pytest.mark.timeout(120)
async def test_db_upgrade_then_run_then_sigterm(database_url: str, tmp_path: Path) -> None:
    """``db upgrade`` migrates; ``run`` serves /healthz and /readyz; SIGTERM exits 0."""
    path = tmp_path / "branchd.toml"
    path.write_text(config_toml(database_url, tmp_path, free_port()), encoding="utf-8")
    status, out, err = await branchd("db", "upgrade", "--config", str(path))
    assert status == 0, err
    assert "database at revision" in out
    status, out, _ = await branchd("db", "current", "--config", str(path))
    assert ": current" in out

    process = await asyncio.create_subprocess_exec(
        *BRANCHD, "run", "--config", str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    seen: list[str] = []
    try:
        started = json.loads(await read_until(process.stderr, "daemon_started", seen))
        base = started["urls"][0]
        async with aiohttp.ClientSession() as http:
            assert (await http.get(f"{base}/healthz")).status == 200
            assert (await http.get(f"{base}/readyz")).status == 200
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    rest = (await process.stderr.read()).decode()
    log = "".join(seen) + rest
    assert "daemon_stopped" in log
    assert all(json.loads(line) for line in log.splitlines())  # JSON lines throughout
    assert "Traceback" not in log


@pytest.mark.timeout(120)
async def test_demo_serves_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    """``branchd demo`` migrates SQLite, prints its URLs, is ready, and stops on SIGINT."""
    process = await asyncio.create_subprocess_exec(
        *BRANCHD, "demo", "--port", "0", "--data-dir", str(tmp_path / "demo"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stdout is not None
    seen: list[str] = []
    try:
        ready_line = await read_until(process.stdout, "readiness", seen)
        ready_url = ready_line.split()[-1]
        health_url = next(line for line in seen if "liveness" in line).split()[-1]
        async with aiohttp.ClientSession() as http:
            assert (await http.get(health_url)).status == 200
            assert (await http.get(ready_url)).status == 200
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert (tmp_path / "demo" / "branchd.db").exists()
    assert (tmp_path / "demo" / "branchd.toml").exists()
    assert (tmp_path / "demo" / "keystore.bin").stat().st_mode & 0o077 == 0
    status, out, _ = await branchd(
        "audit", "verify", "--config", str(tmp_path / "demo" / "branchd.toml")
    )
    assert status == 0
    assert re.search(r"audit log intact: \d+ entries", out), out


@pytest.mark.timeout(300)
async def test_demo_once_ends_with_an_issued_card_everyone_agrees_on(tmp_path: Path) -> None:
    """``branchd demo --once`` runs the scripted morning and exits 0: chip, platform, bank agree."""
    status, out, err = await branchd(
        "demo", "--once", "--port", "0", "--data-dir", str(tmp_path / "demo"), timeout=280
    )
    assert status == 0, out + err
    assert "Issued card X00000001" in out
    assert "chip, platform and bank agree" in out
    assert "reconciled" in out
    status, verified, _ = await branchd(
        "audit", "verify", "--config", str(tmp_path / "demo" / "branchd.toml")
    )
    assert status == 0, verified
    status, stock, err = await branchd("stock", "--config", str(tmp_path / "demo" / "branchd.toml"))
    assert status == 0, stock + err
    assert "station-1" in stock
    assert "reconciled" in stock
    clear = _demo_personal_values()
    _assert_nowhere_in_clear(clear, out + err, tmp_path / "demo")


def _demo_personal_values() -> list[str]:
    """Every personal value the demo's customers give: identity numbers, names, phone, address."""
    values = [DEMO_PHONE, DEMO_ADDRESS, demo_id_number(1), "张晓明"]
    values += [demo_id_number(10 + n) for n in range(3)] + ["李娜", "王伟", "刘洋"]
    return values


def _assert_nowhere_in_clear(values: list[str], output: str, data_dir: Path) -> None:
    """None of ``values`` in the output (logs included) or the daemon's files, in clear.

    The daemon's files are every file of the data directory but the simulated
    cards themselves (``station.json``, ``cards/``: the chips, which hold the
    holder's data as a real card does). Looked for in UTF-8, GBK and UTF-16.
    """
    found = [v for v in values if v in output]
    for path in data_dir.rglob("*"):
        if not path.is_file() or path.name == "station.json" or "cards" in path.parts:
            continue
        data = path.read_bytes()
        found += [
            f"{v} in {path.name} ({encoding})"
            for v in values
            for encoding in ("utf-8", "gbk", "utf-16-le")
            if v.encode(encoding) in data
        ]
    assert found == [], found


async def test_pki_init_issue_show(tmp_path: Path) -> None:
    """``branchd pki`` creates the CA and daemon certificate, issues more, and lists expiry."""
    directory = str(tmp_path / "pki")
    status, out, err = await branchd("pki", "init", "--dir", directory, "--branch", "B1")
    assert status == 0, err
    assert "branchd.pem" in out
    status, _, _ = await branchd("pki", "issue", "agent-01", "--dir", directory, "--days", "20")
    assert status == 0
    status, out, _ = await branchd("pki", "show", "--dir", directory)
    assert status == 0
    assert "agent-01.pem" in out
    assert "expires soon" in out
    status, _, err = await branchd("pki", "init", "--dir", directory, "--branch", "B1")
    assert status == 2
    assert "refusing to replace" in err


async def test_audit_verify_names_the_edited_row(
    database_url: str, db_backend: str, tmp_path: Path
) -> None:
    """``branchd audit verify`` passes on an intact log and names the row someone edited."""
    path = tmp_path / "branchd.toml"
    path.write_text(
        config_toml(database_url, tmp_path, free_port(), master_key_file(tmp_path)), "utf-8"
    )
    config = load_config(path)
    store = open_keystore(config, create=True)
    assert store is not None
    signer = KeyStoreSigner(store, "branch-signing", create=True)
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        clock = FakeClock()
        log = AuditLog(session_factory(engine), GM, clock)
        for n in range(3):
            await log.append("teller-01", "card.status", f"card:{n}")
        await clock.sleep(86400)
        assert await log.checkpoint_finished_days(signer)
        status, out, err = await branchd("audit", "verify", "--config", str(path))
        assert status == 0, err
        assert "audit log intact: 3 entries, 1 checkpoints, signatures checked" in out

        await tamper(engine, db_backend, "UPDATE audit_log SET subject = 'card:X' WHERE seq = 2")
    finally:
        await engine.dispose()
    status, out, _ = await branchd("audit", "verify", "--config", str(path))
    assert status == 1
    assert "audit entry #2: edited" in out


async def test_outbox_list_and_retry_unknown(database_url: str, tmp_path: Path) -> None:
    """``branchd outbox list`` shows the dead letters; retrying an unknown id fails clearly."""
    path = tmp_path / "branchd.toml"
    path.write_text(config_toml(database_url, tmp_path, free_port()), encoding="utf-8")
    assert (await branchd("db", "upgrade", "--config", str(path)))[0] == 0
    status, out, _ = await branchd("outbox", "list", "--config", str(path))
    assert (status, out.strip()) == (0, "0 dead letter(s)")
    status, _, err = await branchd("outbox", "retry", "--config", str(path), "no-such-id")
    assert status == 1
    assert "no dead letter no-such-id" in err


async def test_agent_with_invalid_configuration(tmp_path: Path) -> None:
    """``branchd agent`` refuses a bad file with every problem named and exit 2."""
    path = tmp_path / "agent.toml"
    path.write_text('agent_id = "a 1"\nprovince = "650000"\ncolour = 1\n', "utf-8")
    status, _, err = await branchd("agent", "--config", str(path))
    assert status == 2
    assert "branch: Field required" in err
    assert "colour: Extra inputs are not permitted" in err
    assert "Traceback" not in err


def test_batch_template_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``branchd batch template`` writes the template; ``check`` reports rows and problems."""
    template = tmp_path / "list.xlsx"
    assert main(["batch", "template", str(template)]) == 0
    from openpyxl import load_workbook  # noqa: PLC0415

    book = load_workbook(template)
    book.worksheets[0].append(["1", "", "110105194912310021", "", "", "", ""])
    book.save(template)
    folder = tmp_path / "files"
    folder.mkdir()
    assert main(["batch", "check", str(template), "--files", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "1 rows, 0 ready, 1 with problems" in out
    assert (tmp_path / "list-problems.xlsx").exists()
