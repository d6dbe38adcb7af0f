"""The day's close in the teller API (日终).

``POST /v1/days/{day}/close`` (supervisor): count the day, compare it with the
platform and the bank, close it. ``POST /v1/days/{day}/reopen`` (supervisor,
with a reason). ``GET /v1/days/{day}``: the close as recorded. Days are
``YYYY-MM-DD``, Asia/Shanghai calendar days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from gateway.closing.service import ClosingError
from gateway.operations.routes import INVALID_DAY
from gateway.runtime.business_day import FIRST_DAY, parse_day
from gateway.runtime.http.auth import Role, require_role
from gateway.runtime.http.kit import (
    ApiSection,
    OpenApiKit,
    TellerContext,
    json_response,
    parse_body,
    post_once,
)
from gateway.runtime.problems import ProblemError, register

if TYPE_CHECKING:
    from gateway.closing.service import DayClosing
    from gateway.runtime.http.auth import Terminal

__all__ = ["CLOSING", "SECTION", "ClosingContext", "DayOut", "DayReopenIn"]

_STRICT = ConfigDict(extra="forbid", frozen=True)

#: Each refusal of the close, by its code.
_PROBLEMS: Final = {
    "day-in-future": register(
        "day-in-future", 422, "The day has not come yet", "该日期尚未到来，不能日终"
    ),
    "day-already-closed": register(
        "day-already-closed", 409, "The day is closed already", "当日已日终结账"
    ),
    "day-not-closed": register("day-not-closed", 409, "The day is not closed", "当日未日终结账"),
    "day-archive-incomplete": register(
        "day-archive-incomplete",
        409,
        "Applications of the day still lack their archive images",
        "当日尚有业务缺少归档影像，请补齐或经主管豁免后再日终",
    ),
    "upstream-unavailable": register(
        "day-upstream-unavailable",
        503,
        "The platform or the bank did not give its day summary; nothing was closed",
        "社保平台或银行未返回当日对账数据，未日终，请稍后重试",
    ),
}
_ZH: Final = {
    "day-in-future": "该日期尚未到来。",
    "day-already-closed": "当日已日终结账。",
    "day-not-closed": "当日未日终结账，无需重新开启。",
    "day-archive-incomplete": "当日尚有业务缺少归档影像（见 receipts）。",
    "upstream-unavailable": "社保平台或银行未返回当日对账数据，请稍后重试。",
}


class DayReopenIn(BaseModel):
    """Why a supervisor reopens a closed day."""

    model_config = _STRICT

    reason: str = Field(min_length=2, max_length=256)


class DayOut(BaseModel):
    """A business day's close as recorded."""

    day: date
    #: ``open`` (never closed, or reopened) or ``closed``.
    status: str
    closed_at: datetime | None = None
    closed_by: str | None = None
    reopened_at: datetime | None = None
    reopened_by: str | None = None
    reopen_reason: str | None = None
    #: The close's counts (operations, fees, cards), the unacknowledged outbox messages,
    #: the ``differences`` with the platform and the bank, and ``balanced``.
    summary: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClosingContext(TellerContext):
    """What the close's handlers need (built by the daemon)."""

    closing: DayClosing


CLOSING: Final = web.AppKey("closing", ClosingContext)


def _day(request: web.Request) -> date:
    text = request.match_info["day"]
    day = parse_day(text)
    if day is None:
        raise ProblemError(
            INVALID_DAY,
            f"Not a business day: {text[:32]!r} (YYYY-MM-DD, from {FIRST_DAY}).",
            "日期格式应为 YYYY-MM-DD，且不早于 2000-01-01。",
        )
    return day


def _refused(exc: ClosingError) -> ProblemError:
    problem = _PROBLEMS[exc.code]
    return ProblemError(problem, str(exc), _ZH[exc.code], **exc.members)


@post_once(CLOSING, checks=(_day,))
async def close_day(
    request: web.Request, api: ClosingContext, terminal: Terminal, body: bytes
) -> web.Response:
    """A supervisor closes a day: counted, compared with the platform and the bank."""
    del body  # nothing is sent: the path names the day
    day = _day(request)
    require_role(terminal, {Role.SUPERVISOR}, "close a business day")
    try:
        closed = await api.closing.close(day, terminal.id)
    except ClosingError as exc:
        raise _refused(exc) from None
    return json_response(DayOut.model_validate(closed))


@post_once(CLOSING, checks=(_day,))
async def reopen_day(
    request: web.Request, api: ClosingContext, terminal: Terminal, body: bytes
) -> web.Response:
    """A supervisor reopens a closed day, with the reason."""
    day = _day(request)
    require_role(terminal, {Role.SUPERVISOR}, "reopen a business day")
    parsed = parse_body(DayReopenIn, body)
    try:
        opened = await api.closing.reopen(day, parsed.reason, terminal.id)
    except ClosingError as exc:
        raise _refused(exc) from None
    return json_response(DayOut.model_validate(opened))


async def get_day(request: web.Request) -> web.Response:
    """The day's close as recorded (``open`` when never closed)."""
    api = request.app[CLOSING]
    terminal = api.terminals.identify(request)
    require_role(terminal, {Role.SUPERVISOR, Role.TELLER, Role.OPS}, "read a day's close")
    day = _day(request)
    return json_response(DayOut.model_validate(await api.closing.state(day)))


def add_routes(app: web.Application) -> None:
    """Mount the close's handlers (the context is under :data:`CLOSING`)."""
    app.router.add_get("/v1/days/{day}", get_day)
    app.router.add_post("/v1/days/{day}/close", close_day)
    app.router.add_post("/v1/days/{day}/reopen", reopen_day)


def _paths(kit: OpenApiKit) -> dict[str, Any]:
    day = {
        "name": "day",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "format": "date"},
    }
    answer = {
        "description": "The day's close",
        "content": {"application/json": {"schema": kit.ref("DayOut")}},
    }
    return {
        "/v1/days/{day}": {
            "get": {
                "operationId": "getDay",
                "summary": "日终状态 / A business day's close",
                "parameters": [day],
                "responses": {"200": answer, **kit.errors},
            }
        },
        "/v1/days/{day}/close": {
            "post": {
                "operationId": "closeDay",
                "summary": "日终结账 / Close a business day",
                "description": (
                    "Supervisor only. Counts the day (applications, fees, cards, outbox "
                    "messages not yet acknowledged), compares it with what the platform and "
                    "the bank accepted from this branch that day and lists every difference; "
                    "refused while an application of the day lacks its archive images. A "
                    "closed day takes no new acceptances, fees or withdrawals."
                ),
                "parameters": [day, kit.idempotency_header],
                "responses": {"200": answer, **kit.errors},
            }
        },
        "/v1/days/{day}/reopen": {
            "post": {
                "operationId": "reopenDay",
                "summary": "重新开启 / Reopen a closed day",
                "parameters": [day, kit.idempotency_header],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": kit.ref("DayReopenIn")}},
                },
                "responses": {"200": answer, **kit.errors},
            }
        },
    }


SECTION: Final = ApiSection(
    name="closing",
    models=(DayOut, DayReopenIn),
    add_routes=add_routes,
    paths=_paths,
)
