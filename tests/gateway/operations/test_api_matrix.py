"""Every catalogue operation through the HTTP API, for every applicant case and channel.

The cases are generated from the catalogue (``gateway/operations/catalogue.py``):
for each operation, channel and applicant case the catalogue accepts, the
happy path from the state the operation needs; and the refusals: each missing
material, every case the catalogue forbids on each channel, the kiosk and ops
terminals where their role may not act, a missing or mismatched supervisor
approval, a fee waiver without approval, an applicant whose age contradicts
the case, an unknown holder, and every card state the state machines refuse.
Each refusal is checked to have changed nothing.

One daemon (SQLite, key store, one terminal per role) serves the whole module;
every test works on holders of its own (fresh identity numbers), so tests do
not see each other's state. The card states a test needs before its operation
(made by production or by the platform, outside the teller API) are set in the
database, as production would leave them.

PIN change, reset and unlock act on the card in the window's reader (the card
services, ``gateway/pin``, tested in ``tests/pin``). This branch has no ``[pin]``
windows, so here they pass every check of the catalogue (role, channel, case,
materials) and then answer 404 ``pin-services-unavailable``, changing nothing:
their refusals are in the matrix, their "happy path" is that 501.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Final

import aiohttp
import pytest
import pytest_asyncio
from sqlalchemy import text
from stdnum.cn import ric

from gateway.config import parse_config
from gateway.daemon import Daemon
from gateway.operations.catalogue import CATALOGUE, Case, Channel, Material, Operation, Role
from gateway.operations.routes import BATCH_CASES, BATCH_ROUTES
from gateway.people.states import APPLICATION, CARD, ApplicationState, CardState, IllegalTransition
from tests.fakes import FakeClock
from tests.gateway.branch import AGENT, jpeg_photo
from tests.gateway.builders import master_key_file

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from gateway.operations.catalogue import OperationSpec, Requirement

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

#: The fake clock's business day (2026-11-23 09:00 UTC is 17:00 in Beijing).
TODAY: Final = date(2026, 11, 23)
ROLES: Final = ("teller", "supervisor", "kiosk", "ops", "archive")
TOKENS: Final = {role: f"matrix-{role}-" + "m" * 32 for role in ROLES}
#: Which terminal sends a request of each channel (online requests are forwarded by a teller).
TERMINAL_OF: Final = {Channel.WINDOW: "teller", Channel.KIOSK: "kiosk", Channel.ONLINE: "teller"}
PHOTO: Final = jpeg_photo()
#: The phone an information change sets.
NEW_PHONE: Final = "13987654321"

# (application state AAZ502, card state) of the named situations a card can be in.
States = tuple[str, str]
SITUATIONS: Final[dict[str, States]] = {
    "batch-data": ("0", "00"),
    "in-production": ("0", "01"),
    "awaiting-pickup": ("0", "02"),
    "picked-up": ("0", "03"),
    "active": ("1", "04"),
    "locked": ("3", "04"),
    "temporary-loss": ("4", "06"),
    "formal-loss": ("2", "05"),
    "reissue-under-way": ("2", "07"),
    "replacement-under-way": ("1", "08"),
    "production-failed": ("0", "17"),
    "cancelled": ("9", "09"),
}
#: The interruptions in force in each situation, as the card came to it (loss,
#: lock or cancellation of an active card); the others have none.
HISTORIES: Final[dict[str, dict[str, list[list[str]]]]] = {
    "locked": {"application": [["lock", "1"]]},
    "temporary-loss": {
        "application": [["temporary-loss", "1"]], "card": [["temporary-loss", "04"]],
    },
    "formal-loss": {"application": [["formal-loss", "1"]], "card": [["formal-loss", "04"]]},
    "reissue-under-way": {
        "application": [["formal-loss", "1"]],
        "card": [["formal-loss", "04"], ["replacement", "05"]],
    },
    "replacement-under-way": {"card": [["replacement", "04"]]},
    "cancelled": {"application": [["cancellation", "1"]], "card": [["cancellation", "04"]]},
}  # fmt: skip
_O = Operation
#: The situation each operation starts from on its happy path (None: no holder yet).
PRIOR: Final[dict[Operation, str | None]] = {
    _O.APPLY: None,
    _O.BATCH_APPLY: None,
    _O.BATCH_TO_SINGLE: "batch-data",
    _O.ACTIVATE: "picked-up",
    _O.REISSUE: "formal-loss",
    _O.REPLACE: "active",
    _O.RENEW: "active",
    _O.STATUS_QUERY: "active",
    _O.INFO_CHANGE: "active",
    _O.PIN_CHANGE: "active",
    _O.PIN_RESET: "active",
    _O.UNLOCK: "locked",
    _O.REPORT_TEMPORARY_LOSS: "active",
    _O.REPORT_FORMAL_LOSS: "active",
    _O.CANCEL_LOSS: "temporary-loss",
    _O.CANCEL: "active",
    _O.ROLLBACK: "cancelled",
    _O.ELECTRONIC_CARD: "active",
    _O.PICKUP: "awaiting-pickup",
}
#: The (application, card) states after the happy path, written out by hand from the rules.
AFTER: Final[dict[Operation, States]] = {
    _O.APPLY: ("0", "01"),
    _O.BATCH_APPLY: ("0", "01"),
    _O.BATCH_TO_SINGLE: ("0", "01"),
    _O.ACTIVATE: ("1", "04"),
    _O.REISSUE: ("2", "07"),
    _O.REPLACE: ("1", "08"),
    _O.RENEW: ("1", "08"),
    _O.STATUS_QUERY: ("1", "04"),
    _O.INFO_CHANGE: ("1", "04"),
    _O.REPORT_TEMPORARY_LOSS: ("4", "06"),
    _O.REPORT_FORMAL_LOSS: ("2", "05"),
    _O.CANCEL_LOSS: ("1", "04"),
    _O.CANCEL: ("9", "09"),
    _O.ROLLBACK: ("1", "04"),
    _O.ELECTRONIC_CARD: ("1", "04"),
    _O.PICKUP: ("0", "03"),
}


# ------------------------------------------------------------------ the branch
@dataclass
class Counter:
    """The running branch seen from its terminals."""

    daemon: Daemon
    http: aiohttp.ClientSession
    keys: itertools.count[int]

    async def call(
        self,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        role: str = "teller",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """POST ``body`` (GET when None) as the terminal of ``role``; status and JSON."""
        sent = {"Authorization": f"Bearer {TOKENS[role]}", **(headers or {})}
        method = "GET" if body is None else "POST"
        if method == "POST":
            sent["Idempotency-Key"] = f"m-{next(self.keys)}"
        async with self.http.request(
            method, self.daemon.urls[0] + path, json=body, headers=sent
        ) as response:
            answer: dict[str, Any] = await response.json(content_type=None)
            if response.status >= 400:
                assert response.content_type == "application/problem+json", answer
            return response.status, answer

    async def operation(
        self,
        operation: Operation,
        body: dict[str, Any],
        *,
        role: str = "teller",
        approval: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Submit one operation, with ``X-Approval-ID`` when given."""
        headers = {"X-Approval-ID": approval} if approval else None
        return await self.call(
            f"/v1/operations/{operation.value}", body, role=role, headers=headers
        )

    async def approve(self, operation: Operation, body: dict[str, Any]) -> str:
        """A supervisor's approval of exactly ``body``."""
        status, approval = await self.call(
            "/v1/approvals",
            {"operation": operation.value, "request": body, "reason": "主管核实后授权"},
            role="supervisor",
        )
        assert status == 201, approval
        return str(approval["id"])

    async def cards(self, id_number: str) -> list[States]:
        """The holder's (application, card) states, through the API."""
        status, found = await self.call(
            "/v1/persons/cards", headers={"X-Identity-Number": id_number}
        )
        if status == 404:
            assert found["code"] == "not-found"
            return []
        assert status == 200, found
        return [(c["application_state"], c["card_state"]) for c in found["cards"]]

    async def applications_of(self, receipt: str) -> int:
        """How many applications the holder of ``receipt`` has."""
        async with self.daemon.engine.connect() as conn:
            count = await conn.scalar(
                text(
                    "SELECT count(*) FROM applications WHERE person_id = "
                    "(SELECT person_id FROM applications WHERE receipt_number = :r)"
                ),
                {"r": receipt},
            )
        return int(count or 0)

    async def holder(self, id_number: str, situation: str) -> str:
        """Apply for ``id_number`` at the window and put the card in ``situation``.

        Returns:
            The receipt number of the application.
        """
        minor = _is_minor(id_number)
        case = Case.MINOR_PROXY if minor else Case.SELF
        body = request(CATALOGUE[Operation.APPLY], case, Channel.WINDOW, id_number)
        status, result = await self.operation(Operation.APPLY, body)
        assert status == 200, result
        receipt = str(result["receipt_number"])
        application, card = SITUATIONS[situation]
        async with self.daemon.engine.begin() as conn:  # as production / the platform leave it
            await conn.execute(
                text(
                    "UPDATE cards SET application_state = :a, card_state = :c, "
                    "interruptions = :i WHERE id = "
                    "(SELECT card_id FROM applications WHERE receipt_number = :r)"
                ),
                {
                    "a": application,
                    "c": card,
                    "i": json.dumps(HISTORIES.get(situation, {})),
                    "r": receipt,
                },
            )
        return receipt


