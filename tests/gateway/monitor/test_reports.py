"""Branch report codecs (telemetry schema 2) and their topics."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.mqtt import (
    REPORT_NAMES,
    REPORTS,
    ApplicationsReport,
    BranchTopics,
    OutboxReport,
    PayloadError,
    PresenceState,
    ProductionReport,
    QueuesReport,
    RpcRequest,
    StockReport,
    decode_report,
    parse_topic,
)
from protocols.mqtt.reports import CertificateEntry, CertificatesReport, FeederStock, HourCount

AT = "2026-11-23T09:00:00.000Z"
SAMPLES = [
    QueuesReport(AT, {"production": 3, "audit": 0}),
    ProductionReport(AT, (HourCount("2026-11-23T08:00:00Z", 12, 1), HourCount(AT, 3, 0))),
    StockReport(AT, (FeederStock("printer-1", 180, 1, low=False),), reconciled=True, checked_at=AT),
    OutboxReport(AT, 4, 1, AT),
    ApplicationsReport(AT, 20, 2, "2026-11-20"),
    CertificatesReport(
        AT, (CertificateEntry("CN=branchd", "2026-12-13T09:00:00+00:00", 20.0, expires_soon=True),)
    ),
]


@pytest.mark.parametrize("report", SAMPLES, ids=lambda r: type(r).__name__)
def test_round_trip(report: object) -> None:
    """Every report decodes to what was encoded, under its topic's name."""
    name = next(n for n, codec in REPORTS.items() if isinstance(report, codec))
    payload = report.to_bytes()  # type: ignore[attr-defined]
    assert decode_report(name, payload) == report
    version = 1 if name == "certificates" else 2
    assert payload.startswith(b'{"v":%d,' % version)


def test_golden_outbox_bytes() -> None:
    """The outbox report's exact bytes."""
    assert OutboxReport(AT, 4, 1).to_bytes() == (
        b'{"v":2,"at":"2026-11-23T09:00:00.000Z","pending":4,"oldest_pending_at":null,'
        b'"dead_letters":1}'
    )


def test_topics_of_reports() -> None:
    """Each report has a topic under daemon/, and parse_topic names it."""
    topics = BranchTopics("650000", "T-652300-01")
    for name in REPORT_NAMES:
        parsed = parse_topic(topics.daemon_report(name))
        assert (parsed.kind, parsed.report, parsed.branch) == ("daemon_report", name, "T-652300-01")
    assert parse_topic(topics.daemon_state()).kind == "daemon_state"


@pytest.mark.parametrize(
    "payload",
    [
        b'{"v":3,"at":"x","pending":1,"dead_letters":0}',
        b'{"v":2,"at":"x","pending":-1,"dead_letters":0}',
        b'{"v":2,"at":"x","pending":true,"dead_letters":0}',
        b'{"v":2,"pending":1,"dead_letters":0}',
        b"\xff",
    ],
)
def test_bad_outbox_reports_are_refused(payload: bytes) -> None:
    """Unknown versions, negative or non-integer counts, missing fields: PayloadError."""
    with pytest.raises(PayloadError):
        OutboxReport.from_bytes(payload)


def test_version_2_readers_accept_version_1_and_2_telemetry_only() -> None:
    """Presence is read in both versions; the agent protocol still refuses version 2."""
    for version in (1, 2):
        payload = b'{"v":%d,"state":"online","reason":null,"at":null}' % version
        assert PresenceState.from_bytes(payload).state.value == "online"
    with pytest.raises(PayloadError):
        RpcRequest.from_bytes(b'{"v":2,"op":"printer.status","args":{}}')


@given(st.sampled_from(sorted(REPORT_NAMES)), st.binary(max_size=300))
def test_any_bytes_raise_only_payload_error(name: str, payload: bytes) -> None:
    """Whatever the bytes, a report decoder raises PayloadError or returns a report."""
    with contextlib.suppress(PayloadError):
        decode_report(name, payload)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(
    st.sampled_from(sorted(REPORT_NAMES)),
    st.dictionaries(
        st.sampled_from(
            [
                "at",
                "queues",
                "hours",
                "feeders",
                "reconciled",
                "problems",
                "pending",
                "dead_letters",
                "open",
                "overdue",
                "certificates",
                "checked_at",
            ]
        ),
        json_values,
    ),
)
def test_any_json_object_raises_only_payload_error(name: str, data: dict[str, object]) -> None:
    """Well-formed JSON of the wrong shape is refused with PayloadError only."""
    import json  # noqa: PLC0415

    payload = json.dumps({"v": 2, **data}).encode()
    with contextlib.suppress(PayloadError):
        decode_report(name, payload)
