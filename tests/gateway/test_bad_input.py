"""Bytes, headers, query strings and bodies the teller API cannot take: a 4xx problem, never a 5xx.

The daemon runs in this process with everything configured (the demo world:
production, the platform and the bank, platform notices), on SQLite and
PostgreSQL (which refuses NUL in text where SQLite keeps it). Requests that
aiohttp's client would not send (bytes that are not UTF-8 in a header) go
over a raw socket. Each refusal is checked for its status, its content type
``application/problem+json`` and its stable ``code``, and that nothing changed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from sqlalchemy import text

from gateway.demo.world import FEEDER, DemoWorld
from tests.gateway.issuance.world import Teller

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence
    from pathlib import Path

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
CHALLENGE = 'Bearer realm="sscard-branchd"'


@dataclass(frozen=True)
class Raw:
    """An answer read off the socket."""

    status: int
    headers: dict[str, str]
    body: bytes

    def problem(self) -> dict[str, Any]:
        """The body as a problem document (checks the content type)."""
        assert self.headers.get("content-type", "").startswith(PROBLEM), (self.status, self.body)
        document: dict[str, Any] = json.loads(self.body)
        assert document["status"] == self.status
        return document


@dataclass
class World:
    """The running world, a teller's JSON calls and raw requests."""

    world: DemoWorld
    teller: Teller

    async def raw(
        self,
        method: str,
        target: bytes,
        headers: Sequence[tuple[bytes, bytes]] = (),
        body: bytes = b"",
    ) -> Raw:
        """Send exactly these bytes as one HTTP/1.1 request; read the whole answer."""
        url = urlsplit(self.world.base_url)
        assert url.hostname is not None
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        lines = [
            method.encode() + b" " + target + b" HTTP/1.1",
            b"Host: branchd",
            b"Connection: close",
        ]
        lines += [name + b": " + value for name, value in headers]
        lines.append(b"Content-Length: " + str(len(body)).encode())
        writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 30)
        writer.close()
        await writer.wait_closed()
        head, _, rest = answer.partition(b"\r\n\r\n")
        status_line, *header_lines = head.split(b"\r\n")
        found = {}
        for line in header_lines:
            name, _, value = line.partition(b":")
            found[name.decode().lower()] = value.strip().decode("latin-1")
        return Raw(int(status_line.split()[1]), found, rest)

    def auth(self, role: str = "teller") -> tuple[bytes, bytes]:
        """The Authorization header of ``role``'s terminal."""
        return b"Authorization", b"Bearer " + self.world.tokens[role].encode()

    async def ledger(self) -> list[tuple[Any, ...]]:
        """Every stock movement in the database."""
        assert self.world.daemon is not None
        async with self.world.daemon.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT feeder, kind, quantity FROM production_stock ORDER BY key")
            )
            return [tuple(row) for row in rows]

    async def stock(self) -> dict[str, Any]:
        """GET /v1/stock."""
        status, stock = await self.teller.call("GET", "/v1/stock")
        assert status == 200, stock
        return dict(stock)


@pytest.fixture
async def world(tmp_path: Path, database_url: str) -> AsyncIterator[World]:
    """The demo world on ``database_url`` with 5 blanks loaded (stopped at the end)."""
    async with (
        DemoWorld(tmp_path / "world", port=0, time_scale=0.0, database_url=database_url) as demo,
        aiohttp.ClientSession() as http,
    ):
        teller = Teller(demo, http)
        await teller.load(5)
        yield World(demo, teller)


