"""The operations' part of the teller API.

Every operation of the catalogue, approvals, and the queries of applications
and of a holder's cards.

Every operation of the catalogue is ``POST /v1/operations/{operation}`` (the
PIN services, which act on the card at the window, are the card services'
section); approvals are ``POST /v1/approvals``; queries are GETs (the identity
number travels in a header, never in a URL that proxies and access logs keep).

The business service refuses with an
:class:`~gateway.operations.errors.OperationReason`, and the approvals it takes
with an :class:`~gateway.approvals.errors.ApprovalReason`. Their problems are
registered here, beside :data:`PROBLEMS`, the one table that answers each reason
(the section's ``problems``). Served with the other sections, the table answers
these refusals wherever they are raised: in the batch and card-service requests
(which call the business service) and in the stock adjustments (which take
approvals) too. Other features import the problems they answer with as well
(``incomplete-request``, ``card-not-found``, ...) from here. A handler itself
raises a problem only for what HTTP brought: a receipt number that cannot be one,
an unknown holder in a query.

Why one module of this size: the operations' section, its handlers, its problem
table and its OpenAPI paths are read together (each path beside its handler's
rules).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web
from sqlalchemy import bindparam, select

from gateway.approvals.errors import ApprovalReason
from gateway.operations.catalogue import CATALOGUE, Case, Channel, Operation, OperationSpec, Role
from gateway.operations.completeness import decoded_photo
from gateway.operations.errors import OperationReason
from gateway.operations.progress import ProgressStep, progress_of
from gateway.operations.receipts import ReceiptNumber, ReceiptNumberError
from gateway.operations.rows import ApplicationRow
from gateway.operations.schemas import (
    ApplicationOut,
    ApprovalIn,
    ApprovalOut,
    CardOut,
    DocumentIn,
    FeeDayOut,
    FeeIn,
    FeeOut,
    FeeTotal,
    OperationRequest,
    OperationResult,
    ProgressOut,
    VerificationIn,
    VerificationOut,
    WithdrawalIn,
    WithdrawalOut,
)
from gateway.operations.service import is_overdue
from gateway.operations.status_cache import STATUS_CACHE, StatusCache
from gateway.people.rows import CardRow, IdentityDocumentRow, PersonRow
from gateway.runtime.business_day import day_start, local_day
from gateway.runtime.http.auth import Terminal, require_role
from gateway.runtime.http.idempotency import request_digest
from gateway.runtime.http.kit import (
    APPROVAL_HEADER,
    CURSOR_PATTERN,
    IDENTITY_NUMBER_PATTERN,
    PAGE_MAX,
    ApiSection,
    OpenApiKit,
    TellerContext,
    approval_header,
    decode_cursor,
    encode_cursor,
    identity_number_header,
    json_response,
    page_limit,
    parse_body,
    post_once,
    query_choice,
    query_day,
    query_terminal,
)
from gateway.runtime.problems import NOT_FOUND, Problem, ProblemError, register
from security.redaction import mask_address, mask_name, mask_personal_numbers

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import date
    from enum import StrEnum

    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    from gateway.operations.service import BusinessService
    from gateway.people.vault import PersonalDataVault

__all__ = [
    "APPROVAL_INVALID",
    "APPROVAL_REQUIRED",
    "BANK_NOT_CONFIGURED",
    "CALENDAR_INCOMPLETE",
    "CARD_CANCELLED",
    "CARD_EXISTS",
    "CARD_NOT_FOUND",
    "CHANNEL_MISMATCH",
    "ELECTRONIC_CARD_EXISTS",
    "FEE_DEBIT_REFUSED",
    "FEE_NOT_DUE",
    "FEE_SETTLING",
    "ILLEGAL_TRANSITION",
    "INCOMPLETE",
    "OPERATIONS",
    "PERSON_NOT_FOUND",
    "PIN_SERVICES_UNAVAILABLE",
    "PROBLEMS",
    "SECTION",
    "STATE_CONFLICT",
    "UPSTREAM_UNAVAILABLE",
    "OperationsContext",
    "reader_terminal",
    "receipt_of_path",
]

INCOMPLETE: Final = register(
    "incomplete-request", 422, "Request incomplete", "申办材料不齐全或不符合要求"
)
APPROVAL_REQUIRED: Final = register(
    "approval-required", 403, "Supervisor approval required", "需主管授权"
)
APPROVAL_INVALID: Final = register(
    "approval-invalid", 403, "Approval not valid for this request", "授权无效或与本次业务不符"
)
PERSON_NOT_FOUND: Final = register("person-not-found", 404, "Person not found", "未找到该人员")
CARD_NOT_FOUND: Final = register("card-not-found", 404, "Card not found", "未找到社保卡")
CARD_CANCELLED: Final = register("card-cancelled", 409, "The card is cancelled", "社保卡已注销")
CARD_EXISTS: Final = register(
    "card-exists", 409, "The person already has a card", "申办人已有社保卡，请办理补换卡"
)
STATE_CONFLICT: Final = register(
    "state-conflict",
    409,
    "Another request for this holder changed the same record",
    "该申办人的另一笔业务已变更同一记录",
    retryable=True,
)
ILLEGAL_TRANSITION: Final = register(
    "illegal-transition", 409, "Not allowed in the card's current state", "卡片当前状态不允许此业务"
)
CHANNEL_MISMATCH: Final = register(
    "channel-mismatch", 403, "Channel does not match the terminal", "办理渠道与终端类型不符"
)
PIN_SERVICES_UNAVAILABLE: Final = register(
    "pin-services-unavailable",
    404,  # the branch has no such service: not an outage worth a retry
    "PIN services are not available at this branch yet",
    "本网点暂不能办理密码业务",
)
UPSTREAM_UNAVAILABLE: Final = register(
    "upstream-unavailable",
    503,
    "The provincial platform is unavailable; nothing was queued",
    "省级平台暂时无法连接，本次业务未排队",
)
CALENDAR_INCOMPLETE: Final = register(
    "calendar-incomplete",
    503,
    "The working-day calendar does not cover the deadline",
    "工作日历未包含办结期限所在年度",
    retryable=False,
)
BANK_NOT_CONFIGURED: Final = register(
    "bank-not-configured",
    501,
    "The bank core is not configured at this branch; the bank account cannot be changed here",
    "本网点未接入合作银行核心系统，无法办理银行账户业务",
)
DOCUMENT_TAKEN: Final = register(
    "document-taken",
    409,
    "The identity document is on record for another person",
    "该身份证件已登记在其他人员名下",
)
NOT_WITHDRAWABLE: Final = register(
    "not-withdrawable",
    409,
    "The application cannot be withdrawn: done, withdrawn, or its card is being made",
    "该业务已办结、已撤销或正在制卡，不能撤销",
)
FEE_NOT_DUE: Final = register(
    "fee-not-due", 409, "The application owes no fee now", "该业务当前无待缴工本费"
)
FEE_SETTLING: Final = register(
    "fee-settling",
    409,
    "A bank debit of the fee is under way",
    "工本费正在银行扣款",
    retryable=True,
)
FEE_DEBIT_REFUSED: Final = register(
    "fee-debit-refused", 409, "The bank refused the fee debit", "银行拒绝扣缴工本费"
)
DAY_CLOSED: Final = register(
    "day-closed",
    409,
    "The business day is closed: nothing more is posted on it",
    "当日已日终结账，不能再办理记账业务",
)
NOT_VERIFIABLE: Final = register(
    "not-verifiable",
    409,
    "Not an online application awaiting verification: verified, done or withdrawn already",
    "该业务不是待核验的线上申请（已核验、已办结或已撤销）",
)
ELECTRONIC_CARD_EXISTS: Final = register(
    "electronic-card-exists",
    409,
    "This card already has its electronic card",
    "该社保卡已申领电子社保卡",
)

#: The problem each refusal of the business service and of the approvals is answered
#: with: the section's table. The approvals have no section of their own: this table
#: answers them for every request that takes one (the stock adjustments' too).
PROBLEMS: Final[Mapping[StrEnum, Problem]] = {
    OperationReason.INCOMPLETE: INCOMPLETE,
    OperationReason.PERSON_NOT_FOUND: PERSON_NOT_FOUND,
    OperationReason.CARD_NOT_FOUND: CARD_NOT_FOUND,
    OperationReason.CARD_CANCELLED: CARD_CANCELLED,
    OperationReason.CARD_EXISTS: CARD_EXISTS,
    OperationReason.STATE_CONFLICT: STATE_CONFLICT,
    OperationReason.ILLEGAL_TRANSITION: ILLEGAL_TRANSITION,
    OperationReason.CHANNEL_MISMATCH: CHANNEL_MISMATCH,
    OperationReason.PIN_SERVICES_UNAVAILABLE: PIN_SERVICES_UNAVAILABLE,
    OperationReason.UPSTREAM_UNAVAILABLE: UPSTREAM_UNAVAILABLE,
    OperationReason.CALENDAR_INCOMPLETE: CALENDAR_INCOMPLETE,
    OperationReason.BANK_NOT_CONFIGURED: BANK_NOT_CONFIGURED,
    OperationReason.ELECTRONIC_CARD_EXISTS: ELECTRONIC_CARD_EXISTS,
    OperationReason.APPLICATION_NOT_FOUND: NOT_FOUND,
    OperationReason.FEE_NOT_DUE: FEE_NOT_DUE,
    OperationReason.NOT_WITHDRAWABLE: NOT_WITHDRAWABLE,
    OperationReason.NOT_VERIFIABLE: NOT_VERIFIABLE,
    OperationReason.DAY_CLOSED: DAY_CLOSED,
    OperationReason.DOCUMENT_TAKEN: DOCUMENT_TAKEN,
    OperationReason.FEE_SETTLING: FEE_SETTLING,
    OperationReason.FEE_DEBIT_REFUSED: FEE_DEBIT_REFUSED,
    ApprovalReason.REQUIRED: APPROVAL_REQUIRED,
    ApprovalReason.INVALID: APPROVAL_INVALID,
}

INVALID_RECEIPT: Final = register(
    "invalid-receipt-number", 400, "Not a valid receipt number", "受理编号无效"
)
APPLICATION_STATUSES: Final = ("accepted", "completed", "withdrawn")
#: Operations of an employer's batch, served by the batch routes (one path each, with
#: the batch service's rules: its rows, production and the 96-hour enable).
BATCH_ROUTES: Final = {
    Operation.BATCH_APPLY: "POST /v1/batches",
    Operation.BATCH_TO_SINGLE: "POST /v1/batches/{batch}/rows/{line}/to-single",
}
#: (operation, case) pairs served by the batch routes.
BATCH_CASES: Final = {
    (Operation.PICKUP, Case.EMPLOYER_BATCH): "POST /v1/batches/{batch}/pickup",
    # 补换卡明细表 (001 §3.2): the card list with "operation": "reissue" / "replace" / "renew"
    (Operation.REISSUE, Case.EMPLOYER_BATCH): "POST /v1/batches",
    (Operation.REPLACE, Case.EMPLOYER_BATCH): "POST /v1/batches",
    (Operation.RENEW, Case.EMPLOYER_BATCH): "POST /v1/batches",
}
SERVED_BY_BATCHES: Final = register(
    "served-by-batches",
    422,
    "An employer's batch operation goes through its batch",
    "单位批量业务请通过批次办理",
)
ARCHIVE_STATUSES: Final = ("not-required", "incomplete", "complete", "waived")
INVALID_DAY: Final = register("invalid-day", 400, "Not a valid day", "日期无效")
#: Who takes the fees at the window.
_FEE_DESK: Final = frozenset({Role.TELLER, Role.SUPERVISOR})
_READERS: Final = frozenset(Role) - {Role.OPS}
_LIST_PARAMETERS: Final = (
    "status", "operation", "channel", "overdue", "archive", "from", "to", "terminal",
    "limit", "cursor",
)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class OperationsContext(TellerContext):
    """What the operations' handlers need (built by the daemon)."""

    service: BusinessService
    sessions: async_sessionmaker[AsyncSession]
    vault: PersonalDataVault
    engine: AsyncEngine


