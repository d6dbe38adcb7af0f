"""One effect per request: 20 concurrent requests for one holder, each with its own key.

A double-clicking teller or a retrying client sends one operation many times at
once, each with a fresh ``Idempotency-Key``. Exactly one is carried out; every
other gets a 409 problem with a stable code; the database (person, cards,
applications, fees, audit), the outbox and the platform simulator each hold
exactly one effect. The daemon runs with ``[upstream]`` towards the platform
and bank simulators over mutual TLS, on SQLite and on PostgreSQL; each
operation's effect is read back from the simulators' own state.
"""

from __future__ import annotations

import asyncio
import base64
import random
from collections import Counter as Tally
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import aiohttp
import pytest
import pytest_asyncio
from sqlalchemy import func, select, update

from gateway.audit.rows import AuditEntryRow
from gateway.daemon import Daemon
from gateway.demo.world import demo_photo
from gateway.operations.catalogue import CATALOGUE, Case, Channel, Material, Operation
from gateway.operations.rows import ApplicationRow
from gateway.people.rows import CardRow, IdentityDocumentRow, PersonRow
from gateway.upstream import PeerKeysFile, publish_identity
from gateway.upstream.models import OutboxRow, OutboxState
from security.pki import CertificateRole, init_ca, issue
from simulators.bank import BANK_NAME, BankSimulator
from simulators.bank.simulator import Account
from simulators.platform import PlatformSimulator, platform_name
from tests.conftest import BACKENDS, fresh_database, selected_backends
from tests.fakes import FakeClock
from tests.gateway.branch import Branch
from tests.gateway.builders import branch_config
from tests.gateway.operations.test_api_matrix import (
    AFTER,
    HISTORIES,
    NEW_PHONE,
    PHOTO,
    PRIOR,
    SITUATIONS,
    adult,
    request,
)
from tests.gateway.upstream.conftest import BRANCH, PROVINCE, Pki

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from simulators.platform.provinces import Card

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

CONCURRENT: Final = 20
_O = Operation
#: Every operation that changes a holder's state once (the PIN services act on the
#: chip at the window and are refused here; pickup has its own batch flow).
SINGLE_SHOT: Final = (
    _O.APPLY,
    _O.ACTIVATE,
    _O.ELECTRONIC_CARD,
    _O.REISSUE,
    _O.REPLACE,
    _O.RENEW,
    _O.REPORT_TEMPORARY_LOSS,
    _O.REPORT_FORMAL_LOSS,
    _O.CANCEL_LOSS,
    _O.CANCEL,
    _O.ROLLBACK,
)
#: The scope each operation is sent with here (unset: the operation's default).
SCOPE: Final = {_O.ACTIVATE: "both", _O.CANCEL: "both"}
#: What the platform and the bank are told of each operation (outbox operation names).
TOLD: Final = {
    _O.ACTIVATE: {"enable", "activate_financial"},
    _O.INFO_CHANGE: {"change_info", "update_contact"},
    _O.ELECTRONIC_CARD: {"electronic_card"},
    _O.REPORT_TEMPORARY_LOSS: {"report_loss", "freeze"},
    _O.REPORT_FORMAL_LOSS: {"report_loss", "freeze"},
    _O.CANCEL_LOSS: {"cancel_loss", "unfreeze"},
    _O.CANCEL: {"cancel_card", "close_account"},
    _O.ROLLBACK: {"rollback_cancel", "reopen_account"},
}
#: The platform's AAZ502 and the bank's account state after each operation.
UPSTREAM_STATE: Final = {
    _O.ACTIVATE: ("1", "active"),
    _O.INFO_CHANGE: ("1", "active"),
    _O.ELECTRONIC_CARD: ("1", "active"),
    _O.REPORT_TEMPORARY_LOSS: ("4", "frozen"),
    _O.REPORT_FORMAL_LOSS: ("2", "frozen"),
    _O.CANCEL_LOSS: ("1", "active"),
    _O.CANCEL: ("9", "closed"),
    _O.ROLLBACK: ("1", "active"),
}
#: The bank account in each situation, with the interruption in force (as the
#: branch and the bank core both left it).
BANK_IN: Final[dict[str, tuple[str, str | None]]] = {
    "picked-up": ("opened", None),
    "active": ("active", None),
    "temporary-loss": ("frozen", "active"),
    "cancelled": ("closed", "active"),
}
#: A card identification code of the region (the platform enables returned cards only).
CARD_ID: Final = "652300" + "0" * 25 + "1"
#: The codes a request that came second is refused with.
SECOND: Final = {
    "illegal-transition",
    "card-exists",
    "state-conflict",
    "electronic-card-exists",
}


