"""Every report a branch can send renders: overview, branch view, alerts, history and SSE.

Hypothesis builds the JSON documents of every branch report kind the
decoders of :mod:`protocols.mqtt.reports` accept (empty lists, zero hours,
missing and null optional fields, counts up to thousands of digits, any text
including NUL, times off the calendar), with presence and device states
beside them; a test checks that every such document decodes. Edgier
documents (lone surrogates as escapes, numbers beyond a float) go through
the decoder first and reach the monitor only if it takes them. The monitor must take it and
render it: the views serialize as strict JSON (no NaN or Infinity a browser
would refuse), the alert rules run, alerts and history are stored, and over
HTTP ``/api/overview``, ``/api/branches/{id}``, ``/api/alerts``,
``/api/history`` answer 200 and the event stream carries the update.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import TYPE_CHECKING, Any, Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.monitor.alerts import conditions
from gateway.monitor.http import create_monitor_app
from gateway.monitor.service import Monitor
from gateway.monitor.settings import MonitorSettings
from gateway.monitor.state import MAX_SAMPLE, BranchEntry, ProvinceState
from gateway.runtime.db import create_engine
from protocols.mqtt import BranchTopics, PayloadError, decode_report
from protocols.mqtt.reports import REPORTS, CertificateEntry, CertificatesReport, ProductionReport
from protocols.mqtt.state import DeviceState, PresenceState
from tests.fakes import FakeClock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from aiohttp import web
    from aiohttp.test_utils import TestClient
    from sqlalchemy.ext.asyncio import AsyncEngine

    Client = TestClient[web.Request, web.Application]

PROVINCE: Final = "650000"
SETTINGS: Final = MonitorSettings.model_validate({"province": PROVINCE})
#: Placeholders json.dumps writes as strings and :func:`encode` swaps for raw JSON numbers.
RAW_NUMBERS: Final = {"\x01inf\x01": "1e400", "\x01-inf\x01": "-1e400", "\x01tiny\x01": "1e-400"}
ABSENT: Final = object()  # a key left out of the document

Message = tuple[str, bytes]


def encode(document: dict[str, Any]) -> bytes:
    """``document`` as JSON, escapes for everything not ASCII, placeholders made raw numbers."""
    text = json.dumps(document)
    for placeholder, number in RAW_NUMBERS.items():
        text = text.replace(json.dumps(placeholder), number)
    return text.encode()


def strict_json(data: bytes | str) -> Any:  # noqa: ANN401 - any JSON value
    """Parse as a browser would: NaN and Infinity are not JSON."""

    def refuse(name: str) -> None:
        raise ValueError(name)

    return json.loads(data, parse_constant=refuse)


def report_documents(*, edgy: bool) -> dict[str, st.SearchStrategy[dict[str, Any]]]:
    """A strategy per report kind for its documents.

    Any text, NUL and control characters included. ``edgy`` adds what the JSON
    grammar allows and a decoder may or may not take: lone surrogates (as
    escapes) and numbers beyond a float.
    """
    surrogates = st.sampled_from(["\ud800", "a\udcff", "\udfff\ud800"])
    texts = st.text(max_size=12) | surrogates if edgy else st.text(max_size=12)
    names = st.text(min_size=1, max_size=200)
    if edgy:
        names |= surrogates
    counts = st.integers(min_value=0) | st.sampled_from([0, 2**53 + 1, 2**63, 10**4000])
    times = (
        st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
        | st.datetimes().map(lambda d: d.isoformat())  # naive
        | st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
        | names
    )
    optional_times = st.just(ABSENT) | st.none() | times
    days: st.SearchStrategy[object] = st.integers(-(10**6), 10**6) | st.floats(
        allow_nan=False, allow_infinity=False
    )
    if edgy:
        days |= st.sampled_from(list(RAW_NUMBERS)) | st.just(10**400)
    hours = st.fixed_dictionaries({"hour": times, "issued": counts, "spoiled": counts})
    feeders = st.fixed_dictionaries(
        {
            "feeder": names,
            "remaining": st.integers() | st.sampled_from([-(10**4000), 10**4000]),
            "in_process": counts,
            "low": st.booleans(),
        }
    )
    certificates = st.fixed_dictionaries(
        {"subject": names, "not_after": names, "days_left": days, "expires_soon": st.booleans()}
    )
    return {
        "queues": document(texts, at=texts, queues=st.dictionaries(names, counts, max_size=64)),
        "production": document(texts, at=texts, hours=st.lists(hours, max_size=48)),
        "stock": document(
            texts,
            at=texts,
            feeders=st.lists(feeders, max_size=64),
            reconciled=st.just(ABSENT) | st.none() | st.booleans(),
            problems=counts,
            checked_at=optional_times,
        ),
        "outbox": document(
            texts, at=texts, pending=counts, dead_letters=counts, oldest_pending_at=optional_times
        ),
        "applications": document(
            texts, at=texts, open=counts, overdue=counts, oldest_due=optional_times
        ),
        "certificates": document(texts, at=texts, certificates=st.lists(certificates, max_size=64)),
    }


def document(texts: st.SearchStrategy[str], **fields: Any) -> st.SearchStrategy[dict[str, Any]]:  # noqa: ANN401
    """A document: the schema version, ``fields`` (``ABSENT`` ones left out), extra keys."""
    return st.fixed_dictionaries(
        {"v": st.sampled_from([1, 2]), **fields},
        optional={"comment": texts, "extra": st.lists(st.integers(), max_size=2)},
    ).map(lambda d: {k: v for k, v in d.items() if v is not ABSENT})


PLAIN: Final = report_documents(edgy=False)
EDGY: Final = report_documents(edgy=True)
segments = st.from_regex(r"[A-Za-z0-9_.\-]{1,64}", fullmatch=True).filter(lambda s: s.strip("."))
reasons = st.just(ABSENT) | st.none() | st.text(max_size=200) | st.sampled_from(["\ud800"])
times = st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()) | st.text()
device_documents = document(
    st.text(max_size=12),
    device=segments,
    kind=st.sampled_from(["printer", "encoder", "pinpad"]),
    state=st.sampled_from(["online", "busy", "error", "offline"]),
    reason=reasons,
    since=times | st.sampled_from(["0001-01-01T00:00:00+01:00"]),
    levels=st.fixed_dictionaries(
        {},
        optional={
            "feeder": st.sampled_from([None, "loaded", "near_empty", "empty"]),
            "ribbon_type": st.none() | st.text(max_size=200),
            "ribbon_remaining": st.none() | st.integers(min_value=0),
            "reject_box_full": st.none() | st.booleans(),
            "cover_open": st.none() | st.booleans(),
        },
    ),
    counters=st.dictionaries(
        st.text(max_size=8), st.integers(min_value=0) | st.just(10**400), max_size=32
    ),
)
presence_documents = document(
    st.text(max_size=12),
    state=st.sampled_from(["online", "offline"]),
    reason=reasons,
    at=st.just(ABSENT) | st.none() | times,
)


@st.composite
def branch_messages(draw: st.DrawFn) -> tuple[str, list[Message]]:
    """One branch and the messages it publishes: reports of any kinds, devices, presence.

    Edgy documents a decoder refuses are not sent (the monitor never sees them).
    """
    branch = draw(segments)
    topics = BranchTopics(PROVINCE, branch)
    candidates: list[tuple[str, bytes, Any]] = []
    for name in draw(st.lists(st.sampled_from(sorted(REPORTS)), max_size=8)):
        payload = encode(draw(EDGY[name]))
        candidates.append(
            (topics.daemon_report(name), payload, lambda p, n=name: decode_report(n, p))
        )
    for device in draw(st.lists(device_documents, max_size=3)):
        topic = topics.device_state(device["device"])
        candidates.append((topic, encode(device), DeviceState.from_bytes))
    if draw(st.booleans()):
        candidates.append(
            (topics.daemon_state(), encode(draw(presence_documents)), PresenceState.from_bytes)
        )
    messages: list[Message] = []
    for topic, payload, decode in candidates:
        try:
            decode(payload)
        except PayloadError:
            continue
        messages.append((topic, payload))
    return branch, messages


@given(st.lists(st.sampled_from(sorted(REPORTS)), min_size=1), st.data())
def test_every_report_kind_decodes_from_the_strategies(
    names: list[str], data: st.DataObject
) -> None:
    """The document strategies make documents the decoders take, for every report kind."""
    for name in names:
        report = decode_report(name, encode(data.draw(PLAIN[name])))
        assert isinstance(report, REPORTS[name])


@settings(max_examples=300)
@given(st.lists(branch_messages(), min_size=1, max_size=3))
def test_the_state_renders_every_report_shape(branches: list[tuple[str, list[Message]]]) -> None:
    """Applied to the province state: summaries, branch views and alert rules, as strict JSON."""
    clock = FakeClock(autojump=False)
    state = ProvinceState(PROVINCE)
    for _branch, messages in branches:
        for topic, payload in messages:
            changed, samples = state.apply(topic, payload, clock.now())
            assert changed is not None
            for sample in samples:  # history values a float column takes
                assert 0 <= sample.value <= MAX_SAMPLE
    for entry in state.branches.values():
        # the summary goes out on the event stream, the view through web.json_response
        strict_json(json.dumps(entry.summary(0), ensure_ascii=False).encode())
        strict_json(json.dumps(entry.view()))
        for condition in conditions(entry, clock.now(), SETTINGS.alerts):
            condition.detail.encode()  # stored in a text column: UTF-8, and no NUL
            assert "\x00" not in condition.detail


def test_a_number_beyond_a_float_is_shown_as_null() -> None:
    """A report holding an infinite float (1e400 in JSON) renders as strict JSON and alerts."""
    clock = FakeClock(autojump=False)
    state = ProvinceState(PROVINCE)
    entry = BranchEntry("T-1")
    state.branches["T-1"] = entry
    endless = CertificateEntry("CN=x", "never", float("-inf"), expires_soon=True)
    entry.reports["certificates"] = CertificatesReport("", (endless,))
    view = strict_json(json.dumps(entry.view()))
    assert view["reports"]["certificates"]["certificates"][0]["days_left"] is None
    [alert] = conditions(entry, clock.now(), SETTINGS.alerts)
    assert alert.detail == "-inf days left"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The monitor's database, its schema created."""
    made = create_engine(database_url)
    monitor = Monitor(SETTINGS, engine=made, clock=FakeClock(), rng=random.Random(1))
    await monitor.store.create()
    try:
        yield made
    finally:
        await made.dispose()


