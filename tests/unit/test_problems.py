from pathlib import Path

import pytest

import gateway.assembly  # noqa: F401 - every section, and so every problem, registered
from gateway.runtime.problems import PROBLEMS, register

DOC = Path(__file__).parents[2] / "docs" / "api-errors.md"


def test_every_problem_is_documented() -> None:
    """docs/api-errors.md has a row for each registered code, with both titles."""
    text = DOC.read_text(encoding="utf-8")
    for problem in PROBLEMS.values():
        row = f"| `{problem.code}` | {problem.status} | {problem.title} | {problem.title_zh} |"
        assert row in text, row


def test_codes_cannot_be_registered_twice() -> None:
    """A code is registered once: a second registration is a programming error."""
    with pytest.raises(ValueError, match="registered twice"):
        register("not-found", 404, "x", "x")


def test_codes_are_kebab_case_and_titles_bilingual() -> None:
    """Codes are stable kebab-case identifiers; every problem has both titles."""
    for code, problem in PROBLEMS.items():
        assert code == problem.code
        assert code.replace("-", "").isalpha()
        assert code.islower()
        assert problem.title
        assert problem.title_zh