@dataclass
class World:
    """The branch with ``[upstream]`` and the platform simulator it talks to."""

    branch: Branch
    platform: PlatformSimulator
    bank: BankSimulator

    @property
    def daemon(self) -> Daemon:
        """The running daemon."""
        return self.branch.daemon

    async def count(self, what: Any, *where: Any) -> int:  # noqa: ANN401 - SQL expressions
        """How many rows of ``what`` match ``where``."""
        async with self.daemon.engine.connect() as conn:
            query = select(func.count()).select_from(what).where(*where)
            return int((await conn.execute(query)).scalar_one())

    async def holder(self, situation: str) -> tuple[str, Card]:
        """A new holder whose card is in ``situation``, known to the platform."""
        id_number = adult()
        body = request(CATALOGUE[_O.APPLY], Case.SELF, Channel.WINDOW, id_number)
        status, result, _ = await self.branch.call("POST", "/v1/operations/apply", body=body)
        assert status == 200, result
        application, card_state = SITUATIONS[situation]
        card = self.platform.provinces[PROVINCE].add_card(
            id_number, "张三", "652300", aaz502=application, aaz501=CARD_ID
        )
        history = dict(HISTORIES.get(situation, {}))
        card.under = [under for _, under in history.get("application", [])]
        bank_state, bank_under = BANK_IN.get(situation, ("not-opened", None))
        if bank_state != "not-opened":
            self.bank.accounts[card.aaz500] = Account(
                f"6217{len(self.bank.accounts) + 1:015d}", id_number, card.aaz500,
                state=bank_state, under=[bank_under] if bank_under else [],
            )  # fmt: skip
        if bank_under is not None:
            kind = "freeze" if bank_state == "frozen" else "closure"
            history["bank-account"] = [[kind, bank_under]]
        async with self.daemon.engine.begin() as conn:  # as production and the platform left it
            card_id = select(ApplicationRow.card_id).where(
                ApplicationRow.receipt_number == result["receipt_number"]
            )
            await conn.execute(
                update(CardRow)
                .where(CardRow.id == card_id.scalar_subquery())
                .values(
                    application_state=application, card_state=card_state,
                    card_number=card.aaz500, bank_state=bank_state, interruptions=history,
                )
            )  # fmt: skip
        return id_number, card

    async def delivered(self) -> None:
        """Wait until the relay has delivered every outbox message (real TLS round trips)."""
        for _ in range(600):
            if not await self.count(OutboxRow, OutboxRow.state != OutboxState.DELIVERED):
                return
            await asyncio.sleep(0.05)
        raise AssertionError("outbox not delivered within 30 s")


def _pki(directory: Path, clock: FakeClock) -> Pki:
    """A CA, the simulator's server certificate and the branch's client certificate."""
    init_ca(directory, BRANCH, clock.now())
    issue(directory, "upstream-sim", CertificateRole.SERVER, clock.now())
    issue(directory, "branchd", CertificateRole.PEER, clock.now())
    return Pki(directory)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=BACKENDS)
async def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    """One branch per database backend for the module; each test uses holders of its own."""
    backend: str = request.param
    if backend not in selected_backends(request.config):
        pytest.skip(f"--db does not select {backend}")
    directory = tmp_path_factory.mktemp(f"one-effect-{backend}")
    clock = FakeClock(autojump=False)
    pki = _pki(directory / "pki", clock)
    peers = directory / "peer-keys.json"
    simulator = PlatformSimulator(
        ssl_context=pki.server(), trusted=PeerKeysFile(peers), now=clock.now
    )
    bank = BankSimulator(ssl_context=pki.server(), trusted=PeerKeysFile(peers), now=clock.now)
    async with fresh_database(backend, directory, request) as url, simulator, bank:
        for identity in simulator.identities.values():
            publish_identity(peers, identity)
        publish_identity(peers, bank.identity)
        config = branch_config(
            url,
            directory,
            logging={"level": "warning"},
            upstream={
                "peer_keys": str(peers),
                "tls": {
                    "cert": str(pki.directory / "branchd.pem"),
                    "key": str(pki.directory / "branchd.key"),
                    "ca": str(pki.directory / "ca.pem"),
                },
                "platform": {
                    "url": simulator.url(PROVINCE, "json"),
                    "dialect": "json",
                    "receiver": platform_name(PROVINCE),
                },
                "bank": {"url": bank.url, "receiver": BANK_NAME},
            },
        )
        daemon = Daemon(config, clock=clock, rng=random.Random(7))
        await daemon.start(migrate=True)
        try:
            async with aiohttp.ClientSession() as http:
                yield World(Branch(daemon, http), simulator, bank)
        finally:
            await daemon.stop()


