"""Who may read the branch's operational pages: ``/metrics``, ``/ops`` and ``/readyz`` details.

With ``[server] ops_token`` set, these answer only a caller that presents the
token: ``Authorization: Bearer <token>`` (Prometheus' ``authorization`` in a
scrape job) or HTTP Basic with the token as the password (a browser asks for it
once and sends it with the page's own requests, the event stream included).
Others get a 401 problem with both challenges; ``/readyz`` still answers them
its status, without the details. Without ``ops_token`` the pages are open, as on
a loopback-only daemon.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import TYPE_CHECKING, Final

from gateway.runtime.http.auth import bearer_token
from gateway.runtime.problems import ProblemError, register

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["OPS_CHALLENGE", "OPS_UNAUTHENTICATED", "OpsGate"]

OPS_UNAUTHENTICATED: Final = register(
    "ops-unauthenticated", 401, "The operations token is required", "需提供运维令牌"
)
#: RFC 9110 section 11.6.1: both schemes the token is taken in.
OPS_CHALLENGE: Final = 'Bearer realm="sscard-branchd ops", Basic realm="sscard-branchd ops"'


class OpsGate:
    """Checks the operations token (compared as SHA-256 digests, in constant time)."""

    def __init__(self, token: str | None) -> None:
        """Guard with ``token``; ``None`` leaves the pages open."""
        self._digest = hashlib.sha256(token.encode()).digest() if token else None

    @property
    def open(self) -> bool:
        """No token is configured."""
        return self._digest is None

    def allows(self, request: web.Request) -> bool:
        """Whether ``request`` carries the token (always, when none is configured)."""
        if self._digest is None:
            return True
        offered = _offered(request.headers.get("Authorization"))
        return offered is not None and hmac.compare_digest(
            hashlib.sha256(offered).digest(), self._digest
        )

    def require(self, request: web.Request) -> None:
        """401 ``ops-unauthenticated`` (with both challenges) unless :meth:`allows`."""
        if not self.allows(request):
            raise ProblemError(
                OPS_UNAUTHENTICATED,
                "Send the operations token ([server] ops_token) as a Bearer token or as the "
                "password of HTTP Basic.",
                "请以 Bearer 令牌或 HTTP Basic 密码方式提供运维令牌（[server] ops_token）。",
                headers={"WWW-Authenticate": OPS_CHALLENGE},
            )


def _offered(header: str | None) -> bytes | None:
    """The token in a Bearer header, or the password of a Basic one."""
    token = bearer_token(header)
    if token is not None or header is None:
        return token
    scheme, _, credentials = header.strip(" \t").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(" \t").encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None
    _, colon, password = decoded.partition(b":")
    return password if colon and password else None
