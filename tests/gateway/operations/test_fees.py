"""What an application owes: the configured fee, by region and category, or a waiver."""

from __future__ import annotations

from datetime import date

from gateway.operations.fees import decide_fee
from gateway.operations.settings import BusinessConfig, FeeRule

TODAY = date(2026, 12, 7)
ADULT = date(1990, 1, 1)
MINOR = date(2015, 5, 5)
SENIOR = date(1950, 3, 3)
RULES = BusinessConfig(
    reissue_fee_yuan=20,
    fee_rules=(
        FeeRule(region="6523", category="senior", yuan=0),  # waived by policy there
        FeeRule(region="65", category="minor", yuan=10),
        FeeRule(region="500000", yuan=25),
    ),
)


def _fee(
    region: str, birth: date, *, waived: bool = False, charged: bool = True
) -> tuple[object, ...]:
    d = decide_fee(RULES, charged=charged, region=region, birth=birth, today=TODAY, waived=waived)
    return d.yuan, d.status, d.method


def test_the_default_fee_is_due() -> None:
    """Where no rule says otherwise: the built-in 20 yuan, due."""
    assert _fee("410100", ADULT) == (20, "due", None)


def test_rules_by_region_and_category_first_match() -> None:
    """A region's prefix and the holder's category pick the rule; the first match wins."""
    assert _fee("652300", SENIOR) == (0, "waived", "policy")
    assert _fee("650100", SENIOR) == (20, "due", None)  # the senior rule is for 6523 only
    assert _fee("652300", MINOR) == (10, "due", None)
    assert _fee("500000", ADULT) == (25, "due", None)


def test_an_approval_waives_what_is_owed() -> None:
    """A supervisor's approval waives the fee (the amount is kept for the record)."""
    assert _fee("410100", ADULT, waived=True) == (20, "waived", "approval")


def test_operations_without_a_fee_owe_nothing() -> None:
    """Loss reports, activation and the rest have no fee."""
    assert _fee("410100", ADULT, charged=False) == (0, "none", None)
