"""Property-based API tests: schemathesis generates requests from /openapi.json.

The daemon is the demo world's (production with a station, the platform and
the bank, platform notices, batches: every route does its real work), running
in a thread with its own event loop, once on each database backend chosen with
``--db`` (SQLite and PostgreSQL by default). Each generated request, valid
or not (schemathesis generates both), is sent with no credentials or as one of
the four terminals (teller, supervisor, kiosk, ops), chosen by Hypothesis, and
with a fresh Idempotency-Key where the operation takes one (a generated key
that breaks the document's pattern is kept, to be refused). Every answer must
be one the document describes (status, content type, headers such as the 401
challenge, body schema), and never a server error.
"""

import asyncio
import re
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance

from gateway.assembly import openapi_document
from gateway.demo.world import DemoWorld
from tests.conftest import fresh_database, selected_backends

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration

#: Who calls: ``None`` sends no credentials.
ROLES: tuple[str | None, ...] = (None, "teller", "supervisor", "kiosk", "ops")
#: An Idempotency-Key of the document's pattern (a generated key that is not stays: it is
#: schemathesis checking that the API refuses it).
KEY = re.compile(r"[\x21-\x7e]{1,128}")
schema = schemathesis.openapi.from_dict(openapi_document())
# Credentials are the test's (ROLES); generated Authorization values would be replaced.
schema.config.generation.update(with_security_parameters=False)
#: Answers per (role, status), checked by the last test.
ANSWERS: Counter[tuple[str | None, int]] = Counter()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the module once per database backend chosen with ``--db``."""
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", selected_backends(metafunc.config), scope="module")


@pytest.fixture(scope="module")
def world(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[DemoWorld]:
    """The demo world on ``backend``, serving in a background thread."""
    directory: Path = tmp_path_factory.mktemp("schemathesis")
    loop = asyncio.new_event_loop()
    database = fresh_database(backend, directory, request)
    url = loop.run_until_complete(database.__aenter__())
    demo = DemoWorld(
        directory / "world", port=0, time_scale=0.0, database_url=url, log_level="error"
    )
    started = threading.Event()
    failed: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(demo.__aenter__())
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            failed.append(exc)
            started.set()
            loop.close()
            return
        started.set()
        loop.run_forever()
        loop.run_until_complete(demo.__aexit__(None, None, None))
        loop.close()

    thread = threading.Thread(target=run, name="demo-world", daemon=True)
    thread.start()
    assert started.wait(60), "the demo world did not start"
    if failed:
        raise failed[0]
    yield demo
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)
    cleanup = asyncio.new_event_loop()
    cleanup.run_until_complete(database.__aexit__(None, None, None))
    cleanup.close()


@schema.parametrize()
@schema.given(role=st.sampled_from(ROLES))
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms(case: schemathesis.Case[Any], role: str | None, world: DemoWorld) -> None:
    """Every generated request, as any terminal or none, gets a documented answer, never a 5xx."""
    headers: dict[str, str] = {}
    if role is not None:
        headers["Authorization"] = f"Bearer {world.tokens[role]}"
    key = case.headers.get("Idempotency-Key") if case.headers else None
    if isinstance(key, str) and KEY.fullmatch(key):
        headers["Idempotency-Key"] = uuid.uuid4().hex
    response = case.call_and_validate(
        base_url=world.base_url,
        headers=headers,
        # Schema-valid requests are refused by business rules by design: the
        # one-time notice answers 422 incomplete-request listing what is missing.
        excluded_checks=[positive_data_acceptance],
    )
    ANSWERS[role, response.status_code] += 1


def test_at_least_500_cases_were_generated_for_every_caller() -> None:
    """The run above sent 500 requests or more; each terminal got answers beyond 401 and 403."""
    assert sum(ANSWERS.values()) >= 500, ANSWERS
    for role in ROLES:
        answered = sum(n for (who, _), n in ANSWERS.items() if who == role)
        assert answered >= 50, (role, ANSWERS)
        if role is not None:
            assert any(who == role and status not in {401, 403} for who, status in ANSWERS), role