OPERATIONS: Final = web.AppKey("operations", OperationsContext)


def add_routes(app: web.Application) -> None:
    """Mount the operations' handlers (the context is under :data:`OPERATIONS`)."""
    app[STATUS_CACHE] = StatusCache(app[OPERATIONS].engine)
    for operation in Operation:
        # On the card at the window: the card services; a batch's: the batch routes.
        if not CATALOGUE[operation].live_only and operation not in BATCH_ROUTES:
            app.router.add_post(f"/v1/operations/{operation.value}", _operation_handler(operation))
    app.router.add_post("/v1/approvals", approve)
    app.router.add_get("/v1/applications", list_applications)
    app.router.add_get("/v1/applications/{receipt}", get_application)
    app.router.add_post("/v1/applications/{receipt}/fee", settle_fee)
    app.router.add_get("/v1/fees", fees_of_day)
    app.router.add_post("/v1/applications/{receipt}/withdrawal", withdraw)
    app.router.add_post("/v1/applications/{receipt}/verification", verify_online)
    app.router.add_get("/v1/persons/cards", person_cards)
    app.router.add_get("/v1/catalogue", catalogue)


def receipt_of_path(request: web.Request) -> str:
    """The receipt number in the path's ``{receipt}``, canonical; 400 unless one."""
    try:
        return str(ReceiptNumber.parse(request.match_info["receipt"]))
    except ReceiptNumberError as exc:
        raise ProblemError(INVALID_RECEIPT, str(exc), "受理编号格式或校验位错误。") from None


