"""The upstream's part of the teller API: the platform's notices and the dead letters.

``GET /v1/outbox/dead-letters`` lists the upstream messages the relay gave up on
(supervisor and ops; no payloads). The endpoint the provincial platform pushes
loss notices to (12333, online, other branches):

``POST /v1/platform/notices`` takes one envelope (``application/octet-stream``)
from the configured platform and answers one sealed results envelope; see
:mod:`gateway.upstream.notices` and docs/protocols/platform.md ("Notices from
the platform"). No teller credentials: the envelope's signature authenticates
the platform. An envelope that does not open is answered 400 with its refusal
code in ``X-Envelope-Refused``, as the platform answers ours; the body is a
problem document (``envelope-refused``, the code again in ``envelope_code``).
A document inside that does not decode is 422 ``notice-undecodable``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from gateway.runtime.http.auth import Role, require_role
from gateway.runtime.http.kit import PAGE_MAX, ApiSection, TellerContext, read_body
from gateway.runtime.problems import INTERNAL_ERROR, ProblemError, register
from gateway.upstream.notices import NOTICE_PATH
from gateway.upstream.outbox import list_dead_letters
from gateway.upstream.schemas import DeadLetterOut
from gateway.upstream.transport import REFUSED_HEADER

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from gateway.runtime.http.kit import OpenApiKit
    from gateway.upstream.notices import PlatformNotices

__all__ = [
    "ENVELOPE_REFUSED",
    "NOTICES_UNAVAILABLE",
    "NOTICE_UNDECODABLE",
    "SECTION",
    "UPSTREAM",
    "UpstreamContext",
]

NOTICES_UNAVAILABLE: Final = register(
    "platform-notices-unavailable",
    404,  # the branch has no such service: not an outage worth a retry
    "This branch takes no platform notices (no [upstream])",
    "本网点未接入省级平台，不接收平台通知",
)
ENVELOPE_REFUSED: Final = register(
    "envelope-refused", 400, "The envelope was refused", "报文信封未通过验证，已拒收"
)
NOTICE_UNDECODABLE: Final = register(
    "notice-undecodable", 422, "The notice document does not decode", "通知报文无法解析"
)
_ENVELOPE_TYPE: Final = "application/octet-stream"


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamContext(TellerContext):
    """What the upstream's handlers need (built by the daemon)."""

    sessions: async_sessionmaker[AsyncSession]
    #: The platform's pushed loss notices (``None`` without ``[upstream]``).
    notices: PlatformNotices | None


UPSTREAM: Final = web.AppKey("upstream", UpstreamContext)


async def _notice(request: web.Request) -> web.Response:
    notices = request.app[UPSTREAM].notices
    if notices is None:
        raise ProblemError(
            NOTICES_UNAVAILABLE,
            "Without [upstream] this branch has no envelope keys to open platform notices.",
            "未配置 [upstream]，无法验证和解开平台通知。",
        )
    answer = await notices.receive(await read_body(request))
    if answer.refused is not None:
        raise ProblemError(
            ENVELOPE_REFUSED,
            f"The envelope was refused: {answer.refused}.",
            f"报文信封被拒收：{answer.refused}。",
            headers={REFUSED_HEADER: answer.refused},
            envelope_code=answer.refused,
        )
    if answer.status == NOTICE_UNDECODABLE.status:
        reason = answer.body.decode("utf-8", "replace")
        raise ProblemError(
            NOTICE_UNDECODABLE,
            f"The envelope opened but its document does not decode: {reason}.",
            "报文信封已验证，但其中的通知报文无法解析。",
            reason=reason,
        )
    if answer.status != web.HTTPOk.status_code:
        raise ProblemError(
            INTERNAL_ERROR,
            "The notice could not be answered; the platform may send it again.",
            "通知未能处理，平台可重新发送。",
        )
    return web.Response(body=answer.body, content_type=_ENVELOPE_TYPE)


async def dead_letters(request: web.Request) -> web.Response:
    """The oldest dead letters of the upstream outbox (supervisor and ops; no payloads)."""
    api = request.app[UPSTREAM]
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


def add_routes(app: web.Application) -> None:
    """Mount the platform's notice endpoint and the dead letters."""
    app.router.add_post(NOTICE_PATH, _notice)
    app.router.add_get("/v1/outbox/dead-letters", dead_letters)


def _paths(kit: OpenApiKit) -> dict[str, Any]:
    envelope = {_ENVELOPE_TYPE: {"schema": {"type": "string", "format": "binary"}}}
    paths: dict[str, Any] = {}
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
                                    "items": {"type": "array", "items": kit.ref("DeadLetterOut")}
                                },
                            }
                        }
                    },
                },
                **kit.errors,
            },
        }
    }
    paths |= {
        NOTICE_PATH: {
            "post": {
                "operationId": "platform_notice",
                "summary": "平台推送的挂失/解挂通知 / Loss notices pushed by the platform",
                "description": (
                    "One envelope from the configured platform (docs/protocols/envelope.md) "
                    "holding loss_notice items (pushCardLoss / notifyCardLoss); the answer is "
                    "the sealed results. Authenticated by the envelope, not a terminal."
                ),
                "requestBody": {"required": True, "content": envelope},
                "responses": {
                    "200": {"description": "Sealed results, one per item", "content": envelope},
                    "400": {
                        **kit.errors["400"],
                        "description": "Envelope refused (code in X-Envelope-Refused)",
                    },
                    "422": {**kit.errors["422"], "description": "The document does not decode"},
                    "404": kit.errors["404"],
                    "413": kit.errors["413"],
                },
            }
        }
    }
    return paths


SECTION: Final = ApiSection(
    name="upstream",
    models=(DeadLetterOut,),
    add_routes=add_routes,
    paths=_paths,
)