@contextlib.asynccontextmanager
async def running_branch(directory: Path, *, calendar: bool = True) -> AsyncIterator[Counter]:
    """A daemon on SQLite with a key store and a terminal per role.

    With ``calendar``, a calendar file makes 2027 known (test data: New Year's
    Day only), so that deadlines 30 working days after the fake clock's day
    can be computed.
    """
    business: dict[str, str] = {}
    if calendar:
        path = directory / "calendar.toml"
        path.write_text("holidays = [2027-01-01]\n", encoding="utf-8")
        business["calendar_file"] = str(path)
    config = parse_config(
        {
            "data_dir": str(directory),
            "branch": {"id": "T-652300-01", "region": "652300"},
            "server": {"host": "127.0.0.1", "port": 0},
            "database": {"url": f"sqlite+aiosqlite:///{directory / 'branchd.db'}"},
            "logging": {"level": "warning"},
            "keystore": {"master_key": {"file": str(master_key_file(directory))}},
            "business": business,
            "terminals": [
                {"id": f"{role}-01", "role": role, "token": token} for role, token in TOKENS.items()
            ],
        }
    )
    daemon = Daemon(config, clock=FakeClock(autojump=False), rng=random.Random(7))
    await daemon.start(migrate=True)
    try:
        async with aiohttp.ClientSession() as http:
            yield Counter(daemon, http, itertools.count(1))
    finally:
        await daemon.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def counter(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Counter]:
    """One branch for the whole module (every test works on holders of its own)."""
    async with running_branch(tmp_path_factory.mktemp("matrix")) as branch:
        yield branch