def _operation_handler(operation: Operation) -> Any:  # noqa: ANN401 - an aiohttp handler
    async def handle(
        request: web.Request, api: OperationsContext, terminal: Terminal, body: bytes
    ) -> web.Response:
        approval_id = approval_header(request)
        parsed = parse_body(OperationRequest, body)
        route = BATCH_CASES.get((operation, parsed.case))
        if route is not None and parsed.case in CATALOGUE[operation].allowed_cases(parsed.channel):
            raise ProblemError(
                SERVED_BY_BATCHES,
                f"An employer's {operation.value} goes through its batch: {route}.",
                f"单位批量业务请通过批次办理：{route}。",
                route=route,
            )
        result = await api.service.perform(
            operation,
            parsed,
            terminal,
            digest=_approval_digest(operation, parsed),
            approval_id=approval_id,
        )
        return json_response(result)

    handle.__name__ = f"operation_{operation.value.replace('-', '_')}"
    return post_once(OPERATIONS, checks=(approval_header,))(handle)


def _approval_digest(operation: Operation, body: OperationRequest) -> str:
    """What an approval is bound to: the operation and the request's canonical JSON."""
    return request_digest("APPROVE", operation.value, body.model_dump_json().encode())


@post_once(OPERATIONS)
async def approve(
    request: web.Request, api: OperationsContext, terminal: Terminal, body: bytes
) -> web.Response:
    """A supervisor approves one exact request."""
    del request
    parsed = parse_body(ApprovalIn, body)
    digest = _approval_digest(parsed.operation, parsed.request)
    return json_response(await api.service.approve(parsed, digest, terminal), status=201)


