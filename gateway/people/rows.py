"""Card holders and their cards."""

from __future__ import annotations

from datetime import date, datetime
from typing import Final

from sqlalchemy import (
    JSON,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from gateway.runtime.rows import Base, UTCDateTime, in_clause

#: Card states of a card that is neither cancelled (``09``) nor waiting for its
#: successor (``07`` reissue, ``08`` replacement under way): at most one per holder.
CURRENT_CARD_STATES: Final = ("00", "01", "02", "03", "04", "05", "06", "17")
#: Card states of a card whose successor is being made: at most one per holder.
REPLACED_CARD_STATES: Final = ("07", "08")


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
    #: The holder's photo (JPEG) as taken at the window, sealed like the other fields:
    #: sent in pre-open, printed on the card, replaced by a reissue's new photo.
    photo_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    #: Masked identity number (first 6, last 4) for lists and logs.
    id_masked: Mapped[str] = mapped_column(String(32))
    birth_date: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IdentityDocumentRow(Base):
    """An identity document a holder has shown: one person may hold several.

    Keyed by the document's type and the blind index of its number (unique: a
    document belongs to one person); the person by the social security number
    (``persons.id_index``). The number is sealed as an identity number.
    """

    __tablename__ = "identity_documents"
    __table_args__ = (
        UniqueConstraint("doc_type", "number_index", name="uq_identity_documents_number"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    #: A :class:`protocols.documents.DocumentType` value.
    doc_type: Mapped[str] = mapped_column(String(32))
    number_index: Mapped[str] = mapped_column(String(64))
    number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    number_masked: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CardRow(Base):
    """One card of a person, with its three independent states.

    The database keeps a holder to one current card and one card being replaced
    (partial unique indexes), whatever the code above it does.
    """

    __tablename__ = "cards"
    __table_args__ = (
        Index(
            "uq_cards_current_per_person", "person_id", unique=True,
            sqlite_where=in_clause("card_state", CURRENT_CARD_STATES),
            postgresql_where=in_clause("card_state", CURRENT_CARD_STATES),
        ),
        Index(
            "uq_cards_replaced_per_person", "person_id", unique=True,
            sqlite_where=in_clause("card_state", REPLACED_CARD_STATES),
            postgresql_where=in_clause("card_state", REPLACED_CARD_STATES),
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
    #: The interruptions in force on each machine, oldest first, with the state
    #: under each (:mod:`gateway.people.lifecycle`): ``{"card": [["temporary-loss",
    #: "02"]]}``. Changed only through ``lifecycle.step``.
    interruptions: Mapped[dict[str, list[list[str]]]] = mapped_column(
        JSON, default=dict, server_default="{}"
    )
    #: When the electronic card was requested for this card (once per card).
    electronic_card_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
