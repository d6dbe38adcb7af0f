"""Teller API routes of the window card services: PIN change, reset, unlock, status.

``POST /v1/operations/pin-change``, ``/pin-reset`` and ``/unlock`` take the
same :class:`~gateway.operations.schemas.OperationRequest` as every operation and act
on the card in the window's reader with the window's PIN pad ([pin] windows).
``POST /v1/card-services/status`` reads the card in the reader;
``POST /v1/card-services/status-by-identity`` looks the applicant's card up by
the identity number in the body (never in a URL). Every write is run under
the caller's ``Idempotency-Key``: a retry gets the stored answer and the card
is never touched twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web
from pydantic import BaseModel

from gateway.operations.catalogue import CATALOGUE, Operation
from gateway.operations.routes import PIN_SERVICES_UNAVAILABLE
from gateway.operations.schemas import OperationRequest
from gateway.runtime.http.kit import ApiSection, TellerContext, json_response, parse_body, read_body
from gateway.runtime.problems import ProblemError

if TYPE_CHECKING:
    from gateway.cardservices import CardServices, Outcome
    from gateway.operations.service import BusinessService
    from gateway.runtime.http.kit import OpenApiKit

__all__ = [
    "CARD_OPERATIONS",
    "CARD_SERVICES",
    "SECTION",
    "CardServiceResult",
    "CardServicesContext",
    "add_card_routes",
]

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
    async def handle(request: web.Request) -> web.Response:
        api = request.app[CARD_SERVICES]
        terminal = api.terminals.identify(request)
        body = await read_body(request)

        async def perform() -> web.Response:
            parsed = parse_body(OperationRequest, body)
            if api.cards is None and operation is not None:
                # Without [pin] the catalogue's checks still answer first (materials,
                # roles, the platform's circuit), then 501: nothing is changed.
                await api.operations.perform(
                    operation, parsed, terminal, digest="", approval_id=None
                )
            services = _services(api)
            outcome: Outcome = await getattr(services, method)(parsed, terminal)
            return json_response(CardServiceResult.of(outcome))

        if write:
            return await api.idempotency.run(request, terminal.id, body, perform)
        return await perform()

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
)
