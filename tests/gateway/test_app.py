import base64
import dataclasses
import json
import random
from collections.abc import AsyncIterator
from enum import StrEnum
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.app import Services, create_app
from gateway.runtime.dashboard import add_branch_page
from gateway.runtime.db import create_engine, session_factory
from gateway.runtime.http.idempotency import Idempotency
from gateway.runtime.http.kit import ApiSection
from gateway.runtime.http.ops import OpsGate
from gateway.runtime.metrics import Metrics
from gateway.runtime.migrate import head_revision, upgrade
from gateway.runtime.problems import NOT_FOUND, ProblemError
from gateway.runtime.refusals import Refusal
from gateway.runtime.supervisor import Supervisor
from tests.conftest import free_port
from tests.fakes import FakeClock
from tests.gateway.builders import daemon_config

pytestmark = pytest.mark.integration

PROBLEM_JSON = "application/problem+json"


async def boom(_request: web.Request) -> web.Response:
    """A handler with a bug."""
    raise RuntimeError("handler bug")


async def refuse(_request: web.Request) -> web.Response:
    """A handler that refuses with a registered problem and an extension member."""
    raise ProblemError(NOT_FOUND, "no such card", "没有这张卡", card="A1")


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on an empty database of the backend under test."""
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def app(engine: AsyncEngine, database_url: str, tmp_path: Path) -> web.Application:
    """The daemon's application on a real database, with two test routes."""
    services = services_for(engine, database_url, tmp_path)
    return create_app(services, extra_routes=[web.get("/boom", boom), web.get("/refuse", refuse)])


def services_for(engine: AsyncEngine, database_url: str, tmp_path: Path) -> Services:
    """What the application needs, on ``engine``, with a fake clock and seeded randomness."""
    clock = FakeClock()
    return Services(
        config=daemon_config(database_url, tmp_path),
        engine=engine,
        supervisor=Supervisor(clock=clock, rng=random.Random(0)),
        metrics=Metrics(),
        clock=clock,
        rng=random.Random(0),
        head_revision=head_revision(),
    )


@pytest.fixture
async def client(
    aiohttp_client: object, app: web.Application
) -> TestClient[web.Request, web.Application]:
    """A client of the application."""
    assert callable(aiohttp_client)
    result: TestClient[web.Request, web.Application] = await aiohttp_client(app)
    return result


async def test_healthz(client: TestClient[web.Request, web.Application]) -> None:
    """Liveness answers 200 whatever the database says."""
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_readyz_refuses_until_migrated(
    client: TestClient[web.Request, web.Application], engine: AsyncEngine
) -> None:
    """Readiness is 503 problem+json on an empty database and 200 after the migrations."""
    response = await client.get("/readyz")
    assert response.status == 503
    assert response.content_type == PROBLEM_JSON
    body = await response.json()
    assert body["code"] == "not-ready"
    assert body["checks"]["migrations"] == {"ok": False, "current": None, "head": head_revision()}
    assert "branchd db upgrade" in body["detail"]
    assert body["title_zh"] == "服务尚未就绪"

    await upgrade(engine)
    response = await client.get("/readyz")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] == {"ok": True}


async def test_readyz_when_the_database_is_gone(aiohttp_client: object, tmp_path: Path) -> None:
    """An unreachable database makes the daemon not ready, and says which check failed."""
    dead = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/gone"
    engine = create_engine(dead, connect_timeout=2)
    assert callable(aiohttp_client)
    client = await aiohttp_client(create_app(services_for(engine, dead, tmp_path)))
    response = await client.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert body["checks"]["database"] == {"ok": False, "error": "ConnectionRefusedError"}
    assert "gone" not in json.dumps(body)
    await engine.dispose()


async def test_unknown_route_is_problem_json(
    client: TestClient[web.Request, web.Application],
) -> None:
    """404 comes as problem+json with a stable code and both languages."""
    response = await client.get("/no/such/thing")
    assert response.status == 404
    assert response.content_type == PROBLEM_JSON
    body = await response.json()
    assert body["code"] == "not-found"
    assert body["type"] == "urn:sscard-branchd:problem:not-found"
    assert body["title"] == "Not found"
    assert body["title_zh"] == "未找到"
    assert body["instance"] == "/no/such/thing"
    assert body["request_id"] == response.headers["X-Request-ID"]


async def test_wrong_method_is_problem_json(
    client: TestClient[web.Request, web.Application],
) -> None:
    """405 comes as problem+json too."""
    response = await client.post("/healthz")
    assert response.status == 405
    assert (await response.json())["code"] == "method-not-allowed"


async def test_handler_bug_is_500_problem_and_logged(
    client: TestClient[web.Request, web.Application],
) -> None:
    """An unexpected exception answers 500 problem+json without internals."""
    response = await client.get("/boom")
    assert response.status == 500
    body = await response.json()
    assert body["code"] == "internal-error"
    assert "handler bug" not in json.dumps(body)


async def test_problem_error_carries_extension_members(
    client: TestClient[web.Request, web.Application],
) -> None:
    """A ProblemError renders its detail in both languages and its extra members."""
    response = await client.get("/refuse", headers={"X-Request-ID": "teller-42"})
    body = await response.json()
    assert body["detail"] == "no such card"
    assert body["detail_zh"] == "没有这张卡"
    assert body["card"] == "A1"
    assert body["request_id"] == "teller-42"


