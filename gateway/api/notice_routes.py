"""The endpoint the provincial platform pushes loss notices to (12333, online, other branches).

``POST /v1/platform/notices`` takes one envelope (``application/octet-stream``)
from the configured platform and answers one sealed results envelope; see
:mod:`gateway.upstream.notices` and docs/protocols/platform.md ("Notices from
the platform"). No teller credentials: the envelope's signature authenticates
the platform. An envelope that does not open is answered 400 with its refusal
code in ``X-Envelope-Refused``, as the platform answers ours.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from gateway.api.routes import API, ApiSection
from gateway.api.routes import _read as read_body
from gateway.problems import ProblemError, register
from gateway.upstream.notices import NOTICE_PATH
from gateway.upstream.transport import REFUSED_HEADER

if TYPE_CHECKING:
    from gateway.api.routes import OpenApiKit

__all__ = ["NOTICES_UNAVAILABLE", "SECTION"]

NOTICES_UNAVAILABLE: Final = register(
    "platform-notices-unavailable",
    404,  # the branch has no such service: not an outage worth a retry
    "This branch takes no platform notices (no [upstream])",
    "本网点未接入省级平台，不接收平台通知",
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
        return web.Response(
            status=answer.status, body=answer.body, headers={REFUSED_HEADER: answer.refused}
        )
    if answer.status != web.HTTPOk.status_code:
        return web.Response(status=answer.status, body=answer.body)
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
                    "400": {"description": "Envelope refused (code in X-Envelope-Refused)"},
                    "422": {"description": "The document does not decode"},
                    "404": kit.errors["404"],
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