# ------------------------------------------------------------- people, bodies
_serial = itertools.count(1)


def _identity(first_birthday: date) -> str:
    n = next(_serial)
    head = f"110105{first_birthday + timedelta(days=n):%Y%m%d}{n % 1000:03d}"
    return head + ric.calc_check_digit(head + "0")  # it reads the first 17 digits


def adult() -> str:
    """A fresh valid identity number of an adult."""
    return _identity(date(1960, 1, 1))


def minor() -> str:
    """A fresh valid identity number of a minor (born 2012 or later)."""
    return _identity(date(2012, 1, 1))


def _is_minor(id_number: str) -> bool:
    return ric.get_birth_date(id_number) > date(TODAY.year - 18, TODAY.month, TODAY.day)


def usual_case(spec: OperationSpec) -> Case:
    """The case tests use when any will do: the holder in person where allowed."""
    cases = spec.allowed_cases(Channel.WINDOW)
    return Case.SELF if Case.SELF in cases else min(cases)


def applicant_for(case: Case) -> str:
    """A fresh applicant of the right age for ``case``."""
    return minor() if case is Case.MINOR_PROXY else adult()


def materials_for(requirements: tuple[Requirement, ...]) -> set[Material]:
    """One material per requirement (none when an earlier choice already satisfies it)."""
    chosen: set[Material] = set()
    for requirement in requirements:
        if not requirement.any_of & chosen:
            chosen.add(min(requirement.any_of))
    return chosen


def request(  # noqa: PLR0913 - one knob per part of a request the tests vary
    spec: OperationSpec,
    case: Case,
    channel: Channel,
    id_number: str,
    *,
    materials: set[Material] | None = None,
    agent: bool = True,
    **extra: Any,  # noqa: ANN401
) -> dict[str, Any]:
    """A complete request of ``case`` on ``channel`` (or with ``materials`` instead)."""
    if materials is None:
        materials = materials_for(spec.requirements_for(case, channel))
    body: dict[str, Any] = {
        "case": case.value,
        "channel": channel.value,
        "applicant": {"id_number": id_number, "name": "张三"},
        "materials": sorted(m.value for m in materials),
    }
    if spec.operation is Operation.INFO_CHANGE:  # what changes: the new phone
        body["applicant"]["phone"] = NEW_PHONE
    if Material.PHOTO in materials:
        body["photo"] = PHOTO
    if agent and case in {Case.ADULT_PROXY, Case.MINOR_PROXY}:
        body["agent"] = {"id_number": AGENT, "name": "李四"}
    body.update(extra)
    return body


