"""The HTTP kit every feature's routes use.

Sections, the shared request context, body parsing, ids, cursors and the
problem documents of bad input.

A feature puts its part of the teller API in an :class:`ApiSection` (its routes,
models and OpenAPI paths). The daemon hands the sections to ``create_app``, and
each feature's context (its services, plus the :class:`TellerContext` every
handler needs: terminals, idempotency, the clock, the read audit) under the
feature's own :class:`aiohttp.web.AppKey`.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from gateway.runtime.business_day import parse_day
from gateway.runtime.problems import BAD_REQUEST, Problem, ProblemError, register

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Awaitable, Callable, Mapping, Sequence
    from enum import StrEnum

    from devices.clock import Clock
    from gateway.runtime.http.auth import Terminal, TerminalRegistry
    from gateway.runtime.http.idempotency import Idempotency

__all__ = [
    "APPROVAL_HEADER",
    "ID_SCHEMA",
    "INVALID_REQUEST",
    "MAX_ARCHIVE_BODY",
    "MAX_BODY",
    "MAX_IMPORT_BODY",
    "MAX_REQUEST_BODY",
    "PAGE_MAX",
    "ApiSection",
    "OpenApiKit",
    "ReadAudit",
    "TellerContext",
    "approval_header",
    "bad_parameter",
    "decode_cursor",
    "encode_cursor",
    "identity_number_header",
    "json_response",
    "page_limit",
    "parse_body",
    "path_id",
    "post_once",
    "query_choice",
    "query_day",
    "query_terminal",
    "read_body",
]


INVALID_REQUEST: Final = register(
    "invalid-request", 422, "Request body is not valid", "请求内容不符合要求"
)
#: The body of an operation (a 3 MB base64 photo and the request around it).
MAX_BODY: Final = 4 * 1024 * 1024
#: The body of an archived image (7 MB of file as base64, and the request around it).
MAX_ARCHIVE_BODY: Final = 10 * 1024 * 1024
#: The body of a batch import (the card list and its files' zip, base64).
MAX_IMPORT_BODY: Final = 64 * 1024 * 1024
#: The application's ceiling: the largest of the routes' limits (each reads with its own).
MAX_REQUEST_BODY: Final = MAX_IMPORT_BODY
PAGE_MAX: Final = 100
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

#: The OpenAPI pattern of a cursor and of an identity number header.
CURSOR_PATTERN: Final = f"^{_CURSOR.pattern}$"
IDENTITY_NUMBER_PATTERN: Final = f"^({_IDENTITY_NUMBER.pattern})$"
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


class ReadAudit(Protocol):
    """Where reads of personal data are audited (``gateway.audit.log.AuditQueue`` fits)."""

    async def put(
        self, actor: str, action: str, subject: str, details: Mapping[str, Any] | None = None
    ) -> None:
        """Queue one audit entry."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class TellerContext:
    """What every handler of the teller API needs; features extend it with their services."""

    terminals: TerminalRegistry
    idempotency: Idempotency
    clock: Clock
    audit_reads: ReadAudit


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
        problems: Its services' refusal reasons, each mapped to a registered problem.
    """

    name: str
    models: tuple[type[BaseModel], ...]
    add_routes: Callable[[web.Application], None]
    paths: Callable[[OpenApiKit], dict[str, Any]]
    #: The problem each of the feature's refusal reasons is answered with.
    problems: Mapping[StrEnum, Problem] = field(default_factory=dict)


#: What each kind of field error means, in Chinese (pydantic's error types).
_FIELD_ZH: Final = {
    "missing": "缺少该字段",
    "extra_forbidden": "不接受该字段",
    "json_invalid": "请求内容不是有效的 JSON",
    "json_type": "请求内容应为 JSON 对象",
    "model_type": "应为对象",
    "model_attributes_type": "应为对象",
    "dict_type": "应为对象",
    "list_type": "应为列表",
    "string_type": "应为文本",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false",
    "float_type": "应为数字",
    "string_too_short": "内容过短",
    "string_too_long": "内容过长",
    "too_short": "条目过少",
    "too_long": "条目过多",
    "string_pattern_mismatch": "格式不符合要求",
    "literal_error": "取值不在允许范围内",
    "enum": "取值不在允许范围内",
    "greater_than": "数值过小",
    "greater_than_equal": "数值过小",
    "less_than": "数值过大",
    "less_than_equal": "数值过大",
    "date_from_datetime_parsing": "应为日期（YYYY-MM-DD）",
    "date_parsing": "应为日期（YYYY-MM-DD）",
    "date_type": "应为日期（YYYY-MM-DD）",
    "datetime_parsing": "应为时间（ISO 8601）",
    "value_error": "取值无效",
}


def _field_error(field_name: str, error: Mapping[str, Any]) -> dict[str, str]:
    """One field's problem, naming the field in both languages."""
    kind = str(error["type"])
    meaning = _FIELD_ZH.get(kind, "格式不符合要求")
    return {
        "field": field_name,
        "code": kind,
        "title_en": f"{field_name}: {error['msg']}",
        "title_zh": f"字段 {field_name}：{meaning}",
    }


