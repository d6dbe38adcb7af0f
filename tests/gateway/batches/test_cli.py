"""``branchd batch import|submit|progress|pickup`` against a running daemon (SQLite, PostgreSQL).

The command line runs in a worker thread (its own event loop, as from a
shell) while the daemon answers on this test's loop; one test runs the
installed ``branchd`` script as a process, one talks mutual TLS on loopback.
Cards are "made" by moving the rows and cards in the database as the
production task does (production itself is covered by test_production_e2e).
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from openpyxl import load_workbook
from rich.console import Console
from sqlalchemy import select, update

from gateway.batches.client import BatchClient, Endpoint, follow, production_over
from gateway.batches.rows import BatchItemRow
from gateway.cli.main import main
from gateway.config import parse_config
from gateway.daemon import Daemon, serve
from gateway.people.rows import CardRow
from gateway.runtime.db import create_engine, session_factory
from security.pki import CertificateRole, init_ca, issue
from tests.fakes import FakeClock
from tests.gateway.batches.conftest import HANDLER, SCAN, card_list, id_number, photo
from tests.gateway.branch import branch  # noqa: F401 - the fixture
from tests.gateway.builders import TOKENS, master_key_file

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.gateway.branch import Branch

pytestmark = pytest.mark.integration


def row(n: int, ethnicity: str = "01") -> list[str]:
    """A row numbered ``n`` naming p<n>.jpg and s<n>.pdf."""
    return [str(n), f"职工{n}", id_number(n), "", "", f"p{n}.jpg", f"s{n}.pdf", ethnicity]


def write_list(directory: Path, rows: list[list[str]]) -> Path:
    """The card list as csv and its files in ``directory/files``; the list's path."""
    files = directory / "files"
    files.mkdir(parents=True, exist_ok=True)
    for r in rows:
        (files / r[5]).write_bytes(photo())
        (files / r[6]).write_bytes(SCAN)
    path = directory / "list.csv"
    path.write_bytes(card_list(rows))
    return path


def token_file(directory: Path, role: str = "teller") -> Path:
    """The terminal's token in an owner-only file."""
    path = directory / f"{role}.token"
    path.write_text(TOKENS[role] + "\n", encoding="ascii")
    path.chmod(0o600)
    return path


def batch_of(out: str) -> str:
    """The batch id from the command's first line (``batch <id>  receipt ...``)."""
    found = re.search(r"^batch (\S+)  receipt", out, re.MULTILINE)
    assert found, out
    return found.group(1)


async def cli(*argv: str) -> int:
    """``branchd ARGV`` in a worker thread (the daemon keeps answering on this loop)."""
    return await asyncio.to_thread(main, list(argv))


async def make_cards(database_url: str, batch_id: str) -> None:
    """What production does when it has made every queued row's card: rows and cards ``02``."""
    engine = create_engine(database_url)
    try:
        async with session_factory(engine).begin() as session:
            card_ids = (
                await session.scalars(
                    select(BatchItemRow.card_id).where(BatchItemRow.batch_id == batch_id)
                )
            ).all()
            await session.execute(
                update(BatchItemRow)
                .where(BatchItemRow.batch_id == batch_id, BatchItemRow.status == "queued")
                .values(status="produced")
            )
            for n, card_id in enumerate(c for c in card_ids if c is not None):
                await session.execute(
                    update(CardRow)
                    .where(CardRow.id == card_id)
                    .values(card_state="02", card_number=f"C{n + 1:08d}")
                )
    finally:
        await engine.dispose()


