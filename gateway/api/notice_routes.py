"""The endpoint the provincial platform pushes loss notices to (12333, online, other branches).

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

from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from gateway.api.routes import API, ApiSection
from gateway.api.routes import _read as read_body
from gateway.problems import INTERNAL_ERROR, ProblemError, register
from gateway.upstream.notices import NOTICE_PATH
from gateway.upstream.transport import REFUSED_HEADER

if TYPE_CHECKING:
    from gateway.api.routes import OpenApiKit

__all__ = ["ENVELOPE_REFUSED", "NOTICES_UNAVAILABLE", "NOTICE_UNDECODABLE", "SECTION"]

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


async def _notice(request: web.Request) -> web.Response:
    api = request.app[API]
    notices = api.service.notices
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


def add_notice_routes(app: web.Application) -> None:
    """Mount the platform's notice endpoint."""
    app.router.add_post(NOTICE_PATH, _notice)


def _paths(kit: OpenApiKit) -> dict[str, Any]:
    envelope = {_ENVELOPE_TYPE: {"schema": {"type": "string", "format": "binary"}}}
    return {
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


#: This module's part of the API (listed in :mod:`gateway.api.registry`).
SECTION: Final = ApiSection(
    name="platform-notices",
    models=(),
    add_routes=add_notice_routes,
    paths=_paths,
)
