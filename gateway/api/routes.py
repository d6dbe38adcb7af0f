"""The teller API's routes, and the OpenAPI 3.1 document built from the same models.

Every operation of the catalogue is ``POST /v1/operations/{operation}``;
approvals are ``POST /v1/approvals``; queries are GETs (the identity number
travels in a header, never in a URL that proxies and access logs keep).

Other parts of the API (production, stock, batches, card services) live in
their own modules; each exports an :class:`ApiSection` (its routes, its models
and its OpenAPI paths) and is listed in :mod:`gateway.api.registry`, which
:func:`add_api_routes` and :func:`openapi_document` read.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema
from sqlalchemy import bindparam, select

from gateway.api.auth import Terminal, TerminalRegistry, require_role
from gateway.api.schemas import (
    ApplicationOut,
    ApprovalIn,
    ApprovalOut,
    ArchiveIn,
    ArchiveOut,
    CardOut,
    DeadLetterOut,
    OperationRequest,
    OperationResult,
)
from gateway.api.service import is_overdue, local_day
from gateway.api.status_cache import STATUS_CACHE, StatusCache
from gateway.archive import ArchiveError, ArchiveKind
from gateway.business.catalogue import CATALOGUE, Case, Channel, Operation, Role
from gateway.business.receipts import ReceiptNumber, ReceiptNumberError
from gateway.persistence.models import ApplicationRow, CardRow, PersonRow
from gateway.problems import BAD_REQUEST, NOT_FOUND, PROBLEMS, ProblemError, register
from gateway.upstream.outbox import list_dead_letters

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    from devices.clock import Clock
    from gateway.api.idempotency import Idempotency
    from gateway.api.service import BusinessService
    from gateway.archive import ArchiveStore
    from gateway.audit import AuditQueue
    from gateway.keys import PersonalDataVault
    from gateway.pin import CardServices
    from gateway.production_service import ProductionService

__all__ = [
    "API",
    "APPROVAL_HEADER",
    "ID_SCHEMA",
    "Api",
    "ApiSection",
    "OpenApiKit",
    "add_api_routes",
    "approval_header",
    "bad_parameter",
    "decode_cursor",
    "encode_cursor",
    "openapi_document",
    "path_id",
]

INVALID_REQUEST: Final = register(
    "invalid-request", 422, "Request body is not valid", "请求内容不符合要求"
)
INVALID_RECEIPT: Final = register(
    "invalid-receipt-number", 400, "Not a valid receipt number", "受理编号无效"
)
MAX_BODY: Final = 4 * 1024 * 1024
PAGE_MAX: Final = 100
APPLICATION_STATUSES: Final = ("accepted", "completed")
_READERS: Final = frozenset(Role) - {Role.OPS}
_LIST_PARAMETERS: Final = ("status", "operation", "overdue", "limit", "cursor")
#: Largest row id (INTEGER columns: PostgreSQL's int4); a cursor beyond it names no row.
MAX_ROW_ID: Final = 2**31 - 1
#: A page cursor: URL-safe base64 of a row id in decimal (what ``next_cursor`` gives).
_CURSOR: Final = re.compile(r"[A-Za-z0-9_-]{2,16}={0,2}")
_ROW_ID: Final = re.compile(r"[1-9][0-9]{0,9}")
_LIMIT: Final = re.compile(r"[0-9]{1,3}")
#: Ids the daemon makes (approvals, jobs, batches: UUIDs, hex or with dashes).
_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,64}")
#: Resident identity numbers: 15 digits (first generation) or 17 digits and a check character.
_IDENTITY_NUMBER: Final = re.compile(r"[0-9]{15}|[0-9]{17}[0-9Xx]")
#: A NUL escaped in JSON text (``\u0000`` after an even run of backslashes): no text field
#: may hold one (PostgreSQL refuses it in text and JSON columns).
_JSON_NUL: Final = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


@dataclass(frozen=True, slots=True)
class Api:
    """What the API handlers need (built by the daemon)."""

    service: BusinessService
    idempotency: Idempotency
    terminals: TerminalRegistry
    sessions: async_sessionmaker[AsyncSession]
    vault: PersonalDataVault
    clock: Clock
    engine: AsyncEngine
    archive: ArchiveStore
    audit_reads: AuditQueue
    production: ProductionService | None = None
    #: PIN change, reset, unlock and status on the card at the window (gateway.api.card_routes).
    cards: CardServices | None = None


API: Final = web.AppKey("api", Api)
#: The OpenAPI schema of an id the daemon made (in a path or ``X-Approval-ID``).
ID_SCHEMA: Final = {"type": "string", "pattern": f"^{_ID.pattern}$"}
#: The ``X-Approval-ID`` header parameter of the OpenAPI document.
APPROVAL_HEADER: Final = {
    "name": "X-Approval-ID",
    "in": "header",
    "required": False,
    "schema": ID_SCHEMA,
}
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class OpenApiKit:
    """What a section needs to describe its paths like the rest of the document.

    Attributes:
        ref: ``ref("Model")`` is a JSON reference to a component schema.
        errors: The problem+json responses, by status code, to spread into ``responses``.
        idempotency_header: The ``Idempotency-Key`` parameter every POST takes.
    """

    ref: Callable[[str], dict[str, str]]
    errors: dict[str, Any]
    idempotency_header: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ApiSection:
    """One module's part of the API.

    Attributes:
        name: Short name (for logs and tests).
        models: The pydantic models its handlers validate with and answer in.
        add_routes: Mounts its handlers on the application.
        paths: Its OpenAPI paths.
    """

    name: str
    models: tuple[type[BaseModel], ...]
    add_routes: Callable[[web.Application], None]
    paths: Callable[[OpenApiKit], dict[str, Any]]


def _sections() -> tuple[ApiSection, ...]:
    from gateway.api.registry import SECTIONS  # noqa: PLC0415 - the sections import this module

    return SECTIONS


def add_api_routes(app: web.Application, api: Api) -> None:
    """Mount the teller API on ``app``."""
    app[API] = api
    app[STATUS_CACHE] = StatusCache(api.engine)
    for operation in Operation:
        if not CATALOGUE[operation].live_only:  # on the card at the window: card_routes
            app.router.add_post(f"/v1/operations/{operation.value}", _operation_handler(operation))
    app.router.add_post("/v1/approvals", approve)
    app.router.add_get("/v1/applications", list_applications)
    app.router.add_get("/v1/applications/{receipt}", get_application)
    app.router.add_post("/v1/applications/{receipt}/archive", add_archive_file)
    app.router.add_get("/v1/persons/cards", person_cards)
    app.router.add_get("/v1/catalogue", catalogue)
    app.router.add_get("/v1/outbox/dead-letters", dead_letters)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/docs", docs)
    for section in _sections():
        section.add_routes(app)


def _parse(model: type[M], body: bytes) -> M:
    """``body`` as ``model``, or 422 ``invalid-request`` listing every field problem.

    Beyond the model: no text anywhere in the body (keys included) may hold NUL.
    """
    try:
        parsed = model.model_validate_json(body)
    except ValidationError as exc:
        raise ProblemError(
            INVALID_REQUEST,
            f"{exc.error_count()} problem(s) in the request body; all are listed.",
            f"请求内容有{exc.error_count()}处不符合要求，已全部列出。",
            errors=[
                {
                    "field": ".".join(str(p) for p in error["loc"]) or "(body)",
                    "code": error["type"],
                    "title_en": error["msg"],
                    "title_zh": "字段缺失或格式不符合要求",
                }
                for error in exc.errors(include_url=False, include_input=False)
            ],
        ) from None
    if _JSON_NUL.search(body) is not None:
        fields = _nul_fields(parsed.model_dump(mode="json"), ()) or ["(body)"]
        raise ProblemError(
            INVALID_REQUEST,
            f"{len(fields)} problem(s) in the request body; all are listed.",
            f"请求内容有{len(fields)}处不符合要求，已全部列出。",
            errors=[
                {
                    "field": field,
                    "code": "string_nul",
                    "title_en": "Text must not contain NUL (U+0000)",
                    "title_zh": "文本中不得含有空字符（U+0000）",
                }
                for field in fields
            ],
        )
    return parsed


def _nul_fields(value: object, path: tuple[str, ...]) -> list[str]:
    """The dotted paths of the text values (and keys) in ``value`` that hold NUL."""
    found: list[str] = []
    if isinstance(value, str):
        if "\x00" in value:
            found.append(".".join(path) or "(body)")
    elif isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in str(key):
                found.append(".".join(path) or "(body)")
            found.extend(_nul_fields(item, (*path, str(key))))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found.extend(_nul_fields(item, (*path, str(index))))
    return found


def bad_parameter(name: str, detail: str, detail_zh: str) -> ProblemError:
    """A 400 ``bad-request`` naming the query parameter, path parameter or header at fault."""
    return ProblemError(BAD_REQUEST, detail, detail_zh, parameter=name)


def path_id(request: web.Request, name: str, not_found: ProblemError) -> str:
    """The id in path segment ``name``; ``not_found`` when it cannot be an id the daemon made."""
    value = request.match_info[name]
    if _ID.fullmatch(value) is None:
        raise not_found
    return value


def approval_header(request: web.Request) -> str | None:
    """The ``X-Approval-ID`` header (an approval's id), or 400 when it cannot be one."""
    value = request.headers.get("X-Approval-ID")
    if value is not None and _ID.fullmatch(value) is None:
        raise bad_parameter(
            "X-Approval-ID",
            "X-Approval-ID must be the id of an approval (1-64 letters, digits, '.', '_', ':', "
            "'-').",
            "X-Approval-ID 须为授权编号（1-64个字母、数字或 . _ : -）。",
        )
    return value


async def _read(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length)
    return await request.read()


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=model.model_dump_json().encode(), content_type="application/json"
    )