async def test_bad_request_id_is_replaced(
    client: TestClient[web.Request, web.Application],
) -> None:
    """A client request id that is not id-shaped (log injection) is replaced by ours."""
    response = await client.get("/healthz", headers={"X-Request-ID": "x\u2028injected line"})
    assert response.headers["X-Request-ID"] != "x\u2028injected line"
    assert len(response.headers["X-Request-ID"]) == 36


async def test_metrics_counts_requests_by_route_template(
    client: TestClient[web.Request, web.Application],
) -> None:
    """Prometheus text lists requests by route template, not by raw path."""
    await client.get("/healthz")
    await client.get("/no/such/thing")
    response = await client.get("/metrics")
    assert response.status == 200
    text = await response.text()
    assert 'branchd_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
    assert 'route="unmatched",status="404"' in text
    assert 'branchd_build_info{branch="T-652300-01"' in text


async def test_index_lists_the_endpoints(
    client: TestClient[web.Request, web.Application],
) -> None:
    """The root says what this is and links the operational endpoints."""
    body = await (await client.get("/")).json()
    assert body["service"] == "sscard-branchd"
    assert body["links"]["ready"] == "/readyz"


OPS_TOKEN = "ops-token-" + "o" * 32


@pytest.fixture
async def guarded(
    aiohttp_client: object, engine: AsyncEngine, database_url: str, tmp_path: Path
) -> TestClient[web.Request, web.Application]:
    """The application with ``[server] ops_token`` and the branch's /ops page, migrated."""
    await upgrade(engine)
    services = dataclasses.replace(
        services_for(engine, database_url, tmp_path), ops=OpsGate(OPS_TOKEN)
    )
    app = create_app(services)
    add_branch_page(app, lambda: {"branch": "T"}, clock=services.clock, gate=services.ops)
    assert callable(aiohttp_client)
    result: TestClient[web.Request, web.Application] = await aiohttp_client(app)
    return result


@pytest.mark.parametrize("path", ["/metrics", "/ops", "/ops/api/branch"])
async def test_ops_pages_need_the_ops_token(
    guarded: TestClient[web.Request, web.Application], path: str
) -> None:
    """Without the token: 401 problem with both challenges; Bearer or Basic with it: 200."""
    basic = base64.b64encode(f"prometheus:{OPS_TOKEN}".encode()).decode()
    for header in (None, "Bearer wrong", f"Basic {basic[:-4]}", "Bearer \udcff\udcfe"):
        headers = {"Authorization": header} if header is not None else {}
        if header is not None and not header.isascii():
            headers = {"Authorization": header.encode("utf-8", "surrogateescape").decode("latin-1")}
        response = await guarded.get(path, headers=headers)
        assert response.status == 401, header
        assert response.content_type == PROBLEM_JSON
        assert (await response.json())["code"] == "ops-unauthenticated"
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.startswith("Bearer ")
        assert "Basic " in challenge
    for header in (f"Bearer {OPS_TOKEN}", f"Basic {basic}"):
        response = await guarded.get(path, headers={"Authorization": header})
        assert response.status == 200, header


async def test_readyz_details_need_the_ops_token(
    guarded: TestClient[web.Request, web.Application],
) -> None:
    """Anyone learns ready or not; the checks (database, tasks, certificates) need the token."""
    response = await guarded.get("/readyz")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ready"
    assert "database" not in body["checks"]
    response = await guarded.get("/readyz", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
    assert (await response.json())["checks"]["database"] == {"ok": True}


class _Reason(StrEnum):
    REFUSED = "refused"


async def test_a_refusal_is_rendered_through_its_section_and_replayed_under_its_key(
    aiohttp_client: object, engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    """A service's refusal becomes its section's problem, and its key replays that answer."""
    await upgrade(engine)
    services = services_for(engine, database_url, tmp_path)
    sessions = session_factory(engine)
    idempotency = Idempotency(sessions, services.clock, 24)
    calls: list[int] = []

    async def refuse_once(request: web.Request) -> web.Response:
        async def perform() -> web.Response:
            calls.append(1)
            raise Refusal(_Reason.REFUSED, "refused here", "此处拒绝", card="A1")

        return await idempotency.run(request, "t-1", await request.read(), perform)

    def add_routes(app: web.Application) -> None:
        app.router.add_post("/refuse", refuse_once)

    section = ApiSection(
        name="refusing",
        models=(),
        add_routes=add_routes,
        paths=lambda _kit: {},
        problems={_Reason.REFUSED: NOT_FOUND},
    )
    assert callable(aiohttp_client)
    client = await aiohttp_client(create_app(services, sections=[section]))
    for _ in range(2):
        response = await client.post("/refuse", data=b"{}", headers={"Idempotency-Key": "k-1"})
        assert response.status == 404
        assert response.content_type == PROBLEM_JSON
        body = await response.json()
        assert (body["code"], body["detail"], body["card"]) == ("not-found", "refused here", "A1")
    assert calls == [1]  # the second answer was the stored one