async def test_non_utf8_authorization_is_a_401_with_a_bearer_challenge(world: World) -> None:
    """Bytes that are not UTF-8 in Authorization: 401 problem, challenge, nothing written."""
    before = await world.ledger()
    load = json.dumps({"feeder": FEEDER, "quantity": 3, "box": "B-2"}).encode()
    offered = [
        b"Bearer \xff\xfe",
        b"Bearer \xed\xa0\x80",  # a UTF-16 surrogate encoded as if UTF-8
        b"Bearer " + world.world.tokens["teller"].encode() + b"\x80",
        b"bearer \xc3\x28",
        b"Basic \xff\xfe",
        b"Bearer",
        b"Bearer wrong-token",
    ]
    for value in offered:
        for method, target, body in (
            ("GET", b"/v1/applications", b""),
            ("POST", b"/v1/stock/loads", load),
        ):
            headers = [(b"Authorization", value), (b"Idempotency-Key", uuid.uuid4().hex.encode())]
            answer = await world.raw(method, target, headers, body)
            assert answer.status == 401, (value, answer)
            assert answer.problem()["code"] == "unauthenticated"
            assert answer.headers["www-authenticate"] == f'{CHALLENGE}, error="invalid_token"'
    missing = await world.raw("GET", b"/v1/production/queue")
    assert (missing.status, missing.problem()["code"]) == (401, "unauthenticated")
    assert missing.headers["www-authenticate"] == CHALLENGE
    assert await world.ledger() == before
    ok = await world.raw("GET", b"/v1/applications", [world.auth()])
    assert ok.status == 200


async def test_every_401_of_every_route_carries_the_challenge(world: World) -> None:
    """Each route of the OpenAPI document that needs a terminal answers 401 with the challenge."""
    status, document = await world.teller.call("GET", "/openapi.json")
    assert status == 200
    seen = 0
    for path, operations in document["paths"].items():
        for method in operations:
            target = path.replace("{", "x").replace("}", "").encode()
            if path.endswith("{line}/to-single"):
                target = target.replace(b"xline", b"1")
            answer = await world.raw(method.upper(), target, [(b"Authorization", b"Bearer \xff")])
            if path == "/v1/platform/notices":  # the envelope authenticates the platform
                assert answer.status == 400
                continue
            assert answer.status == 401, (path, answer)
            assert answer.headers["www-authenticate"].startswith(CHALLENGE)
            seen += 1
    assert seen > 40


def cursor(value: bytes) -> bytes:
    """A cursor made like the API's, of any content."""
    return base64.urlsafe_b64encode(value)


BAD_QUERIES = [
    (b"cursor=LTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5", "cursor"),  # -999...
    (b"cursor=" + cursor(b"9" * 60), "cursor"),
    (b"cursor=" + cursor(str(2**31).encode()), "cursor"),  # one past the largest row id
    (b"cursor=" + cursor(str(2**63).encode()), "cursor"),
    (b"cursor=" + cursor(b"0"), "cursor"),
    (b"cursor=" + cursor(b"-1"), "cursor"),
    (b"cursor=" + cursor(b" 12"), "cursor"),
    (b"cursor=" + cursor(b"1_0"), "cursor"),
    (b"cursor=" + cursor("١٢".encode()), "cursor"),  # Arabic-Indic digits int() would take
    (b"cursor=" + cursor(b"\xff\xfe"), "cursor"),
    (b"cursor=MQ", "cursor"),  # no padding
    (b"cursor=%00", "cursor"),
    (b"cursor=%ff%fe", "cursor"),
    (b"cursor=%ed%a0%80", "cursor"),
    (b"cursor=", "cursor"),
    (b"limit=0", "limit"),
    (b"limit=101", "limit"),
    (b"limit=-5", "limit"),
    (b"limit=99999999999999999999999", "limit"),
    (b"limit=%E2%91%A0", "limit"),  # CIRCLED DIGIT ONE
    (b"limit=1e2", "limit"),
    (b"limit=%ff", "limit"),
    (b"operation=%00", "operation"),
    (b"operation=nope", "operation"),
    (b"status=%ed%a0%80", "status"),
    (b"status=", "status"),
    (b"overdue=1", "overdue"),
    (b"overdue=%00", "overdue"),
]


