"""Loss and cancel loss of the social-security application and of the bank account.

The daemon runs with ``[upstream]`` towards the platform simulator and the
bank simulator over real mutual TLS (SQLite and PostgreSQL). From the window
and the kiosk: a loss of both (application and bank account), cancel loss of
the bank account alone, a scope where it does not belong; the bank freeze
waits in the outbox while the bank is down and reaches it when it is back.
The platform's 12333 notice: pushed by the simulator in an envelope, applied
once (a copy gets the stored answer), refused from any other sender. A
reissue's new card cancels the old one on the platform through the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from sqlalchemy import func, select, update

from gateway.audit.rows import AuditEntryRow
from gateway.daemon import Daemon
from gateway.operations.invalidation import invalidate_replaced_cards
from gateway.people.rows import CardRow
from gateway.runtime.db import session_factory
from gateway.upstream import PeerKeysFile, publish_identity
from gateway.upstream.models import OutboxRow, OutboxState
from gateway.upstream.notices import NOTICE_PATH
from protocols.platform import Status
from security.pki import CertificateRole, init_ca, issue
from simulators.bank import BANK_NAME, BankSimulator
from simulators.bank.simulator import Account
from simulators.platform import PlatformSimulator, platform_name
from simulators.platform.notices import NoticeRefusedError, push_loss_notice
from tests.fakes import FakeClock
from tests.gateway.branch import ADULT, Branch, apply_body
from tests.gateway.builders import branch_config
from tests.gateway.upstream.conftest import BRANCH, PROVINCE, Pki

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from simulators.platform.provinces import Card

pytestmark = pytest.mark.integration

_DELIVERY_ROUNDS = 400  # real TLS round trips: up to 20 s


def loss_body(**changes: Any) -> dict[str, Any]:  # noqa: ANN401
    """The holder in person at the window with the ID card."""
    found: dict[str, Any] = {
        "case": "self",
        "channel": "window",
        "applicant": {"id_number": ADULT, "name": "张三"},
        "materials": ["applicant-id-card"],
    }
    found.update(changes)
    return found


@dataclass
class LossWorld:
    """The branch, the platform and bank simulators, the clock, the holder's card."""

    branch: Branch
    platform: PlatformSimulator
    bank: BankSimulator
    clock: FakeClock
    peers: Path
    card: Card | None = None

    @property
    def daemon(self) -> Daemon:
        """The daemon."""
        return self.branch.daemon

    async def post(
        self, path: str, body: dict[str, Any], role: str = "teller"
    ) -> tuple[int, dict[str, Any]]:
        """POST as a terminal."""
        status, answer, _ = await self.branch.call("POST", path, role=role, body=body)
        return status, answer

    async def active_card(self) -> Card:
        """Apply, then make the card active with a bank account (as production leaves it)."""
        status, answer = await self.post("/v1/operations/apply", apply_body())
        assert status == 200, answer
        card = self.platform.provinces[PROVINCE].add_card(ADULT, "张三", "652300", aaz502="1")
        self.bank.accounts[card.aaz500] = Account("6217000000000000001", ADULT, card.aaz500)
        self.bank.accounts[card.aaz500].state = "active"
        async with self.daemon.engine.begin() as conn:
            await conn.execute(
                update(CardRow).values(
                    card_number=card.aaz500,
                    application_state="1",
                    card_state="04",
                    bank_state="active",
                )
            )
        self.card = card
        return card

    async def delivered(self, count: int) -> list[tuple[str, str]]:
        """Wait until ``count`` outbox messages are delivered; (target, operation) of each."""
        for _ in range(_DELIVERY_ROUNDS):
            rows = await outbox(self.daemon)
            if sum(1 for r in rows if r[2] == OutboxState.DELIVERED) >= count:
                break
            await asyncio.sleep(0.05)
        rows = await outbox(self.daemon)
        assert [r[2] for r in rows] == [OutboxState.DELIVERED] * count, rows
        return [(r[0], r[1]) for r in rows]

    async def notice(self, **changes: Any) -> Any:  # noqa: ANN401
        """Push a loss notice of the holder's card from the branch's province."""
        assert self.card is not None
        arguments: dict[str, Any] = {
            "province": PROVINCE,
            "url": self.daemon.urls[0] + NOTICE_PATH,
            "branch": BRANCH,
            "branch_keys": PeerKeysFile(self.peers),
            "card_number": self.card.aaz500,
            "loss_type": "2",
            "now": self.clock.now(),
        }
        arguments.update(changes)
        return await push_loss_notice(self.platform, **arguments)


async def outbox(daemon: Daemon) -> list[tuple[str, str, str]]:
    """(target, operation, state) of every outbox row, oldest first."""
    async with daemon.engine.connect() as conn:
        rows = await conn.execute(
            select(OutboxRow.target, OutboxRow.operation, OutboxRow.state).order_by(OutboxRow.id)
        )
        return [(r[0], r[1], r[2]) for r in rows]


