"""ORM models. Every change here comes with an Alembic migration in ``migrations/versions``.

Timestamps are stored in UTC. SQLite has no time zones, so :class:`UTCDateTime`
attaches UTC on the way out and refuses naive datetimes on the way in.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Final

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

if TYPE_CHECKING:
    from sqlalchemy.engine import Dialect
    from sqlalchemy.sql.elements import TextClause

__all__ = [
    "ApplicationRow",
    "ApprovalRow",
    "ArchiveFileRow",
    "AuditCheckpointRow",
    "AuditEntryRow",
    "Base",
    "CardRow",
    "DaemonRun",
    "IdempotencyRow",
    "PersonRow",
    "ReceiptSequenceRow",
    "UTCDateTime",
]

#: Constraint names are fixed so that migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes; store UTC."""
        del dialect
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware UTC time")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return aware UTC datetimes, whatever the backend kept."""
        del dialect
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with the project's naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class DaemonRun(Base):
    """One start of the daemon, with its liveness heartbeat.

    A run whose ``stopped_at`` is still empty when the next one starts ended
    without a clean shutdown (power cut, SIGKILL, crash); its last heartbeat
    tells roughly when. Recovery of unfinished work keys off this.
    """

    __tablename__ = "daemon_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    branch_id: Mapped[str] = mapped_column(String(32))
    version: Mapped[str] = mapped_column(String(64))
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime())
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    #: ``None`` while running; ``False`` when the next start found it unfinished.
    ended_cleanly: Mapped[bool | None] = mapped_column(Boolean, default=None)


class AuditEntryRow(Base):
    """One audit entry, hash-chained to the one before (see :mod:`security.audit`).

    The table is append-only: database triggers refuse UPDATE and DELETE.
    ``details`` is canonical JSON, already redacted (no secrets, masked numbers).
    """

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(128))
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(128))
    hash: Mapped[str] = mapped_column(String(128))


class AuditCheckpointRow(Base):
    """The signed end of one business day of the audit chain (append-only too)."""

    __tablename__ = "audit_checkpoints"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(128))
    key_id: Mapped[str] = mapped_column(String(64))
    key_version: Mapped[int] = mapped_column(Integer)
    signature: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PersonRow(Base):
    """A card holder; personal data encrypted field by field.

    Encryption is AES-256-GCM in the key store with the column name as associated
    data; the identity number is found through ``id_index``, a keyed hash
    (HMAC-SHA256) of its normalised form.
    """

    __tablename__ = "persons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id_index: Mapped[str] = mapped_column(String(64), unique=True)
    id_number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    address_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    #: Masked identity number (first 6, last 4) for lists and logs.
    id_masked: Mapped[str] = mapped_column(String(32))
    birth_date: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


#: Card states of a card that is neither cancelled (``09``) nor waiting for its
#: successor (``07`` reissue, ``08`` replacement under way): at most one per holder.
CURRENT_CARD_STATES: Final = ("00", "01", "02", "03", "04", "05", "06", "17")
#: Card states of a card whose successor is being made: at most one per holder.
REPLACED_CARD_STATES: Final = ("07", "08")
#: Operations of which a holder has at most one open (``accepted``) application.
ONE_OPEN_APPLICATION: Final = ("reissue", "replace", "renew")


def _in(column: str, values: tuple[str, ...]) -> TextClause:
    """A partial index's condition, the same text on SQLite and PostgreSQL."""
    return text(f"{column} IN ({', '.join(repr(v) for v in values)})")


class CardRow(Base):
    """One card of a person, with its three independent states.

    The database keeps a holder to one current card and one card being replaced
    (partial unique indexes), whatever the code above it does.
    """

    __tablename__ = "cards"
    __table_args__ = (
        Index(
            "uq_cards_current_per_person", "person_id", unique=True,
            sqlite_where=_in("card_state", CURRENT_CARD_STATES),
            postgresql_where=_in("card_state", CURRENT_CARD_STATES),
        ),
        Index(
            "uq_cards_replaced_per_person", "person_id", unique=True,
            sqlite_where=_in("card_state", REPLACED_CARD_STATES),
            postgresql_where=_in("card_state", REPLACED_CARD_STATES),
        ),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    card_number: Mapped[str | None] = mapped_column(String(16), default=None)  # AAZ500
    card_code: Mapped[str | None] = mapped_column(String(32), default=None)  # AAZ501
    region: Mapped[str] = mapped_column(String(6))
    application_state: Mapped[str] = mapped_column(String(2))  # AAZ502
    card_state: Mapped[str] = mapped_column(String(2))
    bank_state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApplicationRow(Base):
    """One accepted business request (受理), found by its receipt number.

    A holder has at most one open reissue, replacement and renewal each.
    """

    __tablename__ = "applications"
    __table_args__ = (
        Index(
            "uq_applications_open_per_person", "person_id", "operation", unique=True,
            sqlite_where=text(f"status = 'accepted' AND {_in('operation', ONE_OPEN_APPLICATION)}"),
            postgresql_where=text(
                f"status = 'accepted' AND {_in('operation', ONE_OPEN_APPLICATION)}"
            ),
        ),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    receipt_number: Mapped[str] = mapped_column(String(32), unique=True)
    operation: Mapped[str] = mapped_column(String(32), index=True)
    case: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    card_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id"), default=None)
    terminal_id: Mapped[str] = mapped_column(String(64))
    fee_yuan: Mapped[int] = mapped_column(Integer, default=0)
    fee_waived: Mapped[bool] = mapped_column(Boolean, default=False)
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deadline: Mapped[date | None] = mapped_column(Date, default=None)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class ReceiptSequenceRow(Base):
    """The last receipt sequence number used on a day."""

    __tablename__ = "receipt_sequences"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class IdempotencyRow(Base):
    """A POST's Idempotency-Key, its request digest and, once answered, the answer."""

    __tablename__ = "idempotency_keys"

    terminal_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    request_digest: Mapped[str] = mapped_column(String(64))
    #: ``in-flight`` until answered, then ``done``.
    state: Mapped[str] = mapped_column(String(16))
    status: Mapped[int | None] = mapped_column(Integer, default=None)
    content_type: Mapped[str | None] = mapped_column(String(64), default=None)
    body: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class ApprovalRow(Base):
    """A supervisor's approval of one exact request (operation + body digest), used once."""

    __tablename__ = "approvals"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    operation: Mapped[str] = mapped_column(String(32))
    request_digest: Mapped[str] = mapped_column(String(64))
    supervisor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    used_by: Mapped[str | None] = mapped_column(String(64), default=None)


class ArchiveFileRow(Base):
    """One archived image of a window operation (credential, scene or signature).

    The bytes live in ``<data_dir>/archive`` under their SHA-256 (content
    addressed: stored once, verifiable by name); the row ties them to the
    application and the month they are exported with.
    """

    __tablename__ = "archive_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(64))
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