async def _send_at_once(world: World, operation: Operation, body: dict[str, Any]) -> Tally[Any]:
    """Send ``body`` CONCURRENT times at once, each with its own key (and approval)."""
    path = f"/v1/operations/{operation.value}"
    headers: list[dict[str, str]] = [{} for _ in range(CONCURRENT)]
    if CATALOGUE[operation].needs_approval:
        for sent in headers:  # one approval per request: each is used once
            status, approval, _ = await world.branch.call(
                "POST", "/v1/approvals", role="supervisor",
                body={"operation": operation.value, "request": body, "reason": "主管核实后授权"},
            )  # fmt: skip
            assert status == 201, approval
            sent["X-Approval-ID"] = approval["id"]
    answers = await asyncio.gather(
        *(world.branch.call("POST", path, body=body, headers=sent) for sent in headers)
    )
    for status, answer, reply in answers:
        if status != 200:
            assert reply.content_type == "application/problem+json", answer
    return Tally(
        "ok" if status == 200 else (status, answer.get("code")) for status, answer, _ in answers
    )


@pytest.mark.parametrize("operation", SINGLE_SHOT, ids=str)
async def test_twenty_at_once_make_one_effect(world: World, operation: Operation) -> None:
    """Exactly one of 20 concurrent requests is carried out; the store holds one effect."""
    spec = CATALOGUE[operation]
    prior = PRIOR[operation]
    if prior is None:
        id_number, platform_card = adult(), None
    else:
        id_number, platform_card = await world.holder(prior)
    outbox_before = await world.count(OutboxRow)
    received_before = world.platform.counters.received + world.bank.counters.received
    audit_before = await world.count(
        AuditEntryRow, AuditEntryRow.action == f"operation.{operation}"
    )
    persons_before = await world.count(PersonRow)
    body = request(spec, Case.SELF, Channel.WINDOW, id_number)
    if operation in SCOPE:
        body["scope"] = SCOPE[operation]

    tally = await _send_at_once(world, operation, body)

    assert tally["ok"] == 1, tally
    assert sum(tally.values()) == CONCURRENT
    assert {code for key, code in (k for k in tally if k != "ok")} <= SECOND, tally
    assert {key[0] for key in tally if key != "ok"} == {409}, tally
    async with world.daemon.engine.connect() as conn:
        person = (
            await conn.execute(
                select(ApplicationRow.person_id)
                .where(ApplicationRow.operation == operation.value)
                .order_by(ApplicationRow.id.desc())
                .limit(1)
            )
        ).scalar_one()
        applications = (
            await conn.execute(
                select(ApplicationRow.fee_yuan).where(
                    ApplicationRow.person_id == person, ApplicationRow.operation == operation.value
                )
            )
        ).all()
        cards = (
            await conn.execute(
                select(CardRow.application_state, CardRow.card_state).where(
                    CardRow.person_id == person
                )
            )
        ).all()
    assert [fee for (fee,) in applications] == [20 if spec.fee_yuan else 0]  # one receipt, one fee
    assert [tuple(c) for c in cards] == [AFTER[operation]]  # the state changed once
    assert await world.count(PersonRow) == persons_before + (1 if prior is None else 0)
    audit = await world.count(AuditEntryRow, AuditEntryRow.action == f"operation.{operation}")
    assert audit == audit_before + 1
    told = TOLD.get(operation, set())
    assert await world.count(OutboxRow) == outbox_before + len(told)
    if told:
        async with world.daemon.engine.connect() as conn:
            sent = (
                await conn.execute(
                    select(OutboxRow.operation).order_by(OutboxRow.id.desc()).limit(len(told))
                )
            ).all()
        assert {op for (op,) in sent} == told
        await world.delivered()
        received = world.platform.counters.received + world.bank.counters.received
        assert received == received_before + len(told)
        assert platform_card is not None
        account = world.bank.accounts[platform_card.aaz500]
        assert (platform_card.aaz502, account.state) == UPSTREAM_STATE[operation]
        if operation is _O.INFO_CHANGE:
            assert platform_card.phone == account.phone == NEW_PHONE
        if operation is _O.ELECTRONIC_CARD:
            assert platform_card.ecard_no


