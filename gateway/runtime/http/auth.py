"""Which terminal is calling, and what its role allows.

A terminal is identified by the common name of its TLS client certificate
(production: mutual TLS, see ``[server.tls]``) or, for development, by a bearer
token from the configuration. Tokens are compared as SHA-256 digests in
constant time; they are never logged.

aiohttp hands the bytes of a header that are not UTF-8 over as lone
surrogates: such a header holds no registered token, and is answered like any
unknown one (401). Every 401 carries ``WWW-Authenticate: Bearer`` (RFC 6750
section 3), with ``error="invalid_token"`` when credentials were offered.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Protocol

from gateway.runtime.problems import ProblemError, register
from gateway.runtime.refusals import Refusal

if TYPE_CHECKING:
    from collections.abc import Iterable

    from aiohttp import web
    from pydantic import SecretStr

__all__ = [
    "ACCESS_PROBLEMS",
    "FORBIDDEN",
    "UNAUTHENTICATED",
    "AccessReason",
    "Role",
    "Terminal",
    "TerminalRegistry",
    "TerminalSettings",
    "bearer_token",
]

UNAUTHENTICATED: Final = register(
    "unauthenticated", 401, "Terminal not recognised", "终端未登记或未认证"
)
#: RFC 6750 section 3: the challenge of every 401 (the realm names the service).
CHALLENGE: Final = 'Bearer realm="sscard-branchd"'
FORBIDDEN: Final = register(
    "forbidden", 403, "Not allowed for this terminal's role", "该终端角色无权办理此业务"
)


class Role(StrEnum):
    """Roles of the terminals that call the API."""

    TELLER = "teller"  # 受理岗
    SUPERVISOR = "supervisor"
    ARCHIVE = "archive"  # 档案管理岗
    KIOSK = "kiosk"
    OPS = "ops"


class TerminalSettings(Protocol):
    """One configured terminal (``[[terminals]]``, ``gateway.config.TerminalConfig``)."""

    @property
    def id(self) -> str:
        """The terminal's id."""
        ...

    @property
    def role(self) -> str:
        """Its role's value."""
        ...

    @property
    def certificate_cn(self) -> str | None:
        """The common name of its TLS client certificate, if it has one."""
        ...

    @property
    def token(self) -> SecretStr | None:
        """Its development bearer token, if it has one."""
        ...


@dataclass(frozen=True, slots=True)
class Terminal:
    """An authenticated caller."""

    id: str
    role: Role


class TerminalRegistry:
    """The configured terminals, looked up by certificate name or token."""

    def __init__(self, terminals: Iterable[TerminalSettings]) -> None:
        """Index the terminals by certificate common name and token digest."""
        self._by_cn: dict[str, Terminal] = {}
        self._by_token: list[tuple[bytes, Terminal]] = []
        for config in terminals:
            terminal = Terminal(config.id, Role(config.role))
            if config.certificate_cn:
                self._by_cn[config.certificate_cn] = terminal
            if config.token is not None:
                digest = hashlib.sha256(config.token.get_secret_value().encode()).digest()
                self._by_token.append((digest, terminal))

    def identify(self, request: web.Request) -> Terminal:
        """The terminal behind ``request``, or a 401 problem."""
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        common_name = _common_name(peer)
        if common_name is not None and common_name in self._by_cn:
            return self._by_cn[common_name]
        header = request.headers.get("Authorization")
        token = bearer_token(header)
        if token is not None:
            offered = hashlib.sha256(token).digest()
            found = None
            for digest, terminal in self._by_token:
                if hmac.compare_digest(digest, offered):
                    found = terminal
            if found is not None:
                return found
        challenge = CHALLENGE if header is None else f'{CHALLENGE}, error="invalid_token"'
        raise ProblemError(
            UNAUTHENTICATED,
            "Present a registered terminal certificate or token.",
            "请使用已登记的终端证书或令牌。",
            headers={"WWW-Authenticate": challenge},
        )


def bearer_token(header: str | None) -> bytes | None:
    """The UTF-8 bytes of the token of an ``Authorization: Bearer <token>`` header, or ``None``.

    The scheme is case-insensitive (RFC 9110 section 11.1). Another scheme, an
    empty token, or bytes that were not UTF-8 (lone surrogates here) are no
    token at all.
    """
    if header is None:
        return None
    scheme, _, token = header.strip(" \t").partition(" ")
    token = token.strip(" \t")
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        return token.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes, kept by aiohttp as lone surrogates
        return None


def _common_name(peer: Any) -> str | None:  # noqa: ANN401 - ssl's getpeercert() dict
    if not isinstance(peer, dict):
        return None
    for rdn in peer.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


class AccessReason(StrEnum):
    """Why a known terminal is refused, whichever feature asks (answered ``forbidden``)."""

    FORBIDDEN = "forbidden"


#: The runtime's own refusals and their problems: every application answers them.
ACCESS_PROBLEMS: Final = {AccessReason.FORBIDDEN: FORBIDDEN}


def require_role(terminal: Terminal, allowed: Iterable[Role], what: str) -> None:
    """Refuse (``AccessReason.FORBIDDEN``, 403) unless the terminal's role is in ``allowed``.

    A refusal, not an HTTP problem: services call it too; the application maps it
    through :data:`ACCESS_PROBLEMS`.
    """
    if terminal.role not in set(allowed):
        raise Refusal(
            AccessReason.FORBIDDEN,
            f"A {terminal.role.value} terminal may not {what}.",
            f"{terminal.role.value}终端无权办理：{what}。",
            role=terminal.role.value,
        )