# ------------------------------------------------------------------ the matrix
@dataclass(frozen=True)
class Cell:
    """One operation, channel and applicant case."""

    operation: Operation
    channel: Channel
    case: Case

    @property
    def spec(self) -> OperationSpec:
        """The catalogue entry."""
        return CATALOGUE[self.operation]

    @property
    def terminal(self) -> str:
        """The role of the terminal that sends this channel's requests."""
        return TERMINAL_OF[self.channel]

    def __str__(self) -> str:
        """The test id."""
        return f"{self.operation.value}-{self.channel.value}-{self.case.value}"


#: Operations served at /v1/operations (an employer's batch goes through /v1/batches).
OPERATIONS: Final = [o for o in CATALOGUE if o not in BATCH_ROUTES]
SPECS: Final = [CATALOGUE[o] for o in OPERATIONS]
ALLOWED: Final = [
    Cell(spec.operation, channel, case)
    for spec in SPECS
    for channel in Channel
    for case in sorted(spec.allowed_cases(channel))
    if (spec.operation, case) not in BATCH_CASES
]
FORBIDDEN: Final = [
    Cell(spec.operation, channel, case)
    for spec in SPECS
    for channel in Channel
    for case in Case
    if case not in spec.allowed_cases(channel)
]
MISSING: Final = [
    (cell, requirement)
    for cell in ALLOWED
    for requirement in cell.spec.requirements_for(cell.case, cell.channel)
]
PROXIES: Final = [c for c in ALLOWED if c.case in {Case.ADULT_PROXY, Case.MINOR_PROXY}]
APPROVED: Final = [c for c in ALLOWED if c.spec.needs_approval]
WITH_FEE: Final = [c for c in ALLOWED if c.spec.fee_yuan]
#: Operations acting on an existing holder (not applying, not the PIN services).
ON_HOLDER: Final = [o for o in OPERATIONS if PRIOR[o] is not None and not CATALOGUE[o].live_only]


def _illegal() -> list[tuple[Operation, str]]:
    found: list[tuple[Operation, str]] = []
    for operation in OPERATIONS:
        spec = CATALOGUE[operation]
        if PRIOR[operation] is None or spec.live_only:  # the card services: no state here
            continue
        for situation, (application, card) in SITUATIONS.items():
            if operation is Operation.BATCH_TO_SINGLE:
                if card != CardState.INITIAL.value:
                    found.append((operation, situation))
                continue
            try:
                if spec.application_event is not None:
                    APPLICATION.next(ApplicationState(application), spec.application_event)
                if spec.card_event is not None:
                    CARD.next(CardState(card), spec.card_event)
            except IllegalTransition:
                found.append((operation, situation))
    return found


ILLEGAL: Final = _illegal()


def _expected_missing(requirements: tuple[Requirement, ...], given: set[Material]) -> list[str]:
    return [f"missing:{r.code}" for r in requirements if not r.any_of & given]


