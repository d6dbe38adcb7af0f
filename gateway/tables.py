"""Every table of the branch daemon, on one metadata: what Alembic compares and migrates.

Each feature declares its tables in its own ``rows`` module; they are listed here
by name, so a table is part of the schema because it is named, not because some
module happened to be imported first.
"""

from __future__ import annotations

from typing import Final

from gateway.approvals.rows import ApprovalRow
from gateway.archive.rows import ArchiveFileRow
from gateway.audit.rows import (
    AuditAnchorPendingRow,
    AuditAnchorRow,
    AuditCheckpointRow,
    AuditEntryRow,
)
from gateway.batches.rows import BatchItemRow, BatchRow
from gateway.issuance.rows import (
    ProductionJobPersonalRow,
    ProductionJobRow,
    ProductionStepRow,
    StockEntryRow,
)
from gateway.operations.rows import ApplicationRow, ReceiptSequenceRow
from gateway.people.rows import CardRow, PersonRow
from gateway.runtime.rows import Base, DaemonRun, IdempotencyRow
from gateway.upstream.models import OutboxRow

__all__ = ["METADATA", "TABLES"]

#: The tables, by feature (their declaration order does not matter to Alembic).
TABLES: Final = (
    DaemonRun, IdempotencyRow,  # runtime
    PersonRow, CardRow,  # people
    ApprovalRow,  # approvals
    ApplicationRow, ReceiptSequenceRow,  # operations
    AuditEntryRow, AuditCheckpointRow, AuditAnchorRow, AuditAnchorPendingRow,  # audit
    ArchiveFileRow,  # archive
    OutboxRow,  # upstream
    ProductionJobRow, ProductionJobPersonalRow, ProductionStepRow, StockEntryRow,  # issuance
    BatchRow, BatchItemRow,  # batches
)  # fmt: skip
METADATA: Final = Base.metadata