async def read_event(response: Any) -> dict[str, Any]:  # noqa: ANN401 - aiohttp's ClientResponse
    """The next ``update`` event's data from an SSE stream."""
    while True:
        line = await asyncio.wait_for(response.content.readline(), 5)
        if line == b"event: update\n":
            data = await asyncio.wait_for(response.content.readline(), 5)
            assert data.startswith(b"data: ")
            event: dict[str, Any] = strict_json(data.removeprefix(b"data: "))
            return event


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sent=branch_messages())
async def test_the_monitor_serves_every_report_shape(
    engine: AsyncEngine, aiohttp_client: object, sent: tuple[str, list[Message]]
) -> None:
    """Over HTTP: overview, branch page, alerts, history and the event stream answer."""
    branch, messages = sent
    clock = FakeClock(autojump=False)
    monitor = Monitor(SETTINGS, engine=engine, clock=clock, rng=random.Random(1))
    assert callable(aiohttp_client)
    client: Client = await aiohttp_client(create_monitor_app(monitor))
    stream = await client.get("/api/events")
    assert stream.status == 200
    for topic, payload in messages:
        assert monitor.ingest(topic, payload) == branch
    await monitor.evaluate()  # alert rules; raised alerts are stored
    await monitor.flush()  # history samples and current payloads are stored
    await monitor.push()
    if messages:
        update = await read_event(stream)
        assert [line["branch"] for line in update["branches"]] == [branch]
    stream.close()
    overview = await client.get("/api/overview")
    assert overview.status == 200
    lines = strict_json(await overview.read())["branches"]
    assert [line["branch"] for line in lines] == ([branch] if messages else [])
    page = await client.get(f"/api/branches/{branch}")
    assert page.status == (200 if messages else 404)
    if messages:
        assert strict_json(await page.read())["branch"] == branch
    for path in ("/api/alerts", "/api/alerts?recent=1", f"/api/history?branch={branch}"):
        answer = await client.get(path)
        assert answer.status == 200, path
        strict_json(await answer.read())
    monitor.end_streams()
    await client.close()


async def test_a_production_report_with_no_hours_yet_is_in_the_overview(
    engine: AsyncEngine, aiohttp_client: object
) -> None:
    """What the demo branch publishes at start (no card made yet): overview and page answer."""
    monitor = Monitor(
        SETTINGS, engine=engine, clock=FakeClock(autojump=False), rng=random.Random(1)
    )
    assert callable(aiohttp_client)
    client: Client = await aiohttp_client(create_monitor_app(monitor))
    topics = BranchTopics(PROVINCE, "DEMO-652300-01")
    monitor.ingest(
        topics.daemon_report("production"), ProductionReport("2026-11-23T09:00Z").to_bytes()
    )
    overview = await client.get("/api/overview")
    assert (overview.status, overview.content_type) == (200, "application/json")
    [line] = (await overview.json())["branches"]
    assert (line["branch"], line["cards_last_hour"]) == ("DEMO-652300-01", None)
    page = await client.get("/api/branches/DEMO-652300-01")
    assert page.status == 200
    assert (await page.json())["reports"]["production"]["hours"] == []