# ----------------------------------------------------------------- happy paths
@pytest.mark.parametrize("cell", ALLOWED, ids=str)
async def test_happy_path(counter: Counter, cell: Cell) -> None:
    """The operation succeeds from the state it needs, with the right result and states."""
    spec = cell.spec
    id_number = applicant_for(cell.case)
    prior = PRIOR[cell.operation]
    first = await counter.holder(id_number, prior) if prior is not None else None
    body = request(spec, cell.case, cell.channel, id_number)
    approval = await counter.approve(cell.operation, body) if spec.needs_approval else None
    status, result = await counter.operation(
        cell.operation, body, role=cell.terminal, approval=approval
    )
    if spec.live_only:  # every check passed; no [pin] window here to act on the card
        assert (status, result["code"]) == (404, "pin-services-unavailable")
        assert prior is not None
        assert first is not None
        assert await counter.cards(id_number) == [SITUATIONS[prior]]
        assert await counter.applications_of(first) == 1
        return
    assert status == 200, str(result)
    after = AFTER[cell.operation]
    assert result["operation"] == cell.operation.value
    assert result["status"] == ("completed" if spec.completes_at_counter else "accepted")
    assert (result["application_state"], result["card_state"]) == after
    assert (result["fee_yuan"], result["fee_waived"]) == (20 if spec.fee_yuan else 0, False)
    limit = spec.limit_for(cell.channel)
    if limit.immediate:
        assert result["deadline"] == TODAY.isoformat()
    else:
        assert date.fromisoformat(result["deadline"]) >= TODAY + timedelta(days=limit.workdays)
    assert await counter.cards(id_number) == [after]
    status, found = await counter.call(f"/v1/applications/{result['receipt_number']}")
    assert status == 200, found
    assert (found["operation"], found["case"], found["channel"]) == (
        cell.operation.value,
        cell.case.value,
        cell.channel.value,
    )
    assert found["holder"] == id_number[:6] + "*" * 8 + id_number[-4:]
    assert found["terminal"] == f"{cell.terminal}-01"


# -------------------------------------------------------------- missing items
@pytest.mark.parametrize(
    ("cell", "requirement"), MISSING, ids=lambda v: str(v) if isinstance(v, Cell) else v.code
)
async def test_each_missing_material_is_named(
    counter: Counter, cell: Cell, requirement: Requirement
) -> None:
    """Without the materials of one requirement: 422 naming it (and only what is missing)."""
    requirements = cell.spec.requirements_for(cell.case, cell.channel)
    given = materials_for(requirements) - requirement.any_of
    id_number = applicant_for(cell.case)
    body = request(cell.spec, cell.case, cell.channel, id_number, materials=given)
    status, problem = await counter.operation(cell.operation, body, role=cell.terminal)
    assert (status, problem["code"]) == (422, "incomplete-request")
    missing = [m["code"] for m in problem["missing"]]
    assert f"missing:{requirement.code}" in missing
    assert missing == _expected_missing(requirements, given)
    assert all(m["title_zh"] and m["title_en"] for m in problem["missing"])
    assert await counter.cards(id_number) == []  # nothing was created


@pytest.mark.parametrize("cell", PROXIES, ids=str)
async def test_proxy_without_agent_details(counter: Counter, cell: Cell) -> None:
    """A proxy case without the agent's details: 422 naming them."""
    body = request(cell.spec, cell.case, cell.channel, applicant_for(cell.case), agent=False)
    status, problem = await counter.operation(cell.operation, body, role=cell.terminal)
    assert (status, problem["code"]) == (422, "incomplete-request")
    assert [m["code"] for m in problem["missing"]] == ["missing:agent-details"]


@pytest.mark.parametrize("cell", PROXIES, ids=str)
async def test_applicant_age_contradicts_the_case(counter: Counter, cell: Cell) -> None:
    """A minor as an adult's proxy case, or an adult as a minor's: 422 case-mismatch."""
    wrong_age = adult() if cell.case is Case.MINOR_PROXY else minor()
    body = request(cell.spec, cell.case, cell.channel, wrong_age)
    status, problem = await counter.operation(cell.operation, body, role=cell.terminal)
    assert (status, problem["code"]) == (422, "incomplete-request")
    assert [m["code"] for m in problem["missing"]] == ["case-mismatch"]


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
async def test_invalid_identity_number(counter: Counter, operation: Operation) -> None:
    """An identity number failing its check digit is named, before anything is looked up."""
    spec = CATALOGUE[operation]
    channel, case = next((c.channel, c.case) for c in ALLOWED if c.operation is operation)
    good = applicant_for(case)
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    body = request(spec, case, channel, bad)
    status, problem = await counter.operation(operation, body, role=TERMINAL_OF[channel])
    assert (status, problem["code"]) == (422, "incomplete-request")
    assert "invalid:applicant-id-number" in [m["code"] for m in problem["missing"]]


