"""RFC 9457 problem details: every error the HTTP API returns, in one registry.

Each :class:`Problem` has a stable machine ``code`` that teller systems switch
on, an HTTP status, and a title in English and Chinese. A handler raises
:class:`ProblemError`; the middleware in :mod:`gateway.app` renders it as
``application/problem+json``::

    {
        "type": "urn:sscard-branchd:problem:not-found",
        "code": "not-found",
        "status": 404,
        "title": "Not found",
        "title_zh": "未找到",
        "detail": "...",
        "detail_zh": "...",
        "instance": "/x",
        "request_id": "...",
        "retryable": false,
    }

Codes are never renamed or reused; ``docs/api-errors.md`` lists them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from security.redaction import mask_personal_numbers, redact_value

if TYPE_CHECKING:
    from collections.abc import Mapping

    from gateway.runtime.refusals import Refusal

__all__ = [
    "PROBLEMS",
    "PROBLEM_CONTENT_TYPE",
    "REFUSALS",
    "REQUEST_ID",
    "Problem",
    "ProblemError",
    "problem_of",
    "problem_response",
    "refusal_key",
    "register",
]

PROBLEM_CONTENT_TYPE: Final = "application/problem+json"
#: The request id the middleware assigns (echoed in every problem document).
REQUEST_ID: Final = web.RequestKey("request_id", str)


#: Statuses that say "not now": the same request may succeed later, unchanged.
_RETRYABLE_STATUSES: Final = frozenset({502, 503, 504})


@dataclass(frozen=True, slots=True)
class Problem:
    """One kind of error: stable code, HTTP status, bilingual title.

    ``retryable``: the same request, sent again unchanged (same Idempotency-Key for
    a POST) later, may succeed: a passing outage or another request holding what
    this one needs. Everything else needs a change first (materials, state, input).
    """

    code: str
    status: int
    title: str
    title_zh: str
    retryable: bool = False

    @property
    def type_uri(self) -> str:
        """The RFC 9457 ``type`` member for this problem."""
        return f"urn:sscard-branchd:problem:{self.code}"


PROBLEMS: dict[str, Problem] = {}


def register(
    code: str, status: int, title: str, title_zh: str, *, retryable: bool | None = None
) -> Problem:
    """Add a problem to the registry; a code can be registered once only.

    ``retryable`` defaults to the status's meaning (502, 503, 504: yes).
    """
    if code in PROBLEMS:
        raise ValueError(f"problem code {code!r} registered twice")
    if retryable is None:
        retryable = status in _RETRYABLE_STATUSES
    problem = Problem(code, status, title, title_zh, retryable)
    PROBLEMS[code] = problem
    return problem


BAD_REQUEST = register("bad-request", 400, "Bad request", "请求无效")
NOT_FOUND = register("not-found", 404, "Not found", "未找到")
METHOD_NOT_ALLOWED = register("method-not-allowed", 405, "Method not allowed", "不支持该请求方法")
PAYLOAD_TOO_LARGE = register("payload-too-large", 413, "Request body too large", "请求内容过大")
UNSUPPORTED_MEDIA_TYPE = register(
    "unsupported-media-type", 415, "Unsupported media type", "不支持的内容类型"
)
INTERNAL_ERROR = register("internal-error", 500, "Internal error", "系统内部错误")
NOT_READY = register("not-ready", 503, "Service not ready", "服务尚未就绪")
SHUTTING_DOWN = register("shutting-down", 503, "Service is shutting down", "服务正在停止")

_BY_STATUS: Final = {
    400: BAD_REQUEST,
    404: NOT_FOUND,
    405: METHOD_NOT_ALLOWED,
    413: PAYLOAD_TOO_LARGE,
    415: UNSUPPORTED_MEDIA_TYPE,
}


class ProblemError(Exception):
    """Raised by handlers; rendered as problem+json by the middleware.

    Attributes:
        problem: which registered problem this is.
        detail: English explanation of this occurrence.
        detail_zh: Chinese explanation of this occurrence.
        extra: additional members (for example the list of missing materials).
        headers: HTTP headers the answer carries (for example ``WWW-Authenticate``).
    """

    def __init__(
        self,
        problem: Problem,
        detail: str | None = None,
        detail_zh: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,  # noqa: ANN401 - extension members are JSON values of any type
    ) -> None:
        """Keep the problem, the bilingual detail, extension members and headers."""
        super().__init__(problem.code)
        self.problem = problem
        self.detail = detail
        self.detail_zh = detail_zh
        self.headers = dict(headers or {})
        self.extra = extra


def problem_for_status(status: int) -> Problem:
    """The registered problem for an HTTP error status aiohttp raised by itself."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return INTERNAL_ERROR if status >= 500 else BAD_REQUEST  # noqa: PLR2004 - HTTP class


def problem_response(
    error: ProblemError, *, instance: str, request_id: str | None = None
) -> web.Response:
    """Render ``error`` as an ``application/problem+json`` response."""
    problem = error.problem
    body: dict[str, Any] = {
        "type": problem.type_uri,
        "code": problem.code,
        "status": problem.status,
        "title": problem.title,
        "title_zh": problem.title_zh,
        "retryable": problem.retryable,
    }
    if error.detail is not None:
        body["detail"] = mask_personal_numbers(error.detail)
    if error.detail_zh is not None:
        body["detail_zh"] = mask_personal_numbers(error.detail_zh)
    body["instance"] = mask_personal_numbers(instance)
    if request_id is not None:
        body["request_id"] = request_id
    # Personal data never leaves in a problem: numbers masked, personal fields too.
    body.update(redact_value(dict(error.extra)))
    response = web.Response(
        status=problem.status,
        # Lone surrogates (a path or value that came from undecodable bytes) are escaped.
        body=json.dumps(body, ensure_ascii=False).encode("utf-8", "backslashreplace"),
        content_type=PROBLEM_CONTENT_TYPE,
        charset="utf-8",
    )
    response.headers.update(error.headers)
    return response


#: Each served section's refusal reasons and their problems, keyed by the reason's enum
#: and value (two features' reasons never collide, whatever their values).
REFUSALS: Final = web.AppKey("refusals", dict[tuple[type[StrEnum], str], Problem])


def refusal_key(reason: StrEnum) -> tuple[type[StrEnum], str]:
    """The key of ``reason`` in the application's refusal table."""
    return type(reason), reason.value


def problem_of(app: web.Application, refusal: Refusal) -> ProblemError:
    """The problem ``refusal`` is answered with, by the tables of the served sections.

    A reason no section maps is a programming error: ``internal-error`` (logged by
    the caller's middleware as any unexpected failure would be, with the reason).
    """
    problem = app.get(REFUSALS, {}).get(refusal_key(refusal.reason), INTERNAL_ERROR)
    return ProblemError(problem, refusal.detail, refusal.detail_zh, **refusal.members)
