"""The daemon with ``[upstream]``: outbox in the operation's transaction, relay, degraded mode.

The platform simulator runs over real mutual TLS; it trusts the branch through
the shared peer-keys file the daemon publishes its identity to at start.
"""

import asyncio
import random
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select, update

from gateway.config import parse_config
from gateway.daemon import Daemon
from gateway.people.rows import CardRow
from gateway.upstream import CardRef, PeerKeysFile, UpstreamError, publish_identity
from gateway.upstream.identity import IDENTITY_FILE
from gateway.upstream.models import OutboxRow, OutboxState
from security.pki import CertificateRole, init_ca, issue
from simulators.platform import PlatformSimulator, platform_name
from tests.fakes import FakeClock
from tests.gateway.branch import ADULT, Branch, apply_body
from tests.gateway.builders import TOKENS, master_key_file
from tests.gateway.upstream.conftest import BRANCH, PROVINCE, Pki

pytestmark = pytest.mark.integration

LOSS = {
    "case": "self",
    "channel": "window",
    "applicant": {"id_number": ADULT, "name": "张三"},
    "materials": ["applicant-id-card"],
}


@pytest.fixture
def clock() -> FakeClock:
    """One manual clock for the daemon and the simulator (envelope times agree)."""
    return FakeClock(autojump=False)


@pytest.fixture
def pki(tmp_path: Path, clock: FakeClock) -> Pki:
    """A CA, the simulator's server certificate and the branch's client certificate."""
    directory = tmp_path / "pki"
    init_ca(directory, BRANCH, clock.now())
    issue(directory, "upstream-sim", CertificateRole.SERVER, clock.now())
    issue(directory, "branchd", CertificateRole.PEER, clock.now())
    return Pki(directory)


@asynccontextmanager
async def running_branch(
    tmp_path: Path, database_url: str, clock: FakeClock, pki: Pki, platform_url: str
) -> AsyncIterator[Branch]:
    """A daemon with a key store, four terminals and ``[upstream]`` towards ``platform_url``."""
    config = parse_config(
        {
            "data_dir": str(tmp_path),
            "branch": {"id": BRANCH, "region": "652300"},
            "server": {"host": "127.0.0.1", "port": 0},
            "database": {"url": database_url},
            "keystore": {"master_key": {"file": str(master_key_file(tmp_path))}},
            "terminals": [
                {"id": f"{role}-01", "role": role, "token": token} for role, token in TOKENS.items()
            ],
            "upstream": {
                "peer_keys": str(tmp_path / "peer-keys.json"),
                "tls": {
                    "cert": str(pki.directory / "branchd.pem"),
                    "key": str(pki.directory / "branchd.key"),
                    "ca": str(pki.directory / "ca.pem"),
                },
                "platform": {
                    "url": platform_url,
                    "dialect": "json",
                    "receiver": platform_name(PROVINCE),
                },
                "breaker": {"failure_threshold": 1},
            },
        }
    )
    daemon = Daemon(config, clock=clock, rng=random.Random(7))
    await daemon.start(migrate=True)
    try:
        async with aiohttp.ClientSession() as http:
            yield Branch(daemon, http)
    finally:
        await daemon.stop()


async def outbox_rows(daemon: Daemon) -> list[OutboxRow]:
    """Every outbox row."""
    async with daemon.engine.connect() as conn:
        rows = await conn.execute(select(OutboxRow.operation, OutboxRow.state))
        return [OutboxRow(operation=r[0], state=r[1]) for r in rows]


async def count_outbox(daemon: Daemon) -> int:
    """How many outbox rows exist."""
    async with daemon.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(OutboxRow))).scalar_one())


