"""Each application says whether its archive is complete.

``applications.archive_status``: ``not-required`` (a status query, an online or
batch request), ``incomplete`` (a window operation whose credential, scene and
signature images are not all archived), ``complete``, ``waived`` (by a
supervisor, ``archive_waiver`` the reason, ``archive_waived_by`` who). An
incomplete application keeps its month from being exported.

Rows from before this revision are judged by the files they have: window
operations of the catalogue with all three kinds archived are ``complete``, the
other window operations ``incomplete`` (they are: the images are missing), the
rest ``not-required``.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

#: Operations whose window requests keep images (the catalogue at this revision).
_ARCHIVED = (
    "apply", "batch-to-single", "activate", "reissue", "replace", "renew", "info-change",
    "pin-change", "pin-reset", "unlock", "report-temporary-loss", "report-formal-loss",
    "cancel-loss", "cancel", "rollback", "electronic-card", "pickup",
)  # fmt: skip
_KINDS = ("credential-image", "scene-image", "signature")


def upgrade() -> None:
    op.add_column(
        "applications",
        sa.Column("archive_status", sa.String(16), nullable=False, server_default="not-required"),
    )
    op.add_column("applications", sa.Column("archive_waiver", sa.String(256), nullable=True))
    op.add_column("applications", sa.Column("archive_waived_by", sa.String(64), nullable=True))
    op.create_index("ix_applications_archive_status", "applications", ["archive_status"])
    applications = sa.table(
        "applications",
        sa.column("id", sa.Integer()),
        sa.column("operation", sa.String()),
        sa.column("channel", sa.String()),
        sa.column("archive_status", sa.String()),
    )
    files = sa.table(
        "archive_files", sa.column("application_id", sa.Integer()), sa.column("kind", sa.String())
    )
    window = sa.and_(applications.c.channel == "window", applications.c.operation.in_(_ARCHIVED))
    bind = op.get_bind()
    bind.execute(sa.update(applications).where(window).values(archive_status="incomplete"))
    complete = (
        sa.select(files.c.application_id)
        .where(files.c.kind.in_(_KINDS))
        .group_by(files.c.application_id)
        .having(sa.func.count(sa.distinct(files.c.kind)) == len(_KINDS))
    )
    bind.execute(
        sa.update(applications)
        .where(window, applications.c.id.in_(complete))
        .values(archive_status="complete")
    )


def downgrade() -> None:
    op.drop_index("ix_applications_archive_status", table_name="applications")
    for column in ("archive_waived_by", "archive_waiver", "archive_status"):
        op.drop_column("applications", column)
