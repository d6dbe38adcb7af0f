"""The business service's and the approvals' refusal reasons, and the operations' table."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import pytest
from aiohttp import web

from gateway.approvals.errors import ApprovalReason, ApprovalRefusal
from gateway.approvals.service import Approvals
from gateway.assembly import SECTIONS
from gateway.issuance import routes as issuance_routes
from gateway.operations.errors import OperationReason
from gateway.operations.routes import SECTION
from gateway.runtime.problems import PROBLEMS, REFUSALS, problem_of, refusal_key

if TYPE_CHECKING:
    import random

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from devices.clock import Clock
    from gateway.audit.log import AuditLog


def test_every_reason_is_in_the_operations_table() -> None:
    """Each OperationReason and ApprovalReason has a registered problem; nothing else is there."""
    table = SECTION.problems
    for reason in (*OperationReason, *ApprovalReason):
        assert reason in table, reason
        assert PROBLEMS[table[reason].code] is table[reason], reason
    assert set(table) == set(OperationReason) | set(ApprovalReason)
    assert SECTION in SECTIONS


def test_reasons_keep_their_problem_codes() -> None:
    """The problems the API answered with before the service spoke in reasons."""
    answers = {reason: (p.code, p.status) for reason, p in SECTION.problems.items()}
    assert answers == {
        OperationReason.INCOMPLETE: ("incomplete-request", 422),
        OperationReason.PERSON_NOT_FOUND: ("person-not-found", 404),
        OperationReason.CARD_NOT_FOUND: ("card-not-found", 404),
        OperationReason.CARD_CANCELLED: ("card-cancelled", 409),
        OperationReason.CARD_EXISTS: ("card-exists", 409),
        OperationReason.STATE_CONFLICT: ("state-conflict", 409),
        OperationReason.ILLEGAL_TRANSITION: ("illegal-transition", 409),
        OperationReason.CHANNEL_MISMATCH: ("channel-mismatch", 403),
        OperationReason.PIN_SERVICES_UNAVAILABLE: ("pin-services-unavailable", 404),
        OperationReason.UPSTREAM_UNAVAILABLE: ("upstream-unavailable", 503),
        OperationReason.CALENDAR_INCOMPLETE: ("calendar-incomplete", 503),
        OperationReason.BANK_NOT_CONFIGURED: ("bank-not-configured", 501),
        OperationReason.ELECTRONIC_CARD_EXISTS: ("electronic-card-exists", 409),
        OperationReason.APPLICATION_NOT_FOUND: ("not-found", 404),
        OperationReason.FEE_NOT_DUE: ("fee-not-due", 409),
        OperationReason.NOT_WITHDRAWABLE: ("not-withdrawable", 409),
        OperationReason.NOT_VERIFIABLE: ("not-verifiable", 409),
        OperationReason.DAY_CLOSED: ("day-closed", 409),
        OperationReason.DOCUMENT_TAKEN: ("document-taken", 409),
        OperationReason.FEE_SETTLING: ("fee-settling", 409),
        OperationReason.FEE_DEBIT_REFUSED: ("fee-debit-refused", 409),
        ApprovalReason.REQUIRED: ("approval-required", 403),
        ApprovalReason.INVALID: ("approval-invalid", 403),
    }


def test_no_other_section_maps_an_operation_or_approval_reason() -> None:
    """The middleware merges every table: a reason equal to one of these would take its place."""
    ours = set(OperationReason) | set(ApprovalReason)
    for section in SECTIONS:
        if section is not SECTION:
            assert not set(section.problems) & ours, section.name


async def test_a_stock_adjustment_refusal_is_answered_by_the_operations_table() -> None:
    """The stock adjustment's approval refusal becomes the same problem, with its own text."""
    approvals = Approvals(
        sessions=cast("async_sessionmaker[AsyncSession]", None),
        audit=cast("AuditLog", None),
        clock=cast("Clock", None),
        rng=cast("random.Random", None),
    )
    with pytest.raises(ApprovalRefusal) as refused:  # no approval named: refused before the db
        await approvals.use(
            cast("AsyncSession", None),
            issuance_routes.STOCK_APPROVAL,
            "digest",
            None,
            user="teller-01",
            required=issuance_routes.STOCK_APPROVAL_REQUIRED,
        )
    app = web.Application()
    app[REFUSALS] = {
        refusal_key(reason): problem
        for section in SECTIONS
        for reason, problem in section.problems.items()
    }
    answer = problem_of(app, refused.value)
    assert (answer.problem.code, answer.problem.status) == ("approval-required", 403)
    assert answer.detail is not None
    assert answer.detail.startswith("A stock adjustment needs a supervisor's approval")
    assert issuance_routes.SECTION in SECTIONS