@post_once(OPERATIONS, checks=(receipt_of_path,))
async def settle_fee(
    request: web.Request, api: OperationsContext, terminal: Terminal, body: bytes
) -> web.Response:
    """Settle the fee an application owes (cash, POS reference, or a bank debit)."""
    receipt = receipt_of_path(request)
    require_role(terminal, _FEE_DESK, "settle fees")
    parsed = parse_body(FeeIn, body)
    return json_response(await api.service.fees.settle(receipt, parsed, terminal))


@post_once(OPERATIONS, checks=(receipt_of_path,))
async def withdraw(
    request: web.Request, api: OperationsContext, terminal: Terminal, body: bytes
) -> web.Response:
    """A supervisor withdraws an application before its card is made; its fee is reversed."""
    receipt = receipt_of_path(request)
    parsed = parse_body(WithdrawalIn, body)
    return json_response(await api.service.withdraw(receipt, parsed.reason, terminal))


@post_once(OPERATIONS, checks=(receipt_of_path,))
async def verify_online(
    request: web.Request, api: OperationsContext, terminal: Terminal, body: bytes
) -> web.Response:
    """The teller verifies the citizen of an online application (线下核验); then the card."""
    receipt = receipt_of_path(request)
    parsed = parse_body(VerificationIn, body)
    online = api.service.online
    return json_response(
        await online.verify(receipt, parsed, decoded_photo(parsed.photo), terminal)
    )


async def fees_of_day(request: web.Request) -> web.Response:
    """A business day's fees (``day=YYYY-MM-DD``, today by default)."""
    api = request.app[OPERATIONS]
    terminal = api.terminals.identify(request)
    require_role(terminal, _FEE_DESK | {Role.OPS}, "read the day's fees")
    fees = api.service.fees
    day = query_day(request.query, "day") or fees.today()
    return json_response(await fees.day(day))


def reader_terminal(request: web.Request) -> Terminal:
    """The calling terminal, if its role may read applications (every role but ops)."""
    terminal = request.app[OPERATIONS].terminals.identify(request)
    require_role(terminal, _READERS, "query applications")
    return terminal


#: The application's columns an answer shows.
_SHOWN: Final = (
    "receipt_number", "operation", "case", "channel", "status", "terminal_id", "accepted_at",
    "deadline", "fee_yuan", "fee_waived", "fee_status", "fee_receipt", "archive_status",
    "online_ref", "verified_at",
)  # fmt: skip


def _application_out(
    row: ApplicationRow,
    person: PersonRow,
    card_state: str | None,
    today: Any,  # noqa: ANN401
) -> ApplicationOut:
    shown = {name: getattr(row, name) for name in _SHOWN}
    return _out({**shown, "card_state": card_state}, person.id_masked, today)


