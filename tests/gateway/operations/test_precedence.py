"""002 §6.1.3.2 c) and d) over 001's "card or ID": what each request must show in person.

Written out case by case (not read from the catalogue): the card and the identity
document for activation and the status query at the window or kiosk, the
principal's document **and** card for a proxy where the card is at hand, and
001's "either" where the card is lost or handed in, or the request is online.
"""

from __future__ import annotations

import pytest

from gateway.operations.catalogue import CATALOGUE, Case, Channel, Material, Operation
from gateway.operations.completeness import check_completeness

ID, CARD = Material.APPLICANT_ID_CARD, Material.APPLICANT_SS_CARD
AGENT = Material.AGENT_ID_CARD
HOUSEHOLD = Material.APPLICANT_HOUSEHOLD_REGISTER


def missing(operation: str, case: Case, channel: Channel, *materials: Material) -> set[str]:
    """The codes of what a request lacks."""
    spec = CATALOGUE[Operation(operation)]
    return {d.code for d in check_completeness(spec, case, channel, materials)}


@pytest.mark.parametrize("operation", ["activate", "status-query"])
@pytest.mark.parametrize("channel", [Channel.WINDOW, Channel.KIOSK])
def test_in_person_activation_and_status_query_need_the_card_and_the_document(
    operation: str, channel: Channel
) -> None:
    """002 §6.1.3.2 a) and c): 应提供参保人社会保障卡, beside the identity document."""
    assert missing(operation, Case.SELF, channel, ID) == {"missing:applicant-card"}
    assert missing(operation, Case.SELF, channel, CARD) == {"missing:applicant-identity"}
    assert missing(operation, Case.SELF, channel, ID, CARD) == set()


@pytest.mark.parametrize("operation", ["activate", "status-query"])
def test_online_the_card_or_the_identity_is_enough(operation: str) -> None:
    """6.1.3.2 lists what is shown on site; an online request proves identity its own way."""
    assert missing(operation, Case.SELF, Channel.ONLINE, ID) == set()
    assert missing(operation, Case.SELF, Channel.ONLINE, CARD) == set()


@pytest.mark.parametrize(
    "operation",
    ["status-query", "pin-reset", "unlock", "cancel", "cancel-loss", "replace", "renew"],
)
def test_a_proxy_brings_the_principals_document_and_card(operation: str) -> None:
    """002 §6.1.3.2 d): 委托人的有效身份证件和社会保障卡原件, 及被委托人的有效身份证件原件."""
    window = Channel.WINDOW
    assert missing(operation, Case.ADULT_PROXY, window, CARD, AGENT) == {
        "missing:applicant-identity"
    }
    assert missing(operation, Case.ADULT_PROXY, window, ID, AGENT) == {"missing:applicant-card"}
    assert missing(operation, Case.ADULT_PROXY, window, ID, CARD) == {"missing:agent-identity"}
    assert missing(operation, Case.ADULT_PROXY, window, ID, CARD, AGENT) == set()
    # a minor's document may be the household register
    assert missing(operation, Case.MINOR_PROXY, window, HOUSEHOLD, CARD, AGENT) == set()
    assert missing(operation, Case.MINOR_PROXY, window, HOUSEHOLD, AGENT) == {
        "missing:applicant-card"
    }


@pytest.mark.parametrize(
    "operation", ["report-temporary-loss", "report-formal-loss", "reissue", "rollback"]
)
def test_where_the_card_is_lost_or_handed_in_a_proxy_brings_either(operation: str) -> None:
    """A loss report or a reissue has no card to show; a rollback's card was handed in."""
    assert missing(operation, Case.ADULT_PROXY, Channel.WINDOW, ID, AGENT) == set()
    assert missing(operation, Case.ADULT_PROXY, Channel.WINDOW, CARD, AGENT) == set()


def test_the_catalogue_tells_integrators_the_on_site_checklist() -> None:
    """``GET /v1/catalogue`` shows the on-site list beside the general one (see test_api)."""
    spec = CATALOGUE[Operation.ACTIVATE]
    assert [r.code for r in spec.requirements_for(Case.SELF, Channel.ONLINE)] == [
        "applicant-card-or-id"
    ]
    assert [r.code for r in spec.requirements_for(Case.SELF, Channel.KIOSK)] == [
        "applicant-identity",
        "applicant-card",
    ]