def parse_body(model: type[M], body: bytes) -> M:
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
                _field_error(".".join(str(p) for p in error["loc"]) or "(body)", error)
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
                    "title_en": f"{field}: Text must not contain NUL (U+0000)",
                    "title_zh": f"字段 {field}：文本中不得含有空字符（U+0000）",
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


async def read_body(request: web.Request, limit: int = MAX_BODY) -> bytes:
    """The request's body; 413 beyond ``limit`` bytes (declared, or as it streams in).

    The application's own ceiling (``client_max_size``) is the largest route's limit;
    each route reads with its own, so a 4 MiB operation is not allowed a 64 MiB body.
    """
    declared = request.content_length
    if declared is not None and declared > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=declared)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
        chunks.append(chunk)
    return b"".join(chunks)


ContextT = TypeVar("ContextT", bound="TellerContext")


def post_once(
    key: web.AppKey[ContextT],
    *,
    limit: int = MAX_BODY,
    checks: Sequence[Callable[[web.Request], object]] = (),
) -> Callable[
    [Callable[[web.Request, ContextT, Terminal, bytes], Awaitable[web.Response]]],
    Callable[[web.Request], Awaitable[web.Response]],
]:
    """A POST handler carried out once per ``Idempotency-Key``.

    The caller is identified (401 first), the path and headers are checked by
    ``checks`` (a bad id or header is refused before the key is claimed, so it is
    never stored), the body is read up to ``limit`` (413), then the handler runs
    under :meth:`Idempotency.run`: a repeat of the key gets the stored answer, a
    refusal included, and nothing is done twice. The handler gets the request, its
    section's context (``request.app[key]``), the terminal and the body.
    """

    def wrap(
        perform: Callable[[web.Request, ContextT, Terminal, bytes], Awaitable[web.Response]],
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            context = request.app[key]
            terminal = context.terminals.identify(request)
            for check in checks:
                check(request)
            body = await read_body(request, limit)
            return await context.idempotency.run(
                request, terminal.id, body, lambda: perform(request, context, terminal, body)
            )

        handle.__name__ = perform.__name__
        handle.__qualname__ = perform.__qualname__
        handle.__doc__ = perform.__doc__
        return handle

    return wrap


def json_response(model: BaseModel, status: int = 200) -> web.Response:
    """``model`` as a JSON answer."""
    return web.Response(
        status=status, body=model.model_dump_json().encode(), content_type="application/json"
    )


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


def page_limit(query: Mapping[str, str]) -> int:
    """The ``limit`` query parameter (20 when absent); 400 unless 1 to :data:`PAGE_MAX`."""
    text = query.get("limit", "20")
    if _LIMIT.fullmatch(text) is None or not 1 <= int(text) <= PAGE_MAX:
        raise bad_parameter(
            "limit", f"limit must be a whole number from 1 to {PAGE_MAX}.", "limit 须为 1 到 100。"
        )
    return int(text)


def query_choice(query: Mapping[str, str], name: str, choices: Mapping[str, T]) -> T | None:
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


_TERMINAL_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def query_day(query: Mapping[str, str], name: str) -> dt.date | None:
    """Query parameter ``name`` as a business day, ``YYYY-MM-DD`` (``None`` when absent)."""
    if name not in query:
        return None
    day = parse_day(query[name])
    if day is None:
        raise bad_parameter(
            name, f"{name} must be a day, YYYY-MM-DD.", f"查询参数 {name} 应为日期 YYYY-MM-DD。"
        )
    return day


def query_terminal(query: Mapping[str, str], name: str) -> str | None:
    """Query parameter ``name`` as a terminal id (``None`` when absent); 400 unless one."""
    if name not in query:
        return None
    if _TERMINAL_ID.fullmatch(query[name]) is None:
        raise bad_parameter(
            name,
            f"{name} must be a terminal id (1-64 of A-Z a-z 0-9 . _ : -).",
            f"查询参数 {name} 应为终端编号。",
        )
    return query[name]


def identity_number_header(request: web.Request) -> str:
    """The resident identity number in ``X-Identity-Number``; 400 unless it looks like one."""
    id_number = request.headers.get("X-Identity-Number", "")
    if _IDENTITY_NUMBER.fullmatch(id_number) is None:
        raise bad_parameter(
            "X-Identity-Number",
            "Send the identity number in X-Identity-Number (15 digits, or 17 digits and a "
            "check digit or X).",
            "请在 X-Identity-Number 中提供身份证号码（15位数字，或17位数字加校验位）。",
        )
    return id_number