async def test_loss_report_is_enqueued_and_delivered_once(
    tmp_path: Path, database_url: str, clock: FakeClock, pki: Pki
) -> None:
    """A loss report commits one outbox message with the state change; the relay delivers it."""
    peers = tmp_path / "peer-keys.json"
    simulator = PlatformSimulator(
        ssl_context=pki.server(), trusted=PeerKeysFile(peers), now=clock.now
    )
    async with simulator:
        for identity in simulator.identities.values():
            publish_identity(peers, identity)
        url = simulator.url(PROVINCE, "json")
        async with running_branch(tmp_path, database_url, clock, pki, url) as branch:
            assert (tmp_path / IDENTITY_FILE).stat().st_mode & 0o077 == 0
            assert ADULT.encode() not in (tmp_path / IDENTITY_FILE).read_bytes()
            status, _, _ = await branch.call("POST", "/v1/operations/apply", body=apply_body())
            assert status == 200
            card = simulator.provinces[PROVINCE].add_card(ADULT, "张三", "652300", aaz502="1")
            async with branch.daemon.engine.begin() as conn:
                await conn.execute(
                    update(CardRow).values(
                        card_number=card.aaz500, application_state="1", card_state="04"
                    )
                )
            status, result, _ = await branch.call(
                "POST", "/v1/operations/report-temporary-loss", body=LOSS
            )
            assert status == 200, result
            assert result["status"] in {"completed", "accepted"}
            assert result["application_state"] == "4"
            # A refused operation rolls back with its (absent) message: still one row.
            status, problem, _ = await branch.call(
                "POST", "/v1/operations/report-temporary-loss", body=LOSS
            )
            assert (status, problem["code"]) == (409, "illegal-transition")
            assert await count_outbox(branch.daemon) == 1
            for _ in range(400):  # real TLS round trips: up to 20 s
                states = [r.state for r in await outbox_rows(branch.daemon)]
                if simulator.counters.received and states == [OutboxState.DELIVERED]:
                    break
                await asyncio.sleep(0.05)
            assert simulator.counters.received == 1
            assert simulator.counters.duplicates == 0
            assert card.aaz502 == "4"
            rows = await outbox_rows(branch.daemon)
            assert [(r.operation, r.state) for r in rows] == [
                ("report_loss", OutboxState.DELIVERED)
            ]


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_pin_reset_refused_at_once_while_platform_is_down(
    tmp_path: Path, database_url: str, clock: FakeClock, pki: Pki
) -> None:
    """With the platform's circuit open, a PIN reset answers 503 and nothing is queued."""
    url = f"https://127.0.0.1:{free_port()}/platform/{PROVINCE}/json"
    async with running_branch(tmp_path, database_url, clock, pki, url) as branch:
        upstream = branch.daemon.upstream
        assert upstream is not None
        with pytest.raises(UpstreamError):  # a live call to the dead platform opens the circuit
            await upstream.platform.query_status(CardRef("X00000001"))
        assert not upstream.breakers["platform"].closed
        status, problem, reply = await branch.call("POST", "/v1/operations/pin-reset", body=LOSS)
        assert (status, problem["code"]) == (503, "upstream-unavailable"), problem
        assert reply.content_type == "application/problem+json"
        assert problem["detail"]
        assert problem["detail_zh"]
        assert await count_outbox(branch.daemon) == 0


async def test_dead_letters_for_supervisor_not_teller(
    tmp_path: Path, database_url: str, clock: FakeClock, pki: Pki
) -> None:
    """GET /v1/outbox/dead-letters answers a supervisor (200) and refuses a teller (403)."""
    url = f"https://127.0.0.1:{free_port()}/platform/{PROVINCE}/json"
    async with running_branch(tmp_path, database_url, clock, pki, url) as branch:
        status, body, _ = await branch.call("GET", "/v1/outbox/dead-letters", role="supervisor")
        assert (status, body) == (200, {"items": []})
        status, problem, _ = await branch.call("GET", "/v1/outbox/dead-letters", role="ops")
        assert status == 200
        status, problem, _ = await branch.call("GET", "/v1/outbox/dead-letters")
        assert (status, problem["code"]) == (403, "forbidden")
        document: dict[str, Any]
        async with branch.http.get(branch.daemon.urls[0] + "/openapi.json") as response:
            document = await response.json()
        assert "/v1/outbox/dead-letters" in document["paths"]


async def test_loss_report_is_queued_while_the_platform_is_down(
    tmp_path: Path, database_url: str, clock: FakeClock, pki: Pki
) -> None:
    """With the platform down, a loss report is accepted as "queued" and kept in the outbox."""
    url = f"https://127.0.0.1:{free_port()}/platform/{PROVINCE}/json"
    async with running_branch(tmp_path, database_url, clock, pki, url) as branch:
        upstream = branch.daemon.upstream
        assert upstream is not None
        with pytest.raises(UpstreamError):  # the circuit opens on the dead platform
            await upstream.platform.query_status(CardRef("X00000001"))
        status, _, _ = await branch.call("POST", "/v1/operations/apply", body=apply_body())
        assert status == 200
        async with branch.daemon.engine.begin() as conn:
            await conn.execute(
                update(CardRow).values(
                    card_number="A00000001", application_state="1", card_state="04"
                )
            )
        status, result, _ = await branch.call(
            "POST", "/v1/operations/report-temporary-loss", body=LOSS
        )
        assert (status, result["status"]) == (200, "queued")
        assert result["application_state"] == "4"
        assert [r.operation for r in await outbox_rows(branch.daemon)] == ["report_loss"]