def _out(row: Mapping[Any, Any], holder: str, today: Any) -> ApplicationOut:  # noqa: ANN401
    """The answer for one application's shown columns."""
    return ApplicationOut(
        receipt_number=row["receipt_number"],
        operation=Operation(row["operation"]),
        case=Case(row["case"]),
        channel=Channel(row["channel"]),
        status=row["status"],
        holder=holder,
        terminal=row["terminal_id"],
        accepted_at=row["accepted_at"],
        deadline=row["deadline"],
        overdue=is_overdue(row["deadline"], row["status"], today),
        fee_yuan=row["fee_yuan"],
        fee_waived=row["fee_waived"],
        fee_status=row["fee_status"],
        fee_receipt=row["fee_receipt"],
        archive_status=row["archive_status"],
        online_ref=row["online_ref"],
        verified_at=row["verified_at"],
        progress=ProgressOut(**asdict(_progress(row))),
    )


def _progress(row: Mapping[Any, Any]) -> ProgressStep:
    """The citizen's view of an application's shown columns and its card's state."""
    spec = CATALOGUE.get(Operation(row["operation"]))
    return progress_of(
        status=row["status"],
        fee_status=row["fee_status"],
        online=row["online_ref"] is not None,
        verified=row["verified_at"] is not None,
        makes_card=spec is not None and not spec.completes_at_counter,
        card_state=row["card_state"],
    )


async def get_application(request: web.Request) -> web.Response:
    """One application by its receipt number (the hottest query: answered from memory)."""
    terminal = reader_terminal(request)
    api = request.app[OPERATIONS]
    cache = request.app[STATUS_CACHE]
    today = local_day(api.clock.now())
    # Only checked receipt numbers in their canonical form are cached: a hit needs no parsing.
    receipt = request.match_info["receipt"]
    body = cache.get(receipt, today)
    if body is not None:
        await api.audit_reads.put(terminal.id, "query.application", f"receipt:{receipt}")
        return web.Response(body=body, content_type="application/json")
    receipt = receipt_of_path(request)
    await api.audit_reads.put(terminal.id, "query.application", f"receipt:{receipt}")
    body = cache.get(receipt, today)  # asked for in another spelling
    if body is not None:
        return web.Response(body=body, content_type="application/json")
    generation = cache.generation  # before the read: a write from now on discards it
    async with api.engine.connect() as conn:  # Core, one statement, no ORM identity map
        found = (await conn.execute(_BY_RECEIPT, {"receipt": receipt})).first()
    if found is None:
        raise ProblemError(NOT_FOUND, "No application with this receipt number.", "无此受理编号。")
    row = found._mapping  # noqa: SLF001 - SQLAlchemy's public row mapping accessor
    out = _out(row, row["id_masked"], today)
    body = out.model_dump_json().encode()
    cache.put(receipt, generation, today, body)
    return web.Response(body=body, content_type="application/json")


_APPLICATIONS = ApplicationRow.__table__
_BY_RECEIPT: Final = (
    select(
        *(
            _APPLICATIONS.c[name]
            for name in _SHOWN
        ),
        PersonRow.__table__.c.id_masked,
        CardRow.__table__.c.card_state,
    )
    .join(PersonRow.__table__, PersonRow.__table__.c.id == _APPLICATIONS.c.person_id)
    .outerjoin(CardRow.__table__, CardRow.__table__.c.id == _APPLICATIONS.c.card_id)
    .where(_APPLICATIONS.c.receipt_number == bindparam("receipt"))
)  # fmt: skip


async def list_applications(request: web.Request) -> web.Response:
    """Applications, newest first, filtered, with cursor pagination."""
    terminal = reader_terminal(request)
    api = request.app[OPERATIONS]
    query = request.query
    limit = page_limit(query)
    today = local_day(api.clock.now())
    conditions = _list_conditions(query, today)  # every parameter checked before the audit
    asked = {k: query[k] for k in _LIST_PARAMETERS if k in query}  # checked: safe to keep
    await api.audit_reads.put(terminal.id, "query.applications", "applications", {"query": asked})
    statement = (
        select(ApplicationRow, PersonRow, CardRow.card_state)
        .join(PersonRow, PersonRow.id == ApplicationRow.person_id)
        .outerjoin(CardRow, CardRow.id == ApplicationRow.card_id)
        .where(*conditions)
        .order_by(ApplicationRow.id.desc())
    )
    async with api.sessions() as session:
        rows = (await session.execute(statement.limit(limit + 1))).all()
    items = [
        _application_out(a, p, card_state, today).model_dump(mode="json")
        for a, p, card_state in rows[:limit]
    ]
    cursor = None
    if len(rows) > limit:
        cursor = encode_cursor(rows[limit - 1][0].id)
    return web.json_response({"items": items, "next_cursor": cursor})