# ------------------------------------------------------- cases and terminals
@pytest.mark.parametrize("cell", FORBIDDEN, ids=str)
async def test_forbidden_case_is_refused(counter: Counter, cell: Cell) -> None:
    """A case the catalogue does not accept on the channel is refused, and nothing changes.

    From the kiosk, an operation the self-service machine may not do at all is
    refused by role (403 forbidden) before its cases are looked at.
    """
    spec = cell.spec
    id_number = applicant_for(cell.case)
    prior = PRIOR[cell.operation]
    if prior is not None:
        await counter.holder(id_number, prior)
    body = request(spec, cell.case, cell.channel, id_number)
    status, problem = await counter.operation(cell.operation, body, role=cell.terminal)
    if cell.channel is Channel.KIOSK and Role.KIOSK not in spec.roles:
        assert (status, problem["code"]) == (403, "forbidden")
    else:
        assert (status, problem["code"]) == (422, "incomplete-request")
        assert [m["code"] for m in problem["missing"]] == ["case-not-allowed"]
    assert await counter.cards(id_number) == ([SITUATIONS[prior]] if prior else [])


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
async def test_terminal_and_channel_refusals(counter: Counter, operation: Operation) -> None:
    """Ops terminals may do no business; kiosk and window terminals keep to their channel."""
    spec = CATALOGUE[operation]
    case = usual_case(spec)
    id_number = applicant_for(case)
    window = request(spec, case, Channel.WINDOW, id_number)
    status, problem = await counter.operation(operation, window, role="ops")
    assert (status, problem["code"]) == (403, "forbidden")
    status, problem = await counter.operation(operation, window, role="kiosk")
    expected = "channel-mismatch" if Role.KIOSK in spec.roles else "forbidden"
    assert (status, problem["code"]) == (403, expected)
    kiosk = request(spec, case, Channel.KIOSK, id_number)
    status, problem = await counter.operation(operation, kiosk, role="teller")
    assert (status, problem["code"]) == (403, "channel-mismatch")
    assert await counter.cards(id_number) == []


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
async def test_archive_terminal(counter: Counter, operation: Operation) -> None:
    """The archive post may run a status query, and nothing else."""
    spec = CATALOGUE[operation]
    id_number = adult()
    case = usual_case(spec)
    prior = PRIOR[operation]
    if prior is not None and Role.ARCHIVE in spec.roles:
        await counter.holder(id_number, prior)
    body = request(spec, case, Channel.WINDOW, id_number)
    status, result = await counter.operation(operation, body, role="archive")
    if Role.ARCHIVE in spec.roles:
        assert status == 200, result
        assert result["status"] == "completed"
    else:
        assert (status, result["code"]) == (403, "forbidden")


# ----------------------------------------------------------------- approvals
@pytest.mark.parametrize("cell", APPROVED, ids=str)
async def test_sensitive_operation_needs_its_own_approval(counter: Counter, cell: Cell) -> None:
    """No approval: 403; an approval of another request: 403; nothing changes either time."""
    id_number = applicant_for(cell.case)
    prior = PRIOR[cell.operation]
    assert prior is not None
    first = await counter.holder(id_number, prior)
    body = request(cell.spec, cell.case, cell.channel, id_number)
    status, problem = await counter.operation(cell.operation, body, role=cell.terminal)
    assert (status, problem["code"]) == (403, "approval-required")
    other = await counter.approve(cell.operation, {**body, "materials": ["applicant-passport"]})
    status, problem = await counter.operation(
        cell.operation, body, role=cell.terminal, approval=other
    )
    assert (status, problem["code"]) == (403, "approval-invalid")
    status, problem = await counter.call(
        "/v1/approvals",
        {"operation": cell.operation.value, "request": body, "reason": "柜员自行授权"},
        role="teller",
    )
    assert (status, problem["code"]) == (403, "forbidden")
    assert await counter.cards(id_number) == [SITUATIONS[prior]]
    assert await counter.applications_of(first) == 1
    approval = await counter.approve(cell.operation, body)
    status, result = await counter.operation(
        cell.operation, body, role=cell.terminal, approval=approval
    )
    assert status == 200, str(result)
    again = await counter.holder(adult(), prior)  # the same approval cannot be used twice
    status, problem = await counter.operation(
        cell.operation, body, role=cell.terminal, approval=approval
    )
    assert (status, problem["code"]) == (403, "approval-invalid")
    assert await counter.applications_of(again) == 1