async def card_states(daemon: Daemon) -> tuple[str, str, str]:
    """(application, card, bank) states of the holder's card."""
    async with daemon.engine.connect() as conn:
        row = (
            await conn.execute(
                select(CardRow.application_state, CardRow.card_state, CardRow.bank_state)
            )
        ).one()
        return row[0], row[1], row[2]


@pytest.fixture
def clock() -> FakeClock:
    """One manual clock for the daemon and the simulators (envelope times agree)."""
    return FakeClock(autojump=False)


@contextlib.asynccontextmanager
async def loss_world(
    tmp_path: Path, database_url: str, clock: FakeClock
) -> AsyncIterator[LossWorld]:
    """The branch with platform and bank, both simulated over mutual TLS."""
    directory = tmp_path / "pki"
    init_ca(directory, BRANCH, clock.now())
    issue(directory, "upstream-sim", CertificateRole.SERVER, clock.now())
    issue(directory, "branchd", CertificateRole.PEER, clock.now())
    pki = Pki(directory)
    peers = tmp_path / "peer-keys.json"
    platform = PlatformSimulator(
        ssl_context=pki.server(), trusted=PeerKeysFile(peers), now=clock.now
    )
    bank = BankSimulator(ssl_context=pki.server(), trusted=PeerKeysFile(peers), now=clock.now)
    async with platform, bank:
        for identity in [*platform.identities.values(), bank.identity]:
            publish_identity(peers, identity)
        tls = {
            "cert": str(directory / "branchd.pem"),
            "key": str(directory / "branchd.key"),
            "ca": str(directory / "ca.pem"),
        }
        config = branch_config(
            database_url,
            tmp_path,
            upstream={
                "peer_keys": str(peers),
                "tls": tls,
                "platform": {
                    "url": platform.url(PROVINCE, "json"),
                    "dialect": "json",
                    "receiver": platform_name(PROVINCE),
                },
                "bank": {"url": bank.url, "receiver": BANK_NAME},
                "breaker": {"failure_threshold": 1, "reset_timeout": 5.0},
            },
        )
        daemon = Daemon(config, clock=clock, rng=random.Random(7))
        await daemon.start(migrate=True)
        try:
            async with aiohttp.ClientSession() as http:
                yield LossWorld(Branch(daemon, http), platform, bank, clock, peers)
        finally:
            await daemon.stop()


@pytest.fixture
async def world(tmp_path: Path, database_url: str, clock: FakeClock) -> AsyncIterator[LossWorld]:
    """The branch with platform and bank, both simulated over mutual TLS."""
    async with loss_world(tmp_path, database_url, clock) as made:
        yield made


async def test_loss_of_both_then_cancel_each_from_window_and_kiosk(world: LossWorld) -> None:
    """Both frozen at the window; the kiosk unfreezes the bank alone; the window the rest."""
    card = await world.active_card()
    status, answer = await world.post(
        "/v1/operations/report-temporary-loss", loss_body(scope="both")
    )
    assert status == 200, answer
    assert (answer["application_state"], answer["card_state"]) == ("4", "06")
    assert answer["bank_state"] == "frozen"
    assert sorted(await world.delivered(2)) == [("bank", "freeze"), ("platform", "report_loss")]
    assert (card.aaz502, world.bank.accounts[card.aaz500].state) == ("4", "frozen")

    kiosk = loss_body(scope="bank", channel="kiosk", materials=["applicant-ss-card"])
    status, answer = await world.post("/v1/operations/cancel-loss", kiosk, role="kiosk")
    assert status == 200, answer
    assert (answer["application_state"], answer["bank_state"]) == ("4", "active")
    await world.delivered(3)
    assert (card.aaz502, world.bank.accounts[card.aaz500].state) == ("4", "active")

    status, answer = await world.post("/v1/operations/cancel-loss", loss_body())
    assert status == 200, answer
    assert (answer["application_state"], answer["bank_state"]) == ("1", "active")
    await world.delivered(4)
    assert card.aaz502 == "1"

    # The bank side alone again: cancelling a loss the account does not have is refused.
    status, answer = await world.post("/v1/operations/cancel-loss", loss_body(scope="bank"))
    assert (status, answer["code"], answer["machine"]) == (
        409,
        "illegal-transition",
        "bank-account",
    )
    status, answer = await world.post(
        "/v1/operations/status-query",
        loss_body(scope="bank", materials=["applicant-id-card", "applicant-ss-card"]),
    )
    assert (status, answer["code"]) == (422, "incomplete-request")
    assert [m["code"] for m in answer["missing"]] == ["scope-not-applicable"]
    assert len(await outbox(world.daemon)) == 4
    assert await card_states(world.daemon) == ("1", "04", "active")