def _list_conditions(query: Mapping[str, str], today: date) -> list[Any]:
    """The list's filters from its query parameters (each checked: 400 naming a bad one)."""
    a = ApplicationRow
    found: list[Any] = []
    if "cursor" in query:
        found.append(a.id < decode_cursor(query["cursor"]))
    chosen = {
        a.operation: query_choice(query, "operation", {o.value: o.value for o in Operation}),
        a.status: query_choice(query, "status", {s: s for s in APPLICATION_STATUSES}),
        a.archive_status: query_choice(query, "archive", {s: s for s in ARCHIVE_STATUSES}),
        a.channel: query_choice(query, "channel", {c.value: c.value for c in Channel}),
        a.terminal_id: query_terminal(query, "terminal"),
    }
    found.extend(column == value for column, value in chosen.items() if value is not None)
    first, last = query_day(query, "from"), query_day(query, "to")
    if first is not None:  # accepted on or after that business day (Asia/Shanghai)
        found.append(a.accepted_at >= day_start(first))
    if last is not None:  # accepted on or before that business day
        found.append(a.accepted_at < day_start(last, after=1))
    if query_choice(query, "overdue", {"true": True, "false": False}):
        found.extend((a.status == "accepted", a.deadline < today))
    return found


async def person_cards(request: web.Request) -> web.Response:
    """A person's cards, by the identity number in the ``X-Identity-Number`` header."""
    terminal = reader_terminal(request)
    api = request.app[OPERATIONS]
    id_number = identity_number_header(request)
    index = api.vault.index(id_number)
    async with api.sessions() as session:
        person = (
            await session.scalars(select(PersonRow).where(PersonRow.id_index == index))
        ).first()
        if person is None:
            raise ProblemError(
                NOT_FOUND, "No card holder with this identity number.", "无此持卡人。"
            )
        cards = (await session.scalars(select(CardRow).where(CardRow.person_id == person.id))).all()
        documents = (
            await session.scalars(
                select(IdentityDocumentRow)
                .where(IdentityDocumentRow.person_id == person.id)
                .order_by(IdentityDocumentRow.id)
            )
        ).all()
    await api.audit_reads.put(terminal.id, "query.person-cards", f"holder:{person.id_masked}")
    vault = api.vault
    phone = vault.open("phone", person.phone_enc) if person.phone_enc else None
    address = vault.open("address", person.address_enc) if person.address_enc else None
    return web.json_response(
        {
            "holder": person.id_masked,
            # Masked, as on every answer: enough for the teller to confirm a change.
            "name": mask_name(vault.open("name", person.name_enc)),
            "phone": mask_personal_numbers(phone) if phone else None,
            "address": mask_address(address) if address else None,
            "photo_on_record": person.photo_enc is not None,
            "documents": [{"type": d.doc_type, "number": d.number_masked} for d in documents],
            "cards": [
                CardOut(
                    card_number=c.card_number,
                    region=c.region,
                    application_state=c.application_state,
                    card_state=c.card_state,
                    bank_state=c.bank_state,
                ).model_dump(mode="json")
                for c in cards
            ],
        }
    )