@pytest.mark.parametrize("cell", WITH_FEE, ids=str)
async def test_fee_waiver_needs_approval(counter: Counter, cell: Cell) -> None:
    """Waiving the fee needs a supervisor's approval of that request; with it, fee waived."""
    id_number = applicant_for(cell.case)
    prior = PRIOR[cell.operation]
    assert prior is not None
    await counter.holder(id_number, prior)
    body = request(cell.spec, cell.case, cell.channel, id_number, fee_waived=True)
    status, problem = await counter.operation(cell.operation, body, role=cell.terminal)
    assert (status, problem["code"]) == (403, "approval-required")
    assert await counter.cards(id_number) == [SITUATIONS[prior]]
    approval = await counter.approve(cell.operation, body)
    status, result = await counter.operation(
        cell.operation, body, role=cell.terminal, approval=approval
    )
    assert status == 200, str(result)
    assert (result["fee_yuan"], result["fee_waived"]) == (20, True)
    assert (result["application_state"], result["card_state"]) == AFTER[cell.operation]


# ------------------------------------------------------------ holder and state
@pytest.mark.parametrize("operation", ON_HOLDER, ids=str)
async def test_unknown_holder(counter: Counter, operation: Operation) -> None:
    """An operation on someone the branch has never seen: 404 person-not-found."""
    spec = CATALOGUE[operation]
    case = usual_case(spec)
    body = request(spec, case, Channel.WINDOW, applicant_for(case))
    approval = await counter.approve(operation, body) if spec.needs_approval else None
    status, problem = await counter.operation(operation, body, approval=approval)
    assert (status, problem["code"]) == (404, "person-not-found")


@pytest.mark.parametrize(("operation", "situation"), ILLEGAL, ids=str)
async def test_illegal_state_is_refused(
    counter: Counter, operation: Operation, situation: str
) -> None:
    """An operation the card's current state does not allow: 409, and nothing changes."""
    spec = CATALOGUE[operation]
    case = usual_case(spec)
    id_number = applicant_for(case)
    first = await counter.holder(id_number, situation)
    body = request(spec, case, Channel.WINDOW, id_number)
    approval = await counter.approve(operation, body) if spec.needs_approval else None
    status, problem = await counter.operation(operation, body, approval=approval)
    assert (status, problem["code"]) == (409, "illegal-transition"), problem
    application, card = SITUATIONS[situation]
    if operation is not Operation.BATCH_TO_SINGLE:
        machine, state = (
            ("application", application)
            if spec.application_event is not None
            and spec.application_event not in APPLICATION.allowed(ApplicationState(application))
            else ("card", card)
        )
        assert (problem["machine"], problem["state"]) == (machine, state)
    assert await counter.cards(id_number) == [SITUATIONS[situation]]
    assert await counter.applications_of(first) == 1


@pytest.mark.parametrize("situation", [s for s in SITUATIONS if s != "cancelled"], ids=str)
async def test_second_card_is_refused(counter: Counter, situation: str) -> None:
    """Applying again while a card is alive: 409 card-exists (reissue or replace instead)."""
    id_number = adult()
    first = await counter.holder(id_number, situation)
    for operation in (Operation.APPLY,):  # a batch's rows are checked by the batch service
        spec = CATALOGUE[operation]
        case = usual_case(spec)
        body = request(spec, case, Channel.WINDOW, id_number)
        status, problem = await counter.operation(operation, body)
        assert (status, problem["code"]) == (409, "card-exists")
    assert await counter.cards(id_number) == [SITUATIONS[situation]]
    assert await counter.applications_of(first) == 1


async def test_card_life_through_the_api(counter: Counter) -> None:
    """One holder's card from application to reissue, every step through the API.

    Only what production and the platform do (make the card, hand it over) is
    set in the database.
    """
    id_number = adult()
    receipt = await counter.holder(id_number, "awaiting-pickup")

    async def step(operation: Operation, *materials: Material) -> tuple[str, str]:
        spec = CATALOGUE[operation]
        body = request(spec, Case.SELF, Channel.WINDOW, id_number)
        if materials:
            body = request(spec, Case.SELF, Channel.WINDOW, id_number, materials=set(materials))
        approval = await counter.approve(operation, body) if spec.needs_approval else None
        status, result = await counter.operation(operation, body, approval=approval)
        assert status == 200, result
        return result["application_state"], result["card_state"]

    assert await step(Operation.PICKUP) == ("0", "03")
    assert await step(Operation.ACTIVATE) == ("1", "04")
    assert await step(Operation.REPORT_TEMPORARY_LOSS) == ("4", "06")
    assert await step(Operation.CANCEL_LOSS) == ("1", "04")
    assert await step(Operation.CANCEL) == ("9", "09")
    assert await step(Operation.ROLLBACK) == ("1", "04")
    assert await step(Operation.REPORT_FORMAL_LOSS) == ("2", "05")
    assert await step(Operation.REISSUE) == ("2", "07")
    assert await counter.applications_of(receipt) == 9
    status, page = await counter.call("/v1/applications?limit=9")
    assert status == 200
    assert [i["operation"] for i in page["items"]][:8] == [
        "reissue", "report-formal-loss", "rollback", "cancel",
        "cancel-loss", "report-temporary-loss", "activate", "pickup",
    ]  # fmt: skip