async def test_twenty_information_changes_at_once_end_alike_everywhere(world: World) -> None:
    """Twenty changes of one holder's phone, at once: each is one receipt, applied in turn.

    Every change is a request of its own (not a duplicate), so all are carried
    out, one after the other under the holder's lock; the outbox keeps their
    order per card, so the platform and the bank end with the phone the branch
    stored last.
    """
    id_number, platform_card = await world.holder("active")
    spec = CATALOGUE[_O.INFO_CHANGE]
    phones = [f"1390000{i:04d}" for i in range(CONCURRENT)]
    bodies = []
    for phone in phones:
        body = request(spec, Case.SELF, Channel.WINDOW, id_number)
        body["applicant"]["phone"] = phone
        bodies.append(body)
    answers = await asyncio.gather(
        *(world.branch.call("POST", "/v1/operations/info-change", body=b) for b in bodies)
    )
    assert [status for status, _, _ in answers] == [200] * CONCURRENT
    assert len({answer["receipt_number"] for _, answer, _ in answers}) == CONCURRENT
    await world.delivered()
    async with world.daemon.engine.connect() as conn:
        person = (
            await conn.execute(
                select(PersonRow)
                .join(CardRow, CardRow.person_id == PersonRow.id)
                .where(CardRow.card_number == platform_card.aaz500)
            )
        ).one()
    assert person.phone_enc is not None
    assert world.daemon.teller is not None
    stored = world.daemon.teller.operations.vault.open("phone", person.phone_enc)
    assert stored in phones
    assert platform_card.phone == world.bank.accounts[platform_card.aaz500].phone == stored


async def test_a_stored_person_is_never_overwritten(world: World) -> None:
    """Applying again with another name and phone is refused and leaves the stored person as is."""
    id_number = adult()
    first = request(CATALOGUE[_O.APPLY], Case.SELF, Channel.WINDOW, id_number)
    status, result, _ = await world.branch.call("POST", "/v1/operations/apply", body=first)
    assert status == 200, result
    async with world.daemon.engine.connect() as conn:
        stored = (
            await conn.execute(select(PersonRow).order_by(PersonRow.id.desc()).limit(1))
        ).one()
    again = {**first, "applicant": {"id_number": id_number, "name": "王五", "phone": "13912345678"}}
    status, problem, _ = await world.branch.call("POST", "/v1/operations/apply", body=again)
    assert (status, problem["code"]) == (409, "card-exists")
    async with world.daemon.engine.connect() as conn:
        now = (await conn.execute(select(PersonRow).where(PersonRow.id == stored.id))).one()
    assert (now.name_enc, now.phone_enc, now.address_enc) == (
        stored.name_enc,
        stored.phone_enc,
        stored.address_enc,
    )


async def _reissue_owing(world: World, *, channel: Channel = Channel.WINDOW) -> str:
    """A holder whose card was formally lost reissues it: the receipt of an application owing 20."""
    id_number, _ = await world.holder("formal-loss")
    body = request(CATALOGUE[_O.REISSUE], Case.SELF, channel, id_number)
    role = "kiosk" if channel is Channel.KIOSK else "teller"
    status, result, _ = await world.branch.call(
        "POST", "/v1/operations/reissue", body=body, role=role
    )
    assert status == 200, result
    assert (result["fee_yuan"], result["fee_status"]) == (20, "due")
    status, found, _ = await world.branch.call(
        "GET", f"/v1/applications/{result['receipt_number']}"
    )
    assert found["progress"]["code"] == "fee-due"
    return str(result["receipt_number"])


def _account(world: World, state: str = "active") -> str:
    """An account in the bank core the citizen names for the debit."""
    number = f"D{len(world.bank.accounts) + 1:08d}"
    world.bank.accounts[number] = Account(f"6217{number}", adult(), number, state=state)
    return number


