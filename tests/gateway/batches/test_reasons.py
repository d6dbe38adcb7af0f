"""The batch service's refusal reasons and the batch section's table of problems."""

from __future__ import annotations

from gateway.assembly import SECTIONS
from gateway.batches.errors import BatchReason
from gateway.batches.routes import SECTION
from gateway.runtime.problems import PROBLEMS


def test_every_reason_is_in_the_section_table() -> None:
    """Each BatchReason is answered with a registered problem; the table holds nothing else."""
    table = SECTION.problems
    for reason in BatchReason:
        assert reason in table, reason
        assert PROBLEMS[table[reason].code] is table[reason], reason
    assert set(table) == set(BatchReason)
    assert SECTION in SECTIONS


def test_reasons_keep_their_problem_codes() -> None:
    """The problems the API answered with before the service spoke in reasons."""
    codes = {reason: problem.code for reason, problem in SECTION.problems.items()}
    assert codes == {
        BatchReason.NOT_FOUND: "batch-not-found",
        BatchReason.FILE_INVALID: "batch-file-invalid",
        BatchReason.STATE: "batch-state",
        BatchReason.ROW_STATE: "batch-row-state",
        BatchReason.HOLDER_MISMATCH: "batch-holder-mismatch",
        BatchReason.INCOMPLETE: "incomplete-request",
    }


def test_no_other_section_maps_a_batch_reason() -> None:
    """The middleware merges every table: a reason equal to a batch one would take its place."""
    for section in SECTIONS:
        if section is not SECTION:
            assert not set(section.problems) & set(BatchReason), section.name