async def test_bad_query_parameters_are_400_naming_the_parameter(world: World) -> None:
    """A cursor or filter the API did not give is 400 bad-request naming it; good ones work."""
    for query, parameter in BAD_QUERIES:
        answer = await world.raw("GET", b"/v1/applications?" + query, [world.auth()])
        assert answer.status == 400, (query, answer)
        problem = answer.problem()
        assert (problem["code"], problem["parameter"]) == ("bad-request", parameter), query
    for query in (b"cursor=" + cursor(b"1"), b"cursor=" + cursor(str(2**31 - 1).encode())):
        answer = await world.raw("GET", b"/v1/applications?limit=100&" + query, [world.auth()])
        assert answer.status == 200, answer
        assert json.loads(answer.body) == {"items": [], "next_cursor": None}


async def test_bad_path_segments_are_refused(world: World) -> None:
    """Ids that cannot be the daemon's are the resource's 404; a bad line number is 400."""
    auth = [world.auth(), (b"Idempotency-Key", b"k-path")]
    for segment in (b"%00", b"%ff", b"%ed%a0%80", b"x" * 65, b"a%0d%0aSet-Cookie:%20x"):
        for target, code in (
            (b"/v1/production/jobs/" + segment, "not-found"),
            (b"/v1/batches/" + segment, "batch-not-found"),
            (b"/v1/batches/" + segment + b"/rows", "batch-not-found"),
            (b"/v1/batches/" + segment + b"/report", "batch-not-found"),
        ):
            answer = await world.raw("GET", target, auth)
            assert (answer.status, answer.problem()["code"]) == (404, code), target
        for target in (
            b"/v1/batches/" + segment + b"/submit",
            b"/v1/batches/" + segment + b"/pickup",
        ):
            answer = await world.raw("POST", target, auth, b"{}")
            assert (answer.status, answer.problem()["code"]) == (404, "batch-not-found"), target
        answer = await world.raw(
            "POST", b"/v1/production/jobs/" + segment + b"/quality-check", auth, b'{"passed":true}'
        )
        assert (answer.status, answer.problem()["code"]) == (404, "not-found")
    for line in (b"0", b"-1", b"x", b"%00", b"99999999999", b"2147483648", b"%D9%A1"):
        answer = await world.raw(
            "POST", b"/v1/batches/b-1/rows/" + line + b"/to-single", auth, b"{}"
        )
        problem = answer.problem()
        assert (answer.status, problem["code"], problem["parameter"]) == (
            400,
            "bad-request",
            "line",
        )


async def test_bad_headers_are_400_and_change_nothing(world: World) -> None:
    """X-Identity-Number and X-Approval-ID of the wrong shape or bytes: 400 naming the header."""
    for value in (b"\xff" * 18, b"\xed\xa0\x80" * 6, b"1" * 16, b"11010519491231002Y", b"x"):
        answer = await world.raw(
            "GET", b"/v1/persons/cards", [world.auth(), (b"X-Identity-Number", value)]
        )
        problem = answer.problem()
        assert (answer.status, problem["code"]) == (400, "bad-request"), value
        assert problem["parameter"] == "X-Identity-Number"
    before = await world.ledger()
    adjustment = json.dumps({"feeder": FEEDER, "delta": 1, "reason": "recount"}).encode()
    for value in (b"\xff", b"\xed\xa0\x80", b"a b", b"x" * 65):
        for target, body in (
            (b"/v1/stock/adjustments", adjustment),
            (b"/v1/operations/cancel", b"{}"),
            (b"/v1/batches/b-1/rows/1/to-single", b"{}"),
        ):
            headers = [
                world.auth(),
                (b"Idempotency-Key", uuid.uuid4().hex.encode()),
                (b"X-Approval-ID", value),
            ]
            answer = await world.raw("POST", target, headers, body)
            problem = answer.problem()
            assert (answer.status, problem["code"]) == (400, "bad-request"), (target, value)
            assert problem["parameter"] == "X-Approval-ID"
    for value in (b"\xff", b"\xed\xa0\x80", b"x" * 200):  # request ids and keys of other bytes
        headers = [world.auth(), (b"X-Request-ID", value), (b"Idempotency-Key", value)]
        answer = await world.raw("POST", b"/v1/stock/loads", headers, adjustment)
        assert (answer.status, answer.problem()["code"]) == (400, "idempotency-key-required")
    assert await world.ledger() == before


