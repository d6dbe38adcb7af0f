"""The card services' refusal reasons and the card services section's table of problems."""

from __future__ import annotations

from aiohttp import web

from gateway.assembly import SECTIONS
from gateway.cardservices.errors import CardServiceReason, CardServiceRefusal
from gateway.cardservices.routes import SECTION
from gateway.runtime.problems import PROBLEMS, REFUSALS, problem_of, refusal_key


def test_every_reason_is_in_the_section_table() -> None:
    """Each CardServiceReason is answered with a registered problem; nothing else is there."""
    table = SECTION.problems
    for reason in CardServiceReason:
        assert reason in table, reason
        assert PROBLEMS[table[reason].code] is table[reason], reason
    assert set(table) == set(CardServiceReason)
    assert SECTION in SECTIONS


def test_reasons_keep_their_problem_codes() -> None:
    """The problems the API answered with before the services spoke in reasons."""
    answers = {reason: (p.code, p.status) for reason, p in SECTION.problems.items()}
    assert answers == {
        CardServiceReason.WINDOW_NOT_EQUIPPED: ("window-not-equipped", 409),
        CardServiceReason.WINDOW_BUSY: ("window-busy", 409),
        CardServiceReason.CARD_UNREADABLE: ("card-unreadable", 409),
        CardServiceReason.CARD_APPLICATION_BLOCKED: ("card-application-blocked", 409),
        CardServiceReason.CARD_HOLDER_MISMATCH: ("card-holder-mismatch", 409),
        CardServiceReason.PIN_WRONG: ("pin-wrong", 422),
        CardServiceReason.PIN_LOCKED: ("pin-locked", 409),
        CardServiceReason.PIN_NOT_LOCKED: ("pin-not-locked", 409),
        CardServiceReason.PIN_DEFAULT_REFUSED: ("pin-default-refused", 422),
        CardServiceReason.PIN_PAD_FAILED: ("pin-pad-failed", 409),
        CardServiceReason.CARD_REFUSED: ("card-refused", 409),
        CardServiceReason.ISSUER_REFUSED: ("issuer-refused", 409),
        CardServiceReason.ISSUER_UNREACHABLE: ("issuer-unreachable", 502),
        CardServiceReason.UPSTREAM_UNAVAILABLE: ("upstream-unavailable", 503),
        CardServiceReason.INCOMPLETE: ("incomplete-request", 422),
        CardServiceReason.CARD_NOT_FOUND: ("card-not-found", 404),
    }


def test_no_other_section_maps_a_card_service_reason() -> None:
    """The middleware merges every table: a reason equal to a card-service one would clash."""
    for section in SECTIONS:
        if section is not SECTION:
            assert not set(section.problems) & set(CardServiceReason), section.name


def test_a_refusal_is_answered_through_the_merged_tables() -> None:
    """A card-service refusal becomes its problem with its own texts and members."""
    app = web.Application()
    app[REFUSALS] = {
        refusal_key(reason): problem
        for section in SECTIONS
        for reason, problem in section.problems.items()
    }
    refusal = CardServiceRefusal(
        CardServiceReason.PIN_WRONG,
        "Wrong PIN; 2 tries left.",
        "密码错误，还可尝试 2 次。",
        tries_left=2,
    )
    answer = problem_of(app, refusal)
    assert (answer.problem.code, answer.problem.status) == ("pin-wrong", 422)
    assert (answer.detail, answer.extra) == ("Wrong PIN; 2 tries left.", {"tries_left": 2})