@pytest.mark.parametrize("method", ["cash", "pos", "debit"])
async def test_twenty_fee_settlements_at_once_settle_once(world: World, method: str) -> None:
    """One of 20 concurrent settlements is carried out; the bank debits once at most."""
    receipt = await _reissue_owing(world)
    body: dict[str, Any] = {"method": method}
    if method == "pos":
        body["reference"] = "POS-000123"
    if method == "debit":
        body["account"] = _account(world)
    debited_before = len(world.bank.receipts)
    answers = await asyncio.gather(
        *(
            world.branch.call("POST", f"/v1/applications/{receipt}/fee", body=body)
            for _ in range(CONCURRENT)
        )
    )
    ok = [answer for status, answer, _ in answers if status == 200]
    refused = Tally(answer["code"] for status, answer, _ in answers if status != 200)
    assert len(ok) == 1, answers
    assert set(refused) <= {"fee-not-due", "fee-settling"}, refused
    settled = ok[0]
    assert (settled["status"], settled["method"], settled["yuan"]) == ("settled", method, 20)
    assert settled["fee_receipt"] == f"F{receipt}"
    status, found, _ = await world.branch.call("GET", f"/v1/applications/{receipt}")
    assert (status, found["fee_status"], found["fee_receipt"]) == (200, "settled", f"F{receipt}")
    debits = world.bank.receipts[debited_before:]
    if method == "debit":
        assert [(number, fen) for _, number, fen in debits] == [(body["account"], 2000)]
        assert world.bank.accounts[body["account"]].fees_fen == 2000
        assert settled["reference"] == debits[0][0]  # the bank's receipt
    else:
        assert debits == []


async def test_a_refused_debit_leaves_the_fee_due(world: World) -> None:
    """A frozen account is not debited; the fee stays due and is then settled in cash."""
    receipt = await _reissue_owing(world)
    frozen = _account(world, state="frozen")
    path = f"/v1/applications/{receipt}/fee"
    status, problem, _ = await world.branch.call(
        "POST", path, body={"method": "debit", "account": frozen}
    )
    assert (status, problem["code"]) == (409, "fee-debit-refused")
    assert world.bank.accounts[frozen].fees_fen == 0
    status, found, _ = await world.branch.call("GET", f"/v1/applications/{receipt}")
    assert found["fee_status"] == "due"
    status, settled, _ = await world.branch.call("POST", path, body={"method": "cash"})
    assert (status, settled["method"]) == (200, "cash")
    status, day, _ = await world.branch.call("GET", "/v1/fees")
    assert status == 200, day
    assert {t["key"] for t in day["settled"]} >= {"cash"}
    assert day["settled_yuan"] >= 20


async def test_a_kiosk_reissue_owes_its_fee_at_the_window(world: World) -> None:
    """The kiosk accepts the reissue fee-due; only the window takes the money."""
    receipt = await _reissue_owing(world, channel=Channel.KIOSK)
    path = f"/v1/applications/{receipt}/fee"
    status, problem, _ = await world.branch.call(
        "POST", path, body={"method": "cash"}, role="kiosk"
    )
    assert (status, problem["code"]) == (403, "forbidden")
    status, settled, _ = await world.branch.call("POST", path, body={"method": "cash"})
    assert (status, settled["status"]) == (200, "settled")


async def _stored_photo(world: World, id_number: str) -> bytes | None:
    """The photo on the holder's record, decrypted."""
    assert world.daemon.teller is not None
    vault = world.daemon.teller.operations.vault
    async with world.daemon.engine.connect() as conn:
        sealed = (
            await conn.execute(
                select(PersonRow.photo_enc).where(PersonRow.id_index == vault.index(id_number))
            )
        ).scalar_one()
    return None if sealed is None else vault.open_bytes("photo", sealed)


