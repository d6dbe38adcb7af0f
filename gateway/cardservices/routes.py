"""Teller API routes of the window card services: PIN change, reset, unlock, status.

``POST /v1/operations/pin-change``, ``/pin-reset`` and ``/unlock`` take the
same :class:`~gateway.operations.schemas.OperationRequest` as every operation and act
on the card in the window's reader with the window's PIN pad ([pin] windows).
``POST /v1/card-services/status`` reads the card in the reader;
``POST /v1/card-services/status-by-identity`` looks the applicant's card up by
the identity number in the body (never in a URL). Every write is run under
the caller's ``Idempotency-Key``: a retry gets the stored answer and the card
is never touched twice.

:class:`~gateway.cardservices.service.CardServices` refuses with a
:class:`~gateway.cardservices.errors.CardServiceReason`; the card services'
problems are registered here, beside :data:`PROBLEMS`, the one table that
answers each reason with its problem (the section's ``problems``). Three reasons
are answered with the operations' problems (``incomplete-request``,
``card-not-found``, ``upstream-unavailable``), as the business service's are. A
handler itself raises a problem only for what the branch cannot serve: no
``[pin]`` windows at all (``pin-services-unavailable``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web
from pydantic import BaseModel

from gateway.cardservices.errors import CardServiceReason
from gateway.operations.catalogue import CATALOGUE, Operation
from gateway.operations.routes import (
    CARD_NOT_FOUND,
    INCOMPLETE,
    PIN_SERVICES_UNAVAILABLE,
    UPSTREAM_UNAVAILABLE,
)
from gateway.operations.schemas import OperationRequest
from gateway.runtime.http.kit import (
    ApiSection,
    TellerContext,
    json_response,
    parse_body,
    post_once,
    read_body,
)
from gateway.runtime.problems import Problem, ProblemError, register

if TYPE_CHECKING:
    from collections.abc import Mapping
    from enum import StrEnum

    from gateway.cardservices import CardServices, Outcome
    from gateway.operations.service import BusinessService
    from gateway.runtime.http.auth import Terminal
    from gateway.runtime.http.kit import OpenApiKit

__all__ = [
    "CARD_APPLICATION_BLOCKED",
    "CARD_HOLDER_MISMATCH",
    "CARD_OPERATIONS",
    "CARD_REFUSED",
    "CARD_SERVICES",
    "CARD_UNREADABLE",
    "ISSUER_REFUSED",
    "ISSUER_UNREACHABLE",
    "PIN_DEFAULT_REFUSED",
    "PIN_LOCKED",
    "PIN_NOT_LOCKED",
    "PIN_PAD_FAILED",
    "PIN_WRONG",
    "PROBLEMS",
    "SECTION",
    "WINDOW_NOT_EQUIPPED",
    "CardServiceResult",
    "CardServicesContext",
    "add_card_routes",
]

WINDOW_NOT_EQUIPPED: Final = register(
    "window-not-equipped",
    409,
    "This terminal has no card reader and PIN pad assigned",
    "本终端未配置读卡器和密码键盘",
)
WINDOW_BUSY: Final = register(
    "window-busy",
    409,
    "The window's card reader and PIN pad serve another request now",
    "本窗口的读卡器和密码键盘正在办理另一笔业务",
    retryable=True,
)
CARD_UNREADABLE: Final = register(
    "card-unreadable", 409, "No readable card in the window's reader", "读卡器中无卡或无法读卡"
)
CARD_APPLICATION_BLOCKED: Final = register(
    "card-application-blocked",
    409,
    "The card's social-security application is blocked",
    "社保卡应用已锁定（应用锁）",
)
CARD_HOLDER_MISMATCH: Final = register(
    "card-holder-mismatch",
    409,
    "The card in the reader belongs to someone else",
    "读卡器中的社保卡不属于本次申办人",
)
PIN_WRONG: Final = register("pin-wrong", 422, "Wrong PIN", "密码错误")
PIN_LOCKED: Final = register("pin-locked", 409, "The PIN is locked", "密码已锁定")
PIN_NOT_LOCKED: Final = register(
    "pin-not-locked", 409, "The PIN is not locked; nothing to unlock", "密码未锁定，无需解锁"
)
PIN_DEFAULT_REFUSED: Final = register(
    "pin-default-refused",
    422,
    "The initial PIN cannot be the new PIN",
    "新密码不能为初始密码",
)
PIN_PAD_FAILED: Final = register(
    "pin-pad-failed", 409, "The PIN was not entered on the pad", "密码键盘未完成输入"
)
CARD_REFUSED: Final = register(
    "card-refused", 409, "The card refused the command", "社保卡拒绝执行该指令"
)
ISSUER_REFUSED: Final = register(
    "issuer-refused",
    409,
    "The issuing province's platform refused",
    "发卡地平台拒绝办理",
)
ISSUER_UNREACHABLE: Final = register(
    "issuer-unreachable",
    502,
    "The issuing province's platform did not answer in a usable way",
    "发卡地平台未正常应答",
)

#: The problem each refusal of the card services is answered with (the section's table).
PROBLEMS: Final[Mapping[StrEnum, Problem]] = {
    CardServiceReason.WINDOW_NOT_EQUIPPED: WINDOW_NOT_EQUIPPED,
    CardServiceReason.WINDOW_BUSY: WINDOW_BUSY,
    CardServiceReason.CARD_UNREADABLE: CARD_UNREADABLE,
    CardServiceReason.CARD_APPLICATION_BLOCKED: CARD_APPLICATION_BLOCKED,
    CardServiceReason.CARD_HOLDER_MISMATCH: CARD_HOLDER_MISMATCH,
    CardServiceReason.PIN_WRONG: PIN_WRONG,
    CardServiceReason.PIN_LOCKED: PIN_LOCKED,
    CardServiceReason.PIN_NOT_LOCKED: PIN_NOT_LOCKED,
    CardServiceReason.PIN_DEFAULT_REFUSED: PIN_DEFAULT_REFUSED,
    CardServiceReason.PIN_PAD_FAILED: PIN_PAD_FAILED,
    CardServiceReason.CARD_REFUSED: CARD_REFUSED,
    CardServiceReason.ISSUER_REFUSED: ISSUER_REFUSED,
    CardServiceReason.ISSUER_UNREACHABLE: ISSUER_UNREACHABLE,
    # the operations' own problems, answered as the business service's are
    CardServiceReason.UPSTREAM_UNAVAILABLE: UPSTREAM_UNAVAILABLE,
    CardServiceReason.INCOMPLETE: INCOMPLETE,
    CardServiceReason.CARD_NOT_FOUND: CARD_NOT_FOUND,
}

#: The catalogue operations these routes serve: the live-only ones, on the card at the window.
CARD_OPERATIONS: Final = {
    Operation.PIN_CHANGE: "pin_change",
    Operation.PIN_RESET: "pin_reset",
    Operation.UNLOCK: "unlock",
}
_STATUS: Final = {
    "/v1/card-services/status": "status_from_card",
    "/v1/card-services/status-by-identity": "status_by_identity",
}


class CardServiceResult(BaseModel):
    """What the teller sees after a card service."""

    operation: Operation
    status: str = "completed"
    card_number: str
    holder: str
    issuer_region: str
    issuer_province: str
    cross_region: bool
    tries_left_before: int | None
    tries_left_after: int | None
    application_state: str | None
    local_state: dict[str, str] | None
    #: The card was formally lost or cancelled: its application was just blocked on the chip.
    chip_blocked: bool = False
    message_en: str
    message_zh: str
    #: The receipt of a PIN change, reset or unlock (attach its images to it).
    receipt_number: str | None = None

    @classmethod
    def of(cls, outcome: Outcome) -> CardServiceResult:
        """From the service's outcome."""
        return cls(
            operation=outcome.operation,
            card_number=outcome.card_number,
            holder=outcome.holder,
            issuer_region=outcome.issuer_region,
            issuer_province=outcome.issuer_province,
            cross_region=outcome.cross_region,
            tries_left_before=outcome.tries_left_before,
            tries_left_after=outcome.tries_left_after,
            application_state=outcome.application_state,
            local_state=outcome.local_state,
            chip_blocked=outcome.chip_blocked,
            message_en=outcome.message_en,
            message_zh=outcome.message_zh,
            receipt_number=outcome.receipt_number,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CardServicesContext(TellerContext):
    """What the card-service handlers need (built by the daemon)."""

    #: ``None`` without ``[pin]`` (or its devices): the operation's checks run, then a refusal.
    cards: CardServices | None
    operations: BusinessService


CARD_SERVICES: Final = web.AppKey("card_services", CardServicesContext)


def add_card_routes(app: web.Application) -> None:
    """Mount the card-service routes; without card services they answer 404."""
    for operation, method in CARD_OPERATIONS.items():
        app.router.add_post(
            f"/v1/operations/{operation.value}", _handler(method, write=True, operation=operation)
        )
    for path, method in _STATUS.items():
        app.router.add_post(path, _handler(method, write=False))


def _services(api: CardServicesContext) -> CardServices:
    if api.cards is None:
        raise ProblemError(
            PIN_SERVICES_UNAVAILABLE,
            "This branch has no [pin] windows with a card encoder, a PIN pad and the "
            "provincial platform configured; nothing was changed.",
            "本网点未配置读卡器、密码键盘及省级平台（[pin]），未做任何更改。",
        )
    return api.cards


def _handler(method: str, *, write: bool, operation: Operation | None = None) -> Any:  # noqa: ANN401 - an aiohttp handler
    async def perform(
        request: web.Request, api: CardServicesContext, terminal: Terminal, body: bytes
    ) -> web.Response:
        del request
        parsed = parse_body(OperationRequest, body)
        if api.cards is None and operation is not None:
            # Without [pin] the catalogue's checks still answer first (materials,
            # roles, the platform's circuit), then 501: nothing is changed.
            await api.operations.perform(operation, parsed, terminal, digest="", approval_id=None)
        services = _services(api)
        outcome: Outcome = await getattr(services, method)(parsed, terminal)
        return json_response(CardServiceResult.of(outcome))

    perform.__name__ = f"card_{method}"
    if write:
        return post_once(CARD_SERVICES)(perform)

    async def handle(request: web.Request) -> web.Response:  # a read: no Idempotency-Key
        api = request.app[CARD_SERVICES]
        terminal = api.terminals.identify(request)
        return await perform(request, api, terminal, await read_body(request))

    handle.__name__ = f"card_{method}"
    return handle


def _paths(kit: OpenApiKit) -> dict[str, Any]:
    """The OpenAPI path items of these routes."""
    answer = {
        "200": {
            "description": "Done on the card: what happened, the tries left, who answered",
            "content": {"application/json": {"schema": kit.ref("CardServiceResult")}},
        },
        **kit.errors,
    }
    body = {
        "required": True,
        "content": {"application/json": {"schema": kit.ref("OperationRequest")}},
    }
    paths: dict[str, Any] = {}
    for operation, method in CARD_OPERATIONS.items():
        spec = CATALOGUE[operation]
        paths[f"/v1/operations/{operation.value}"] = {
            "post": {
                "operationId": operation.value,
                "summary": f"{spec.title_zh} / {spec.title_en} (card in the window's reader)",
                "description": f"CardServices.{method}: the window's encoder and PIN pad.",
                "parameters": [kit.idempotency_header],
                "requestBody": body,
                "responses": answer,
            }
        }
    summaries = {
        "/v1/card-services/status": "读卡查询应用状态 / Status of the card in the reader",
        "/v1/card-services/status-by-identity": (
            "按身份证号查询应用状态 / Status by the identity number in the body"
        ),
    }
    for path, method in _STATUS.items():
        paths[path] = {
            "post": {
                "operationId": method,
                "summary": summaries[path],
                "requestBody": body,
                "responses": answer,
            }
        }
    return paths


SECTION: Final = ApiSection(
    name="card-services",
    models=(CardServiceResult,),
    add_routes=add_card_routes,
    paths=_paths,
    problems=PROBLEMS,
)
