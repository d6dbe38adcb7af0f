"""A card to be made at once that fails on a device or upstream is due within 24 hours."""

from __future__ import annotations

from datetime import UTC, date, datetime

from gateway.issuance.service import _fault_deadline
from gateway.operations.rows import ApplicationRow

# 2026-12-07 20:00 in Beijing: 24 hours later is the 8th.
FAILED_AT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _application(operation: str, channel: str, status: str = "accepted") -> ApplicationRow:
    return ApplicationRow(
        receipt_number="R", operation=operation, case="self", channel=channel, status=status,
        person_id=1, terminal_id="teller-01", accepted_at=FAILED_AT, deadline=date(2026, 12, 7),
    )  # fmt: skip


def test_a_window_card_that_failed_is_due_the_day_the_24_hours_end() -> None:
    """001 §1.1.3: the deadline moves from the day of acceptance to the end of the fault limit."""
    for operation in ("apply", "reissue", "batch-to-single"):
        application = _application(operation, "window")
        _fault_deadline(application, FAILED_AT)
        assert application.deadline == date(2026, 12, 8), operation


def test_other_limits_and_finished_applications_keep_their_deadline() -> None:
    """An online application (30 working days) and a completed one are not moved."""
    online = _application("apply", "online")
    done = _application("apply", "window", status="completed")
    for application in (online, done):
        _fault_deadline(application, FAILED_AT)
        assert application.deadline == date(2026, 12, 7)