def _operation_handler(operation: Operation) -> Any:  # noqa: ANN401 - an aiohttp handler
    async def handle(request: web.Request) -> web.Response:
        api = request.app[API]
        terminal = api.terminals.identify(request)
        approval_id = approval_header(request)
        body = await _read(request)

        async def perform() -> web.Response:
            parsed = _parse(OperationRequest, body)
            result = await api.service.perform(
                operation,
                parsed,
                terminal,
                digest=_approval_digest(operation, parsed),
                approval_id=approval_id,
            )
            return _json(result)

        return await api.idempotency.run(request, terminal.id, body, perform)

    handle.__name__ = f"operation_{operation.value.replace('-', '_')}"
    return handle


def _approval_digest(operation: Operation, body: OperationRequest) -> str:
    """What an approval is bound to: the operation and the request's canonical JSON."""
    from gateway.api.idempotency import request_digest  # noqa: PLC0415

    return request_digest("APPROVE", operation.value, body.model_dump_json().encode())


async def approve(request: web.Request) -> web.Response:
    """A supervisor approves one exact request."""
    api = request.app[API]
    terminal = api.terminals.identify(request)
    body = await _read(request)

    async def perform() -> web.Response:
        parsed = _parse(ApprovalIn, body)
        digest = _approval_digest(parsed.operation, parsed.request)
        return _json(await api.service.approve(parsed, digest, terminal), status=201)

    return await api.idempotency.run(request, terminal.id, body, perform)