async def test_import_submit_progress_pickup_from_the_command_line(
    branch: Branch,  # noqa: F811
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The whole counter flow from a shell: problems report, queue, progress, pickup, refusals."""
    url, token = branch.daemon.urls[0], token_file(tmp_path)
    conn = ["--url", url, "--token-file", str(token)]
    card_file = write_list(tmp_path, [row(1), row(2), row(3, ethnicity="")])
    handler = ["--handler-id", HANDLER["id_number"], "--handler-name", HANDLER["name"]]
    assert await cli(
        "batch", "import", str(card_file), "--files", str(tmp_path / "files"),
        "--employer", "昌吉市某某有限公司", *handler, "--material", "handler-id-card",
        "--material", "batch-file", "--priority", "urgent", *conn,
    ) == 0  # fmt: skip
    out = capsys.readouterr().out
    batch_id = batch_of(out)
    assert "invalid=1 ready=2" in out
    assert "1 row(s) with problems" in out
    sheet = load_workbook(tmp_path / "list-problems.xlsx").worksheets[0]
    assert [c.value for c in sheet[2]][3] == "missing:ethnicity"
    assert HANDLER["id_number"] not in out  # the handler is shown masked

    key = "cli-test-submit-1"
    assert await cli("batch", "submit", batch_id, "--idempotency-key", key, *conn) == 0
    assert "invalid=1 queued=2" in capsys.readouterr().out
    assert await cli("batch", "submit", batch_id, "--idempotency-key", key, *conn) == 0
    assert "invalid=1 queued=2" in capsys.readouterr().out  # the same answer, replayed
    assert await cli("batch", "submit", batch_id, *conn) == 1
    assert "batch-state (409)" in capsys.readouterr().err

    assert await cli("batch", "pickup", batch_id, *handler, "--material", "handler-id-card", *conn)
    refused = capsys.readouterr().err
    assert "batch-row-state (409)" in refused
    assert "没有待领取的卡片" in refused

    await make_cards(database_url, batch_id)
    assert await cli("batch", "progress", batch_id, *conn) == 0
    assert "made 2/2" in capsys.readouterr().out

    letter = tmp_path / "letter.pdf"
    letter.write_bytes(SCAN)
    other = ["--handler-id", "-", "--handler-name", "李新"]
    sys_stdin = sys.stdin
    sys.stdin = io.StringIO(id_number(900) + "\n")  # the number typed, not in the arguments
    try:
        assert await cli(
            "batch", "pickup", batch_id, *other, "--material", "handler-id-card", "--line", "2",
            *conn,
        ) == 1  # fmt: skip
        missing = capsys.readouterr().err
        assert "missing:employer-letter" in missing
        assert "missing:employer-letter-scan" in missing
        sys.stdin = io.StringIO(id_number(900) + "\n")
        assert await cli(
            "batch", "pickup", batch_id, *other, "--material", "handler-id-card",
            "--material", "employer-letter", "--letter", str(letter), "--line", "2", *conn,
        ) == 0  # fmt: skip
    finally:
        sys.stdin = sys_stdin
    done = capsys.readouterr().out
    assert "1 card(s) handed over  (changed handler, letter archived)" in done
    assert "lines 2" in done
    _, rows, _ = await branch.call("GET", f"/v1/batches/{batch_id}/rows")
    assert [r["status"] for r in rows["items"]] == ["picked-up", "produced", "invalid"]


async def test_progress_follow_draws_a_bar_until_production_is_done(
    branch: Branch,  # noqa: F811
    database_url: str,
    tmp_path: Path,
) -> None:
    """--follow polls the API; the bar ends at done/total with the counts beside it."""
    endpoint = Endpoint(branch.daemon.urls[0], TOKENS["teller"])
    card_file = write_list(tmp_path, [row(1), row(2)])
    files = io.BytesIO()
    import zipfile  # noqa: PLC0415

    with zipfile.ZipFile(files, "w") as archive:
        for path in (tmp_path / "files").iterdir():
            archive.write(path, path.name)
    looks: list[float] = []

    async def between_looks(seconds: float) -> None:
        """Production makes the cards while the command waits (no real waiting)."""
        looks.append(seconds)
        await make_cards(database_url, batch["id"])

    async with aiohttp.ClientSession() as http:
        client = BatchClient(http, endpoint)
        batch = await client.import_batch(
            employer="某公司", handler=HANDLER, materials=["handler-id-card", "batch-file"],
            priority="normal", list_name=card_file.name, list_data=card_file.read_bytes(),
            files=files.getvalue(),
        )  # fmt: skip
        assert not production_over(batch)  # imported, not submitted
        client = BatchClient(http, endpoint)
        await client.submit(batch["id"])
        screen = io.StringIO()
        console = Console(file=screen, width=120, force_terminal=False)
        last = await follow(client, batch["id"], console=console, interval=3, sleep=between_looks)
    assert looks == [3]
    assert (last["done"], last["total"]) == (2, 2)
    assert production_over(last)
    shown = screen.getvalue()
    assert "2/2" in shown
    assert "100%" in shown
    assert "produced=2" in shown


async def test_installed_script_with_env_and_usage_errors(
    branch: Branch,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The console script reads $BRANCHD_URL/$BRANCHD_TOKEN_FILE; bad options exit 2, clearly."""
    script = Path(sys.executable).parent / "branchd"
    env = {
        **os.environ,
        "BRANCHD_URL": branch.daemon.urls[0],
        "BRANCHD_TOKEN_FILE": str(token_file(tmp_path)),
    }
    process = await asyncio.create_subprocess_exec(
        str(script), "batch", "progress", "no-such-batch", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 1, (out, err)
    assert "batch-not-found (404): 未找到该批次 / Batch not found" in err.decode()

    assert await cli("batch", "submit", "x", "--url", branch.daemon.urls[0]) == 2
    assert "no credentials" in capsys.readouterr().err
    token = str(token_file(tmp_path))
    assert await cli("batch", "submit", "x", "--url", "https://localhost:1", "--token-file", token)
    assert "needs --ca" in capsys.readouterr().err
    assert await cli("batch", "submit", "x", "--token-file", str(tmp_path / "none")) == 2
    assert "cannot read the token file" in capsys.readouterr().err
    closed = ["--url", "http://127.0.0.1:9", "--token-file", token]
    assert await cli("batch", "submit", "x", *closed) == 1
    lost = capsys.readouterr().err
    assert "--idempotency-key cli-" in lost  # how to learn what the daemon did
    assert TOKENS["teller"] not in lost


@pytest.fixture
async def tls_daemon(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Daemon, Path]]:
    """A daemon serving HTTPS with mutual TLS; the teller terminal known by its certificate."""
    clock = FakeClock(autojump=False)
    pki = tmp_path / "pki"
    init_ca(pki, "T-652300-01", clock.now())
    issue(pki, "branchd", CertificateRole.PEER, clock.now(), dns_names=["localhost"])
    issue(pki, "teller-01", CertificateRole.CLIENT, clock.now())
    config = parse_config(
        {
            "data_dir": str(tmp_path),
            "branch": {"id": "T-652300-01", "region": "652300"},
            "server": {
                "host": "127.0.0.1",
                "port": 0,
                "tls": {
                    "cert": str(pki / "branchd.pem"),
                    "key": str(pki / "branchd.key"),
                    "ca": str(pki / "ca.pem"),
                },
            },
            "database": {"url": database_url},
            "keystore": {"master_key": {"file": str(master_key_file(tmp_path))}},
            "terminals": [{"id": "teller-01", "role": "teller", "certificate_cn": "teller-01"}],
        }
    )
    started: asyncio.Future[Daemon] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve(config, migrate=True, clock=clock, on_started=started.set_result)
    )
    waiter = asyncio.ensure_future(asyncio.shield(started))
    both: set[asyncio.Future[Any]] = {task, waiter}
    done, _ = await asyncio.wait(both, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        waiter.cancel()
        task.result()
    yield started.result(), pki
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(task, 20) == 0


async def test_mutual_tls_with_the_terminal_certificate(
    tls_daemon: tuple[Daemon, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--cert/--key/--ca: the terminal is the certificate's subject; no token needed."""
    daemon, pki = tls_daemon
    url = daemon.urls[0].replace("127.0.0.1", "localhost")
    card_file = write_list(tmp_path, [row(1)])
    tls = ["--url", url, "--cert", str(pki / "teller-01.pem"), "--key", str(pki / "teller-01.key"),
           "--ca", str(pki / "ca.pem")]  # fmt: skip
    assert await cli(
        "batch", "import", str(card_file), "--files", str(tmp_path / "files"),
        "--employer", "某公司", "--handler-id", HANDLER["id_number"],
        "--handler-name", HANDLER["name"], "--material", "handler-id-card",
        "--material", "batch-file", *tls,
    ) == 0  # fmt: skip
    batch_id = batch_of(capsys.readouterr().out)
    assert await cli("batch", "progress", batch_id, *tls) == 0
    assert "ready=1" in capsys.readouterr().out
    no_ca = tls[:-2]  # without --ca
    assert await cli("batch", "progress", batch_id, *no_ca) == 2
    assert "needs --ca" in capsys.readouterr().err