async def test_the_photo_is_kept_replaced_and_not_asked_twice(world: World) -> None:
    """Apply keeps the photo (encrypted); a reissue's new photo replaces it; a record spares it."""
    id_number, _ = await world.holder("formal-loss")  # applied with PHOTO
    assert await _stored_photo(world, id_number) == base64.b64decode(PHOTO)
    async with world.daemon.engine.connect() as conn:
        sealed = (await conn.execute(select(PersonRow.photo_enc))).scalars().all()
    assert all(base64.b64decode(PHOTO) not in (blob or b"") for blob in sealed)  # sealed

    body = request(CATALOGUE[_O.REISSUE], Case.SELF, Channel.WINDOW, id_number)
    new = demo_photo()
    status, result, _ = await world.branch.call(
        "POST", "/v1/operations/reissue", body={**body, "photo": new}
    )
    assert status == 200, result
    assert await _stored_photo(world, id_number) == base64.b64decode(new)

    again, _ = await world.holder("cancelled")  # a holder whose card was cancelled
    spec = CATALOGUE[_O.APPLY]
    no_photo = request(
        spec, Case.SELF, Channel.WINDOW, again, materials={Material.APPLICANT_ID_CARD}
    )
    status, result, _ = await world.branch.call("POST", "/v1/operations/apply", body=no_photo)
    assert status == 200, result  # 002 §6.1.3.2 b): the record has a photo
    stranger = request(
        spec, Case.SELF, Channel.WINDOW, adult(), materials={Material.APPLICANT_ID_CARD}
    )
    status, problem, _ = await world.branch.call("POST", "/v1/operations/apply", body=stranger)
    assert (status, problem["code"]) == (422, "incomplete-request")
    assert [m["code"] for m in problem["missing"]] == ["missing:photo"]


async def test_twenty_withdrawals_at_once_give_the_debit_back_once(world: World) -> None:
    """A reissue paid by debit, withdrawn 20 times at once: one withdrawal, one 冲正 at the bank."""
    receipt = await _reissue_owing(world)
    account = _account(world)
    path = f"/v1/applications/{receipt}"
    status, fee, _ = await world.branch.call(
        "POST", f"{path}/fee", body={"method": "debit", "account": account}
    )
    assert (status, world.bank.accounts[account].fees_fen) == (200, 2000), fee
    body = {"reason": "申请人决定暂不补卡"}
    status, problem, _ = await world.branch.call("POST", f"{path}/withdrawal", body=body)
    assert (status, problem["code"]) == (403, "forbidden")  # a teller may not
    reversals_before = await world.count(OutboxRow, OutboxRow.operation == "reverse_fee")
    answers = await asyncio.gather(
        *(
            world.branch.call("POST", f"{path}/withdrawal", body=body, role="supervisor")
            for _ in range(CONCURRENT)
        )
    )
    ok = [answer for status, answer, _ in answers if status == 200]
    refused = Tally(answer["code"] for status, answer, _ in answers if status != 200)
    assert len(ok) == 1, answers
    assert set(refused) <= {"not-withdrawable", "state-conflict"}, refused
    assert (ok[0]["status"], ok[0]["fee_status"], ok[0]["card_state"]) == (
        "withdrawn",
        "reversed",
        "05",  # the lost card is formally lost again, as before the reissue
    )
    assert await world.count(OutboxRow, OutboxRow.operation == "reverse_fee") == (
        reversals_before + 1
    )
    await world.delivered()
    assert world.bank.accounts[account].fees_fen == 0
    assert fee["reference"] in world.bank.reversed
    status, found, _ = await world.branch.call("GET", path)
    assert (found["status"], found["fee_status"], found["overdue"]) == (
        "withdrawn",
        "reversed",
        False,
    )
    assert found["progress"] == {"code": "returned", "zh": "已退回", "en": "Withdrawn"}


async def test_a_withdrawn_reissue_may_be_asked_again(world: World) -> None:
    """Withdrawn before payment: the fee is void, the card back in formal loss, a new reissue OK."""
    id_number, _ = await world.holder("formal-loss")
    reissue = request(CATALOGUE[_O.REISSUE], Case.SELF, Channel.WINDOW, id_number)
    status, first, _ = await world.branch.call("POST", "/v1/operations/reissue", body=reissue)
    assert status == 200, first
    path = f"/v1/applications/{first['receipt_number']}/withdrawal"
    status, out, _ = await world.branch.call(
        "POST", path, body={"reason": "材料不全，改日再办"}, role="supervisor"
    )
    assert (status, out["fee_status"], out["card_state"]) == (200, "void", "05"), out
    status, problem, _ = await world.branch.call(
        "POST", path, body={"reason": "再次撤销"}, role="supervisor"
    )
    assert (status, problem["code"]) == (409, "not-withdrawable")
    status, again, _ = await world.branch.call("POST", "/v1/operations/reissue", body=reissue)
    assert (status, again["card_state"], again["fee_status"]) == (200, "07", "due"), again