def _reader(request: web.Request) -> Terminal:
    terminal = request.app[API].terminals.identify(request)
    require_role(terminal, _READERS, "query applications")
    return terminal


def _application_out(row: ApplicationRow, person: PersonRow, today: Any) -> ApplicationOut:  # noqa: ANN401
    return ApplicationOut(
        receipt_number=row.receipt_number,
        operation=Operation(row.operation),
        case=Case(row.case),
        channel=Channel(row.channel),
        status=row.status,
        holder=person.id_masked,
        terminal=row.terminal_id,
        accepted_at=row.accepted_at,
        deadline=row.deadline,
        overdue=is_overdue(row.deadline, row.status, today),
        fee_yuan=row.fee_yuan,
        fee_waived=row.fee_waived,
    )


async def get_application(request: web.Request) -> web.Response:
    """One application by its receipt number (the hottest query: answered from memory)."""
    terminal = _reader(request)
    api = request.app[API]
    cache = request.app[STATUS_CACHE]
    today = local_day(api.clock.now())
    # Only checked receipt numbers in their canonical form are cached: a hit needs no parsing.
    receipt = request.match_info["receipt"]
    body = cache.get(receipt, today)
    if body is not None:
        await api.audit_reads.put(terminal.id, "query.application", f"receipt:{receipt}")
        return web.Response(body=body, content_type="application/json")
    receipt = _receipt(request)
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
    out = ApplicationOut(
        receipt_number=row["receipt_number"],
        operation=Operation(row["operation"]),
        case=Case(row["case"]),
        channel=Channel(row["channel"]),
        status=row["status"],
        holder=row["id_masked"],
        terminal=row["terminal_id"],
        accepted_at=row["accepted_at"],
        deadline=row["deadline"],
        overdue=is_overdue(row["deadline"], row["status"], today),
        fee_yuan=row["fee_yuan"],
        fee_waived=row["fee_waived"],
    )
    body = out.model_dump_json().encode()
    cache.put(receipt, generation, today, body)
    return web.Response(body=body, content_type="application/json")


