import json
from pathlib import Path

import pytest

import gateway.assembly  # noqa: F401 - every section, and so every problem, registered
from gateway.runtime.problems import NOT_FOUND, PROBLEMS, ProblemError, problem_response, register

DOC = Path(__file__).parents[3] / "docs" / "api-errors.md"


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


def test_a_problem_never_carries_personal_data_in_clear() -> None:
    """Identity, bank card and mobile numbers are masked in the detail and the members."""
    error = ProblemError(
        NOT_FOUND,
        "no holder 11010519491231002X (tel 13812345678)",
        "无此持卡人 11010519491231002X",
        holder={"name": "张晓明", "phone": "13812345678"},
        card="6217000010000000017",
    )
    raw = problem_response(error, instance="/x/11010519491231002X").body
    assert isinstance(raw, bytes)
    body = json.loads(raw)
    text = json.dumps(body, ensure_ascii=False)
    for clear in ("11010519491231002X", "13812345678", "张晓明", "6217000010000000017"):
        assert clear not in text, text
    assert body["detail"] == "no holder 110105********002X (tel 138****5678)"
    assert body["holder"] == {"name": "张**", "phone": "138****5678"}


def test_what_may_be_retried_is_said_and_documented() -> None:
    """A passing outage or a busy resource is retryable; a refusal on the request is not."""
    from gateway import assembly  # noqa: F401, PLC0415 - registers every section's problems

    retryable = {p.code for p in PROBLEMS.values() if p.retryable}
    for code in ("state-conflict", "fee-settling", "window-busy", "idempotency-in-flight",
                 "not-ready", "day-upstream-unavailable"):  # fmt: skip
        assert code in retryable, code
    for code in ("incomplete-request", "invalid-request", "card-exists", "illegal-transition",
                 "forbidden", "not-found", "day-closed"):  # fmt: skip
        assert code not in retryable, code
    text = DOC.read_text(encoding="utf-8")
    listed = text.split("Retryable:", 1)[1].split("\n\n", 1)[0]
    assert sorted(retryable) == sorted(c.strip(" `.\n") for c in listed.split(",")), listed