async def catalogue(request: web.Request) -> web.Response:
    """The operation catalogue: cases, channels, materials, fees and time limits as configured."""
    rules = request.app[OPERATIONS].service.rules

    def limits(spec: OperationSpec) -> dict[str, dict[str, int | None]]:
        found: dict[str, dict[str, int | None]] = {}
        for channel in spec.channels:
            limit = spec.limit_for(channel)
            workdays = limit.workdays
            if spec.operation is Operation.APPLY and channel is Channel.ONLINE:
                workdays = rules.online_apply_workdays
            found[channel.value] = {"workdays": workdays, "fault_hours": limit.fault_hours}
        return found

    fee_rules = [rule.model_dump() for rule in rules.fee_rules]
    return web.json_response(
        {
            spec.operation.value: {
                "title_zh": spec.title_zh,
                "title_en": spec.title_en,
                "channels": {
                    ch.value: sorted(c.value for c in cases) for ch, cases in spec.channels.items()
                },
                "requirements": {
                    case.value: [
                        {
                            "code": r.code,
                            "any_of": sorted(m.value for m in r.any_of),
                            "title_zh": r.title_zh,
                            "title_en": r.title_en,
                        }
                        for r in reqs
                    ]
                    for case, reqs in spec.requirements.items()
                },
                # On site (window, kiosk) where the checklist differs (002 §6.1.3.2).
                "on_site_requirements": {
                    case.value: [r.code for r in reqs] for case, reqs in spec.on_site.items()
                },
                # The configured fee ([business] reissue_fee_yuan), and the rules by
                # region and category that may change it for a holder.
                "fee_yuan": rules.reissue_fee_yuan if spec.fee_yuan else 0,
                "fee_rules": fee_rules if spec.fee_yuan else [],
                "needs_approval": spec.needs_approval,
                "holder_only": spec.holder_only,
                "needs_card": spec.needs_card,
                "live_only": spec.live_only,
                "time_limit_workdays": spec.time_limit.workdays,
                # Each channel's own limit (online applications: 30 working days as
                # configured; window issuance at once, 24 h on a device fault).
                "time_limits": limits(spec),
                "archive": sorted(a.value for a in spec.archive),
            }
            for spec in CATALOGUE.values()
        }
    )