_APPLICATIONS = ApplicationRow.__table__
_BY_RECEIPT: Final = (
    select(
        *(
            _APPLICATIONS.c[name]
            for name in (
                "receipt_number", "operation", "case", "channel", "status", "terminal_id",
                "accepted_at", "deadline", "fee_yuan", "fee_waived",
            )
        ),
        PersonRow.__table__.c.id_masked,
    )
    .join(PersonRow.__table__, PersonRow.__table__.c.id == _APPLICATIONS.c.person_id)
    .where(_APPLICATIONS.c.receipt_number == bindparam("receipt"))
)  # fmt: skip


def _receipt(request: web.Request) -> str:
    try:
        return str(ReceiptNumber.parse(request.match_info["receipt"]))
    except ReceiptNumberError as exc:
        raise ProblemError(INVALID_RECEIPT, str(exc), "受理编号格式或校验位错误。") from None


async def add_archive_file(request: web.Request) -> web.Response:
    """Archive a credential image, the scene image or the signature of an application."""
    api = request.app[API]
    terminal = api.terminals.identify(request)
    require_role(terminal, {Role.TELLER, Role.SUPERVISOR, Role.ARCHIVE}, "archive images")
    receipt = _receipt(request)
    body = await _read(request)

    async def perform() -> web.Response:
        parsed = _parse(ArchiveIn, body)
        try:
            data = base64.b64decode(parsed.data, validate=True)
        except (binascii.Error, ValueError):
            raise ProblemError(
                INVALID_REQUEST, "data is not base64", "data 不是有效的 base64 编码。"
            ) from None
        async with api.sessions() as session:
            application = (
                await session.scalars(
                    select(ApplicationRow).where(ApplicationRow.receipt_number == receipt)
                )
            ).first()
        if application is None:
            raise ProblemError(
                NOT_FOUND, "No application with this receipt number.", "无此受理编号。"
            )
        try:
            row = await api.archive.add(
                application, ArchiveKind(parsed.kind), parsed.content_type, data
            )
        except ArchiveError as exc:
            raise ProblemError(INVALID_REQUEST, str(exc), "归档文件不符合要求。") from None
        out = ArchiveOut(sha256=row.sha256, size=row.size, kind=row.kind, stored_at=row.stored_at)
        return _json(out, status=201)

    return await api.idempotency.run(request, terminal.id, body, perform)