async def test_bad_bodies_are_422_and_change_nothing(world: World) -> None:
    """NUL, lone surrogates, wrong types, deep nesting, empty and non-UTF-8 bodies: 422."""
    before, stock = await world.ledger(), await world.stock()
    bodies = [
        b'{"feeder":"' + FEEDER.encode() + b'","quantity":1,"box":"\\u0000"}',
        b'{"feeder":"' + FEEDER.encode() + b'","quantity":1,"box":"B\\\\\\u0000"}',
        b'{"feeder":"' + FEEDER.encode() + b'","quantity":1,"box":"\\ud800"}',
        b'{"feeder":"' + FEEDER.encode() + b'","quantity":1,"box":"\xff"}',
        b'{"feeder":"\\u0000","quantity":1,"box":"B"}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        b"",
        b"\xff\xfe",
        b"null",
        b'"text"',
        b"[]",
        b'{"feeder":"' + FEEDER.encode() + b'","quantity":1e400,"box":"B"}',
        b'{"feeder":"' + FEEDER.encode() + b'","quantity":' + b"9" * 5000 + b',"box":"B"}',
    ]
    for body in bodies:
        headers = [world.auth(), (b"Idempotency-Key", uuid.uuid4().hex.encode())]
        answer = await world.raw("POST", b"/v1/stock/loads", headers, body)
        assert (answer.status, answer.problem()["code"]) == (422, "invalid-request"), body[:80]
    nul = {"feeder": FEEDER, "quantity": 1, "reason": "shred\u0000"}
    status, problem = await world.teller.call("POST", "/v1/stock/destructions", nul)
    assert (status, problem["code"]) == (422, "invalid-request")
    assert problem["errors"] == [
        {
            "field": "reason",
            "code": "string_nul",
            "title_en": "reason: Text must not contain NUL (U+0000)",
            "title_zh": "字段 reason：文本中不得含有空字符（U+0000）",
        }
    ]
    approval = {"adjustment": {"feeder": FEEDER, "delta": 1, "reason": "x"}, "reason": "\u0000"}
    status, problem = await world.teller.call(
        "POST", "/v1/stock/approvals", approval, role="supervisor"
    )
    assert (status, problem["code"]) == (422, "invalid-request")
    status, problem = await world.teller.call(
        "POST", "/v1/production/jobs", {"receipt_number": "\u0000"}
    )
    assert (status, problem["code"]) == (422, "invalid-request")
    named = {
        "case": "self",
        "channel": "window",
        "applicant": {"id_number": "11010519491231002X", "name": "张\u0000三"},
    }
    for target in ("/v1/operations/apply", "/v1/card-services/status-by-identity"):
        status, problem = await world.teller.call("POST", target, named)
        assert (status, problem["code"]) == (422, "invalid-request"), target
        assert problem["errors"][0]["field"] == "applicant.name"
        assert problem["errors"][0]["title_zh"].startswith("字段 applicant.name：")
        assert problem["retryable"] is False
    approve = {"operation": "cancel", "request": named, "reason": "ok"}
    status, problem = await world.teller.call("POST", "/v1/approvals", approve, role="supervisor")
    assert (status, problem["code"]) == (422, "invalid-request")
    status, problem = await world.teller.call(
        "POST", "/v1/operations/apply", {**named, "fee_waived": 1}
    )
    assert (status, problem["code"]) == (422, "invalid-request")
    assert await world.ledger() == before
    assert await world.stock() == stock


async def test_platform_notice_refusals_are_problems(world: World) -> None:
    """An envelope that does not open: 400 envelope-refused, with X-Envelope-Refused kept."""
    for body in (b"", b"\xff" * 10, b"\x00" * 4096):
        answer = await world.raw(
            "POST",
            b"/v1/platform/notices",
            [(b"Content-Type", b"application/octet-stream")],
            body,
        )
        problem = answer.problem()
        assert (answer.status, problem["code"]) == (400, "envelope-refused")
        assert problem["envelope_code"] == answer.headers["x-envelope-refused"]
        assert problem["envelope_code"].startswith("envelope.")
