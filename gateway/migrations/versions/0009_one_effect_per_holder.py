"""The database forbids a second card or open application for one holder.

Partial unique indexes: at most one current card per holder (not cancelled and
not waiting for its successor), at most one card being replaced, and at most
one open reissue, replacement and renewal each. They back the row locks of the
business service: a path that reads a holder's state without holding it fails
with an integrity error instead of storing a second effect.

A database that already holds such duplicates (made before this revision)
cannot take the indexes: the upgrade stops and names the holders, to be
settled by hand (cancel the extra card or application) before upgrading again.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_CURRENT = "card_state IN ('00', '01', '02', '03', '04', '05', '06', '17')"
_REPLACED = "card_state IN ('07', '08')"
_OPEN = "status = 'accepted' AND operation IN ('reissue', 'replace', 'renew')"


def _refuse_duplicates() -> None:
    # Constant text only: the conditions of the indexes below.
    where = {"current cards": _CURRENT, "cards being replaced": _REPLACED}
    checks = {
        what: f"SELECT person_id FROM cards WHERE {cond} GROUP BY person_id HAVING COUNT(*) > 1"  # noqa: S608
        for what, cond in where.items()
    }
    checks["open applications"] = (
        f"SELECT person_id FROM applications WHERE {_OPEN} "  # noqa: S608
        "GROUP BY person_id, operation HAVING COUNT(*) > 1"
    )
    found = []
    for what, query in checks.items():
        persons = [row[0] for row in op.get_bind().execute(sa.text(query))]
        if persons:
            found.append(f"{what} of persons.id {sorted(persons)}")
    if found:
        raise RuntimeError(
            "cannot add the one-per-holder indexes: duplicates exist ("
            + "; ".join(found)
            + "); cancel the extra cards or applications, then upgrade again"
        )


def upgrade() -> None:
    _refuse_duplicates()
    for name, table, columns, where in (
        ("uq_cards_current_per_person", "cards", ["person_id"], _CURRENT),
        ("uq_cards_replaced_per_person", "cards", ["person_id"], _REPLACED),
        ("uq_applications_open_per_person", "applications", ["person_id", "operation"], _OPEN),
    ):
        op.create_index(
            name,
            table,
            columns,
            unique=True,
            sqlite_where=sa.text(where),
            postgresql_where=sa.text(where),
        )


def downgrade() -> None:
    op.drop_index("uq_applications_open_per_person", table_name="applications")
    op.drop_index("uq_cards_replaced_per_person", table_name="cards")
    op.drop_index("uq_cards_current_per_person", table_name="cards")