async def list_applications(request: web.Request) -> web.Response:
    """Applications, newest first, filtered, with cursor pagination."""
    terminal = _reader(request)
    api = request.app[API]
    query = request.query
    limit = _limit(query)
    before = decode_cursor(query["cursor"]) if "cursor" in query else None
    operation = _choice(query, "operation", {o.value: o for o in Operation})
    overdue = _choice(query, "overdue", {"true": True, "false": False}) or False
    status = _choice(query, "status", {s: s for s in APPLICATION_STATUSES})
    asked = {k: query[k] for k in _LIST_PARAMETERS if k in query}  # checked: safe to keep
    await api.audit_reads.put(terminal.id, "query.applications", "applications", {"query": asked})
    statement = (
        select(ApplicationRow, PersonRow)
        .join(PersonRow, PersonRow.id == ApplicationRow.person_id)
        .order_by(ApplicationRow.id.desc())
    )
    if before is not None:
        statement = statement.where(ApplicationRow.id < before)
    if operation is not None:
        statement = statement.where(ApplicationRow.operation == operation.value)
    if status is not None:
        statement = statement.where(ApplicationRow.status == status)
    today = local_day(api.clock.now())
    if overdue:
        statement = statement.where(
            ApplicationRow.status != "completed", ApplicationRow.deadline < today
        )
    async with api.sessions() as session:
        rows = (await session.execute(statement.limit(limit + 1))).all()
    items = [_application_out(a, p, today).model_dump(mode="json") for a, p in rows[:limit]]
    cursor = None
    if len(rows) > limit:
        cursor = encode_cursor(rows[limit - 1][0].id)
    return web.json_response({"items": items, "next_cursor": cursor})


def encode_cursor(row_id: int) -> str:
    """The page cursor that continues below ``row_id``."""
    return base64.urlsafe_b64encode(str(row_id).encode()).decode()


def decode_cursor(text: str) -> int:
    """The row id a cursor continues below; 400 unless :func:`encode_cursor` made it.

    Checked before anything is decoded: URL-safe base64 of a decimal row id
    from 1 to :data:`MAX_ROW_ID` (no sign, no spaces, no leading zero).
    """
    row_id = None
    if _CURSOR.fullmatch(text) is not None:
        try:
            digits = base64.b64decode(text, altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            digits = b""
        if _ROW_ID.fullmatch(digits.decode("ascii", "replace")) is not None:
            row_id = int(digits)
    if row_id is None or row_id > MAX_ROW_ID:
        raise bad_parameter(
            "cursor",
            "cursor is not one this API gave (use next_cursor of the previous page).",
            "cursor 无效，请使用上一页返回的 next_cursor。",
        )
    return row_id


def _limit(query: Mapping[str, str]) -> int:
    text = query.get("limit", "20")
    if _LIMIT.fullmatch(text) is None or not 1 <= int(text) <= PAGE_MAX:
        raise bad_parameter(
            "limit", f"limit must be a whole number from 1 to {PAGE_MAX}.", "limit 须为 1 到 100。"
        )
    return int(text)


def _choice(query: Mapping[str, str], name: str, choices: Mapping[str, T]) -> T | None:
    """Query parameter ``name`` (``None`` when absent); 400 unless one of ``choices``."""
    if name not in query:
        return None
    found = choices.get(query[name])
    if found is None:
        raise bad_parameter(
            name,
            f"{name} must be one of: {', '.join(choices)}.",
            f"查询参数 {name} 无效。",
        )
    return found


async def person_cards(request: web.Request) -> web.Response:
    """A person's cards, by the identity number in the ``X-Identity-Number`` header."""
    terminal = _reader(request)
    api = request.app[API]
    id_number = request.headers.get("X-Identity-Number", "")
    if _IDENTITY_NUMBER.fullmatch(id_number) is None:
        raise bad_parameter(
            "X-Identity-Number",
            "Send the identity number in X-Identity-Number (15 digits, or 17 digits and a "
            "check digit or X).",
            "请在 X-Identity-Number 中提供身份证号码（15位数字，或17位数字加校验位）。",
        )
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
    await api.audit_reads.put(terminal.id, "query.person-cards", f"holder:{person.id_masked}")
    return web.json_response(
        {
            "holder": person.id_masked,
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


async def dead_letters(request: web.Request) -> web.Response:
    """The oldest dead letters of the upstream outbox (supervisor and ops; no payloads)."""
    api = request.app[API]
    terminal = api.terminals.identify(request)
    require_role(terminal, {Role.SUPERVISOR, Role.OPS}, "list dead letters")
    found = await list_dead_letters(api.sessions, limit=PAGE_MAX)
    items = [
        DeadLetterOut(
            message_id=d.message_id,
            target=d.target,
            operation=d.operation,
            card_key=d.card_key,
            attempts=d.attempts,
            created_at=d.created_at,
            expires_at=d.expires_at,
            last_error=d.last_error,
        ).model_dump(mode="json")
        for d in found
    ]
    return web.json_response({"items": items})


async def catalogue(_request: web.Request) -> web.Response:
    """The operation catalogue: cases, channels and materials per operation."""
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
                "fee_yuan": spec.fee_yuan,
                "needs_approval": spec.needs_approval,
                "holder_only": spec.holder_only,
                "needs_card": spec.needs_card,
                "live_only": spec.live_only,
                "time_limit_workdays": spec.time_limit.workdays,
                "archive": sorted(a.value for a in spec.archive),
            }
            for spec in CATALOGUE.values()
        }
    )