async def test_bank_freeze_waits_for_the_bank(world: LossWorld) -> None:
    """With the bank down the freeze is accepted and kept; it reaches the bank when it is back."""
    card = await world.active_card()
    await world.bank.set_faults(down=True)
    status, answer = await world.post("/v1/operations/report-formal-loss", loss_body(scope="bank"))
    assert status == 200, answer
    assert (answer["application_state"], answer["bank_state"]) == ("1", "frozen")
    for _ in range(_DELIVERY_ROUNDS):  # the relay tries, fails, and waits for its next try
        async with world.daemon.engine.connect() as conn:
            attempts = (await conn.execute(select(OutboxRow.attempts))).scalar_one()
        if attempts:
            break
        await asyncio.sleep(0.05)
    assert (await outbox(world.daemon))[0][2] == OutboxState.PENDING
    assert world.bank.accounts[card.aaz500].state == "active"
    await world.bank.set_faults(down=False)
    for _ in range(_DELIVERY_ROUNDS):  # time passes for the retry and the breaker
        if (await outbox(world.daemon))[0][2] == OutboxState.DELIVERED:
            break
        await world.clock.advance(10.0)
        await asyncio.sleep(0.05)
    assert await world.delivered(1) == [("bank", "freeze")]
    assert world.bank.accounts[card.aaz500].state == "frozen"


async def test_12333_notice_applied_once(world: LossWorld) -> None:
    """The platform's formal-loss notice moves the card and freezes the account, once."""
    card = await world.active_card()
    result = await world.notice(freeze_bank=True, message_id="N-1")
    assert result.status is Status.OK, result
    assert (result.fields["AAZ502"], result.fields["bankState"]) == ("2", "frozen")
    assert await card_states(world.daemon) == ("2", "05", "frozen")
    assert card.aaz502 == "2"
    assert await world.delivered(1) == [("bank", "freeze")]  # nothing back to the platform
    assert world.bank.accounts[card.aaz500].state == "frozen"

    again = await world.notice(freeze_bank=True, message_id="N-1")  # a copy
    assert (again.status, again.fields) == (result.status, result.fields)
    async with world.daemon.engine.connect() as conn:
        audited = await conn.scalar(
            select(func.count())
            .select_from(AuditEntryRow)
            .where(AuditEntryRow.action == "notice.loss")
        )
    assert audited == 1
    assert len(await outbox(world.daemon)) == 1

    unknown = await world.notice(card_number="X99999999", message_id="N-2")
    assert unknown.status is Status.NOT_FOUND
    with pytest.raises(NoticeRefusedError) as refused:  # another province is not our platform
        await world.notice(province="500000", message_id="N-3")
    assert (refused.value.status, refused.value.code) == (400, "notice.unknown_sender")
    assert await card_states(world.daemon) == ("2", "05", "frozen")


async def test_12333_temporary_loss_and_cancel(world: LossWorld) -> None:
    """A temporary loss by telephone, then its cancellation; the bank account untouched."""
    await world.active_card()
    with pytest.raises(NoticeRefusedError) as refused:  # the branch speaks its platform's JSON
        await world.notice(loss_type="4", dialect="soap")
    assert refused.value.status == 422
    assert await card_states(world.daemon) == ("1", "04", "active")
    result = await world.notice(loss_type="4")
    assert result.status is Status.OK, result
    assert await card_states(world.daemon) == ("4", "06", "active")
    result = await world.notice(loss_type=None)
    assert (result.status, result.fields["AAZ502"]) == (Status.OK, "1")
    assert await card_states(world.daemon) == ("1", "04", "active")
    status, _ = await world.post("/v1/operations/report-formal-loss", loss_body())
    assert status == 200
    result = await world.notice(loss_type=None)  # a formal loss is not cancelled
    assert result.status is Status.INVALID_STATE


async def test_reissued_card_cancels_the_old_one_upstream(world: LossWorld) -> None:
    """The new card's issue cancels the old record (07 -> 09) and tells the platform."""
    card = await world.active_card()
    status, answer = await world.post("/v1/operations/report-formal-loss", loss_body())
    assert status == 200, answer
    reissue = loss_body(materials=["applicant-id-card"], fee_waived=False)
    status, answer = await world.post("/v1/operations/reissue", reissue)
    assert status == 200, answer
    assert answer["card_state"] == "07"
    await world.delivered(2)  # the loss report and the account's freeze (default scope both)
    upstream = world.daemon.upstream
    assert upstream is not None
    sessions = session_factory(world.daemon.engine)
    async with sessions.begin() as session:
        old = (await session.scalars(select(CardRow))).one()
        new = CardRow(
            person_id=old.person_id, region="652300", application_state="1", card_state="03",
            bank_state="opened", card_number="X00000777",
            created_at=world.clock.now(), updated_at=world.clock.now(),
        )  # fmt: skip
        session.add(new)
        await session.flush()
        cancelled = await invalidate_replaced_cards(
            session, new, outbox=upstream.outbox, now=world.clock.now()
        )
        assert [c.card_number for c in cancelled] == [card.aaz500]
    upstream.relay.wake()
    assert (await world.delivered(3))[2] == ("platform", "cancel_card")
    assert card.aaz502 == "9"
    async with sessions() as session:
        rows = (await session.scalars(select(CardRow).order_by(CardRow.id))).all()
        assert [(r.application_state, r.card_state) for r in rows] == [("9", "09"), ("1", "03")]