async def test_a_teller_sees_each_effect_where_it_belongs(world: World) -> None:
    """Read back as a teller would: the new phone, the platform's state, a loss undone exactly."""
    id_number, platform_card = await world.holder("active")
    change = request(CATALOGUE[_O.INFO_CHANGE], Case.SELF, Channel.WINDOW, id_number)
    change["applicant"]["address"] = "昌吉市延安北路 100 号"
    status, result, _ = await world.branch.call("POST", "/v1/operations/info-change", body=change)
    assert status == 200, result
    status, person, _ = await world.branch.call(
        "GET", "/v1/persons/cards", headers={"X-Identity-Number": id_number}
    )
    assert status == 200, person
    assert person["phone"] == NEW_PHONE[:3] + "****" + NEW_PHONE[-4:]
    assert person["address"] == "昌吉市延安北****"
    await world.delivered()
    assert (platform_card.phone, platform_card.address) == (NEW_PHONE, "昌吉市延安北路 100 号")

    # A card awaiting pickup: a temporary loss and its cancellation leave it awaiting pickup,
    # here and on the platform (AAZ502 0, not enabled).
    waiting, waiting_card = await world.holder("awaiting-pickup")
    for operation in (_O.REPORT_TEMPORARY_LOSS, _O.CANCEL_LOSS):
        body = request(CATALOGUE[operation], Case.SELF, Channel.WINDOW, waiting)
        status, result, _ = await world.branch.call(
            "POST", f"/v1/operations/{operation.value}", body=body
        )
        assert status == 200, result
    assert (result["application_state"], result["card_state"]) == ("0", "02")
    await world.delivered()
    assert waiting_card.aaz502 == "0"


async def test_twenty_archive_waivers_at_once_waive_once(world: World) -> None:
    """One supervisor's waiver of 20 sent at once is kept; the others find it waived."""
    id_number = adult()
    body = request(CATALOGUE[_O.APPLY], Case.SELF, Channel.WINDOW, id_number)
    status, result, _ = await world.branch.call("POST", "/v1/operations/apply", body=body)
    assert (status, result["archive_status"]) == (200, "incomplete"), result
    path = f"/v1/applications/{result['receipt_number']}/archive-waiver"
    answers = await asyncio.gather(
        *(
            world.branch.call("POST", path, body={"reason": f"扫描仪故障 {n}"}, role="supervisor")
            for n in range(CONCURRENT)
        )
    )
    ok = [answer for status, answer, _ in answers if status == 200]
    refused = Tally((status, answer["code"]) for status, answer, _ in answers if status != 200)
    assert len(ok) == 1, answers
    assert refused == Tally({(409, "archive-not-incomplete"): CONCURRENT - 1}), refused
    async with world.daemon.engine.connect() as conn:
        stored = (
            await conn.execute(
                select(ApplicationRow.archive_status, ApplicationRow.archive_waiver).where(
                    ApplicationRow.receipt_number == result["receipt_number"]
                )
            )
        ).one()
    assert tuple(stored) == ("waived", ok[0]["reason"])  # the one answered, no other


async def test_twenty_people_showing_one_passport_at_once_register_it_once(world: World) -> None:
    """20 new applicants at once with the same passport: one holds it, 19 are refused, no trace."""
    passport = {"type": "passport", "number": f"E{random.randrange(10**7, 10**8)}"}
    bodies = []
    for _ in range(CONCURRENT):
        body = request(CATALOGUE[_O.APPLY], Case.SELF, Channel.WINDOW, adult())
        body["applicant"] = {**body["applicant"], "document": passport}
        bodies.append(body)
    persons = await world.count(PersonRow)
    documents = await world.count(IdentityDocumentRow)
    answers = await asyncio.gather(
        *(world.branch.call("POST", "/v1/operations/apply", body=body) for body in bodies)
    )
    tally = Tally(
        "ok" if status == 200 else (status, answer["code"]) for status, answer, _ in answers
    )
    assert tally == Tally({"ok": 1, (409, "document-taken"): CONCURRENT - 1}), tally
    # one new person with their identity card and the passport; nobody else left behind
    assert await world.count(PersonRow) == persons + 1
    assert await world.count(IdentityDocumentRow) == documents + 2