async def openapi(_request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document."""
    return web.json_response(openapi_document())


_DOCS_PAGE: Final = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>sscard-branchd API</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
code,pre{background:#f4f4f4;padding:.1rem .3rem}details{margin:.4rem 0}
.m{display:inline-block;width:3.5rem;font-weight:bold}</style></head>
<body><h1>sscard-branchd teller API</h1>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).
Errors: <code>application/problem+json</code> with a stable <code>code</code>.</p>
<div id="paths">Loading…</div>
<script>
fetch('/openapi.json').then(r => r.json()).then(doc => {
  const root = document.getElementById('paths'); root.textContent = '';
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const d = document.createElement('details');
      const s = document.createElement('summary');
      s.innerHTML = '<span class="m"></span><code></code> ';
      s.querySelector('.m').textContent = method.toUpperCase();
      s.querySelector('code').textContent = path;
      s.append(op.summary || '');
      const pre = document.createElement('pre');
      pre.textContent = JSON.stringify(op, null, 2);
      d.append(s, pre); root.append(d);
    }
  }
});
</script></body></html>
"""


async def docs(_request: web.Request) -> web.Response:
    """A browsable page of the API, rendered from /openapi.json (no build step)."""
    return web.Response(text=_DOCS_PAGE, content_type="text/html")


def _problem_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", "code", "status", "title", "title_zh"],
        "properties": {
            "type": {"type": "string"},
            "code": {"type": "string", "enum": sorted(PROBLEMS)},
            "status": {"type": "integer"},
            "title": {"type": "string"},
            "title_zh": {"type": "string"},
            "detail": {"type": "string"},
            "detail_zh": {"type": "string"},
            "instance": {"type": "string"},
            "request_id": {"type": "string"},
        },
        "additionalProperties": True,
    }