async def test_apply_after_cancellation_makes_a_new_card(counter: Counter) -> None:
    """A holder whose only card is cancelled may apply again: a second card record."""
    id_number = adult()
    await counter.holder(id_number, "cancelled")
    spec = CATALOGUE[Operation.APPLY]
    status, result = await counter.operation(
        Operation.APPLY, request(spec, Case.SELF, Channel.WINDOW, id_number)
    )
    assert status == 200, str(result)
    assert sorted(await counter.cards(id_number)) == [("0", "01"), ("9", "09")]


async def test_deadline_beyond_the_calendar_is_refused(tmp_path: Path) -> None:
    """An online application due in a year no calendar knows: 503, and nothing is created."""
    async with running_branch(tmp_path, calendar=False) as branch:
        id_number = adult()
        body = request(CATALOGUE[Operation.APPLY], Case.SELF, Channel.ONLINE, id_number)
        status, problem = await branch.operation(Operation.APPLY, body)
        assert (status, problem["code"]) == (503, "calendar-incomplete")
        assert "2027" in problem["detail"]
        assert await branch.cards(id_number) == []
        body = request(CATALOGUE[Operation.APPLY], Case.SELF, Channel.WINDOW, id_number)
        status, result = await branch.operation(Operation.APPLY, body)  # due today: fine
        assert status == 200, str(result)


@pytest.mark.parametrize("operation", [o for o in Operation if CATALOGUE[o].needs_card], ids=str)
async def test_a_cancelled_card_is_not_enough(counter: Counter, operation: Operation) -> None:
    """Information change and the electronic card are for a holder: 409 card-cancelled."""
    spec = CATALOGUE[operation]
    id_number = adult()
    first = await counter.holder(id_number, "cancelled")
    status, problem = await counter.operation(
        operation, request(spec, Case.SELF, Channel.WINDOW, id_number)
    )
    assert (status, problem["code"]) == (409, "card-cancelled"), problem
    assert await counter.cards(id_number) == [SITUATIONS["cancelled"]]
    assert await counter.applications_of(first) == 1


@pytest.mark.parametrize("operation", sorted(BATCH_ROUTES), ids=str)
async def test_batch_operations_have_no_second_route(
    counter: Counter, operation: Operation
) -> None:
    """An employer's batch application and batch-to-single exist only under /v1/batches."""
    spec = CATALOGUE[operation]
    case = min(spec.allowed_cases(Channel.WINDOW))
    body = request(spec, case, Channel.WINDOW, adult())
    status, answer = await counter.operation(operation, body)
    assert status == 404, answer


@pytest.mark.parametrize(
    ("operation", "route"),
    [
        (Operation.PICKUP, "POST /v1/batches/{batch}/pickup"),
        (Operation.REISSUE, "POST /v1/batches"),
        (Operation.REPLACE, "POST /v1/batches"),
        (Operation.RENEW, "POST /v1/batches"),
    ],
    ids=str,
)
async def test_an_employer_case_goes_through_its_batch(
    counter: Counter, operation: Operation, route: str
) -> None:
    """An employer's pickup or 补换卡明细表 is refused here, the batch route named (001 §3.2)."""
    spec = CATALOGUE[operation]
    body = request(spec, Case.EMPLOYER_BATCH, Channel.WINDOW, adult())
    status, answer = await counter.operation(operation, body)
    assert (status, answer["code"]) == (422, "served-by-batches")
    assert answer["route"] == route
    # and a kiosk does not take an employer's batch at all
    body = request(spec, Case.EMPLOYER_BATCH, Channel.KIOSK, adult())
    status, answer = await counter.operation(operation, body, role="kiosk")
    if Role.KIOSK not in spec.roles:
        assert (status, answer["code"]) == (403, "forbidden")
    else:
        assert (status, answer["code"]) == (422, "incomplete-request"), answer
        assert "case-not-allowed" in [m["code"] for m in answer["missing"]]