def _paths(kit: OpenApiKit) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for operation, spec in CATALOGUE.items():
        if operation in BATCH_ROUTES:
            continue
        paths[f"/v1/operations/{operation.value}"] = {
            "post": {
                "operationId": operation.value,
                "summary": f"{spec.title_zh} / {spec.title_en}",
                "parameters": [
                    kit.idempotency_header,
                    APPROVAL_HEADER,
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": kit.ref("OperationRequest")}},
                },
                "responses": {
                    "200": {
                        "description": "Accepted",
                        "content": {"application/json": {"schema": kit.ref("OperationResult")}},
                    },
                    **kit.errors,
                },
            }
        }
    paths["/v1/approvals"] = {
        "post": {
            "operationId": "approve",
            "summary": "主管授权 / Supervisor approval of one exact request",
            "parameters": [kit.idempotency_header],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": kit.ref("ApprovalIn")}},
            },
            "responses": {
                "201": {
                    "description": "Approved",
                    "content": {"application/json": {"schema": kit.ref("ApprovalOut")}},
                },
                **kit.errors,
            },
        }
    }
    paths["/v1/applications/{receipt}"] = {
        "get": {
            "operationId": "getApplication",
            "summary": "按受理编号查询 / Application by receipt number",
            "parameters": [
                {"name": "receipt", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {
                "200": {
                    "description": "Found",
                    "content": {"application/json": {"schema": kit.ref("ApplicationOut")}},
                },
                **kit.errors,
            },
        }
    }
    paths["/v1/applications"] = {
        "get": {
            "operationId": "listApplications",
            "summary": "受理列表 / Applications, newest first",
            "parameters": [
                {
                    "name": "status",
                    "in": "query",
                    "schema": {"type": "string", "enum": list(APPLICATION_STATUSES)},
                },
                {
                    "name": "operation",
                    "in": "query",
                    "schema": {"type": "string", "enum": [o.value for o in Operation]},
                },
                {
                    "name": "overdue",
                    "in": "query",
                    "schema": {"type": "string", "enum": ["true", "false"]},
                },
                {
                    "name": "from",
                    "in": "query",
                    "description": "accepted on or after this business day (Asia/Shanghai)",
                    "schema": {"type": "string", "format": "date"},
                },
                {
                    "name": "to",
                    "in": "query",
                    "description": "accepted on or before this business day (Asia/Shanghai)",
                    "schema": {"type": "string", "format": "date"},
                },
                {
                    "name": "terminal",
                    "in": "query",
                    "description": "accepted at this terminal",
                    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,64}$"},
                },
                {
                    "name": "channel",
                    "in": "query",
                    "description": "online: the online applications sent here for verification",
                    "schema": {"type": "string", "enum": [c.value for c in Channel]},
                },
                {
                    "name": "archive",
                    "in": "query",
                    "description": "incomplete: what still lacks its images",
                    "schema": {"type": "string", "enum": list(ARCHIVE_STATUSES)},
                },
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": PAGE_MAX},
                },
                {
                    "name": "cursor",
                    "in": "query",
                    "schema": {"type": "string", "pattern": CURSOR_PATTERN},
                },
            ],
            "responses": {
                "200": {
                    "description": "A page",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["items", "next_cursor"],
                                "properties": {
                                    "items": {"type": "array", "items": kit.ref("ApplicationOut")},
                                    "next_cursor": {"type": ["string", "null"]},
                                },
                            }
                        }
                    },
                },
                **kit.errors,
            },
        }
    }
    paths["/v1/applications/{receipt}/fee"] = {
        "post": {
            "operationId": "settleFee",
            "summary": "缴纳工本费 / Settle the fee an application owes",
            "description": (
                "Cash, a POS payment (its reference), or a debit in the bank core from the "
                "account of the card number given; the card is made only once the fee is "
                "settled or waived."
            ),
            "parameters": [
                kit.idempotency_header,
                {"name": "receipt", "in": "path", "required": True, "schema": {"type": "string"}},
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": kit.ref("FeeIn")}},
            },
            "responses": {
                "200": {
                    "description": "Settled",
                    "content": {"application/json": {"schema": kit.ref("FeeOut")}},
                },
                **kit.errors,
            },
        }
    }
    paths["/v1/applications/{receipt}/withdrawal"] = {
        "post": {
            "operationId": "withdrawApplication",
            "summary": "撤销受理 / Withdraw an application before its card is made",
            "description": (
                "Supervisor only. The old card returns to its state before the reissue or "
                "replacement (a new card never made is retired); a settled fee is reversed "
                "(冲正: a debit is given back by the bank through the outbox)."
            ),
            "parameters": [
                kit.idempotency_header,
                {"name": "receipt", "in": "path", "required": True, "schema": {"type": "string"}},
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": kit.ref("WithdrawalIn")}},
            },
            "responses": {
                "200": {
                    "description": "Withdrawn",
                    "content": {"application/json": {"schema": kit.ref("WithdrawalOut")}},
                },
                **kit.errors,
            },
        }
    }
    paths["/v1/applications/{receipt}/verification"] = {
        "post": {
            "operationId": "verifyOnlineApplication",
            "summary": "线下核验 / Verify the citizen of an online application",
            "description": (
                "An online application the platform sent to this branch (channel online) is "
                "verified once at the window: the identity document, and the photo unless the "
                "holder has one on record (002 §6.1.3.2). Its card may be made only after this; "
                "the window's images of the verification are then due (archive_status)."
            ),
            "parameters": [
                kit.idempotency_header,
                {"name": "receipt", "in": "path", "required": True, "schema": {"type": "string"}},
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": kit.ref("VerificationIn")}},
            },
            "responses": {
                "200": {
                    "description": "Verified",
                    "content": {"application/json": {"schema": kit.ref("VerificationOut")}},
                },
                **kit.errors,
            },
        }
    }
    paths["/v1/fees"] = {
        "get": {
            "operationId": "feesOfDay",
            "summary": "当日工本费 / A business day's fees",
            "parameters": [
                {"name": "day", "in": "query", "schema": {"type": "string", "format": "date"}}
            ],
            "responses": {
                "200": {
                    "description": "The day's fees",
                    "content": {"application/json": {"schema": kit.ref("FeeDayOut")}},
                },
                **kit.errors,
            },
        }
    }
    paths["/v1/persons/cards"] = {
        "get": {
            "operationId": "personCards",
            "summary": "按身份证号查询卡片 / Cards by identity number",
            "parameters": [
                {
                    "name": "X-Identity-Number",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string", "pattern": IDENTITY_NUMBER_PATTERN},
                }
            ],
            "responses": {
                "200": {
                    "description": "Found",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["holder", "cards"],
                                "properties": {
                                    "holder": {"type": "string"},
                                    "name": {"type": "string"},
                                    "phone": {"type": ["string", "null"]},
                                    "address": {"type": ["string", "null"]},
                                    "photo_on_record": {"type": "boolean"},
                                    "documents": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "properties": {
                                                "type": {"type": "string"},
                                                "number": {"type": "string"},
                                            },
                                        },
                                    },
                                    "cards": {"type": "array", "items": kit.ref("CardOut")},
                                },
                            }
                        }
                    },
                },
                **kit.errors,
            },
        }
    }
    return paths


SECTION: Final = ApiSection(
    name="operations",
    models=(
        OperationRequest,
        OperationResult,
        ApprovalIn,
        ApprovalOut,
        ApplicationOut,
        CardOut,
        FeeIn,
        FeeOut,
        FeeDayOut,
        DocumentIn,
        FeeTotal,
        WithdrawalIn,
        WithdrawalOut,
        VerificationIn,
        VerificationOut,
        ProgressOut,
    ),
    add_routes=add_routes,
    paths=_paths,
    problems=PROBLEMS,
)