def openapi_document() -> dict[str, Any]:
    """Build the OpenAPI 3.1 document from the pydantic models the server validates with."""
    models: list[type[BaseModel]] = [
        ArchiveIn,
        ArchiveOut,
        OperationRequest,
        OperationResult,
        ApprovalIn,
        ApprovalOut,
        ApplicationOut,
        CardOut,
        DeadLetterOut,
    ]
    sections = _sections()
    for section in sections:
        models.extend(m for m in section.models if m not in models)
    _, top = models_json_schema(
        [(m, "validation") for m in models], ref_template="#/components/schemas/{model}"
    )
    schemas = dict(top.get("$defs", {}))
    schemas["Problem"] = _problem_schema()

    def ref(name: str) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{name}"}

    problem = {
        "description": "Refused",
        "content": {"application/problem+json": {"schema": ref("Problem")}},
    }
    errors = {str(code): problem for code in (400, 401, 403, 404, 409, 413, 422, 503)}
    errors["401"] = {
        **problem,
        "headers": {
            "WWW-Authenticate": {
                "description": 'RFC 6750 challenge: Bearer realm="sscard-branchd"',
                "required": True,
                "schema": {"type": "string", "pattern": "^Bearer "},
            }
        },
    }
    idempotency_header = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": True,
        "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,128}$"},
    }
    paths: dict[str, Any] = {}
    for operation, spec in CATALOGUE.items():
        paths[f"/v1/operations/{operation.value}"] = {
            "post": {
                "operationId": operation.value,
                "summary": f"{spec.title_zh} / {spec.title_en}",
                "parameters": [
                    idempotency_header,
                    APPROVAL_HEADER,
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref("OperationRequest")}},
                },
                "responses": {
                    "200": {
                        "description": "Accepted",
                        "content": {"application/json": {"schema": ref("OperationResult")}},
                    },
                    **errors,
                },
            }
        }
    paths["/v1/approvals"] = {
        "post": {
            "operationId": "approve",
            "summary": "主管授权 / Supervisor approval of one exact request",
            "parameters": [idempotency_header],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref("ApprovalIn")}},
            },
            "responses": {
                "201": {
                    "description": "Approved",
                    "content": {"application/json": {"schema": ref("ApprovalOut")}},
                },
                **errors,
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
                    "content": {"application/json": {"schema": ref("ApplicationOut")}},
                },
                **errors,
            },
        }
    }
    paths["/v1/applications/{receipt}/archive"] = {
        "post": {
            "operationId": "archiveFile",
            "summary": "归档影像 / Archive an image of the application",
            "parameters": [
                {"name": "receipt", "in": "path", "required": True, "schema": {"type": "string"}},
                idempotency_header,
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref("ArchiveIn")}},
            },
            "responses": {
                "201": {
                    "description": "Archived",
                    "content": {"application/json": {"schema": ref("ArchiveOut")}},
                },
                **errors,
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
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": PAGE_MAX},
                },
                {
                    "name": "cursor",
                    "in": "query",
                    "schema": {"type": "string", "pattern": f"^{_CURSOR.pattern}$"},
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
                                    "items": {"type": "array", "items": ref("ApplicationOut")},
                                    "next_cursor": {"type": ["string", "null"]},
                                },
                            }
                        }
                    },
                },
                **errors,
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
                    "schema": {"type": "string", "pattern": f"^({_IDENTITY_NUMBER.pattern})$"},
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
                                    "cards": {"type": "array", "items": ref("CardOut")},
                                },
                            }
                        }
                    },
                },
                **errors,
            },
        }
    }
    paths["/v1/outbox/dead-letters"] = {
        "get": {
            "operationId": "listDeadLetters",
            "summary": "死信列表 / Upstream messages given up on (supervisor, ops)",
            "responses": {
                "200": {
                    "description": f"The oldest {PAGE_MAX} dead letters, without payloads",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["items"],
                                "properties": {
                                    "items": {"type": "array", "items": ref("DeadLetterOut")}
                                },
                            }
                        }
                    },
                },
                **errors,
            },
        }
    }
    kit = OpenApiKit(ref=ref, errors=errors, idempotency_header=idempotency_header)
    for section in sections:
        paths.update(section.paths(kit))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "sscard-branchd teller API",
            "version": "1",
            "description": json.dumps({"errors": "application/problem+json with a stable code"}),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "terminalCertificate": {"type": "mutualTLS"},
                "terminalToken": {"type": "http", "scheme": "bearer"},
            },
        },
        "security": [{"terminalCertificate": []}, {"terminalToken": []}],
    }
