"""The citizen's view of an application, step by step (written out, not read from the table)."""

from __future__ import annotations

import pytest

from gateway.operations.progress import PROGRESS, progress_of

CASES: list[tuple[str, str, bool, bool, bool, str, str]] = [
    # status, fee, online, verified, makes a card, card state -> step
    ("accepted", "none", True, False, True, "00", "verifying"),
    ("accepted", "none", True, True, True, "00", "submitted"),
    ("accepted", "due", False, False, True, "07", "fee-due"),
    ("accepted", "settling", False, False, True, "07", "fee-due"),
    ("accepted", "settled", False, False, True, "01", "in-production"),
    ("accepted", "none", False, False, True, "17", "in-production"),
    ("accepted", "none", False, False, True, "00", "submitted"),
    ("completed", "none", False, False, True, "02", "awaiting-pickup"),
    ("completed", "none", False, False, True, "03", "picked-up"),
    ("completed", "none", False, False, True, "04", "enabled"),
    ("completed", "none", False, False, False, "06", "done"),  # a loss report
    ("completed", "none", False, False, True, "09", "done"),  # made, then cancelled
    ("withdrawn", "reversed", False, False, True, "07", "returned"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: "-".join(map(str, case)))
def test_each_application_state_has_its_step(
    case: tuple[str, str, bool, bool, bool, str, str],
) -> None:
    """The step a citizen is told for each combination a teller meets."""
    status, fee, online, verified, makes_card, card, step = case
    found = progress_of(
        status=status, fee_status=fee, online=online, verified=verified,
        makes_card=makes_card, card_state=card,
    )  # fmt: skip
    assert found.code == step


def test_every_step_has_both_texts_and_is_documented() -> None:
    """Zh and en for every step; docs/operations.md lists each with its texts."""
    from pathlib import Path  # noqa: PLC0415

    doc = (Path(__file__).parents[3] / "docs" / "operations.md").read_text(encoding="utf-8")
    for step in PROGRESS.values():
        assert step.zh
        assert step.en
        assert f"| `{step.code}` | {step.zh} | {step.en} |" in doc, step.code
