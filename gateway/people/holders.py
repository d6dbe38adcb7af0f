"""Card holders: found by the identity number's blind index, inserted once, locked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from stdnum.cn import ric

from gateway.people.identity import birth_date
from gateway.people.rows import IdentityDocumentRow, PersonRow
from gateway.runtime.db import insert_or_ignore
from security.redaction import mask_personal_numbers

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from gateway.people.vault import PersonalDataVault

__all__ = ["DocumentTakenError", "hold_document", "hold_person", "mask_document_number"]


async def hold_person(
    session: AsyncSession,
    vault: PersonalDataVault,
    id_number: str,
    *,
    now: datetime,
    new: Mapping[str, str | None] | None = None,
) -> PersonRow | None:
    """The holder of ``id_number``, locked until commit (the holder's lock).

    With ``new`` (``name``, and ``phone`` and ``address`` when known), a holder not
    yet stored is inserted first, sealed field by field. The insert is ``ON
    CONFLICT DO NOTHING`` on the blind index: a holder stored by a concurrent
    request is fetched instead, and a stored holder's fields are never overwritten
    from a request. ``None`` when there is no such holder and ``new`` is not given.
    """
    id_number = id_number.upper()
    index = vault.index(id_number)
    if new is not None:
        phone, address = new.get("phone"), new.get("address")
        await insert_or_ignore(
            session,
            PersonRow,
            {
                "id_index": index,
                "id_number_enc": vault.seal("id_number", id_number),
                "name_enc": vault.seal("name", new["name"] or ""),
                "phone_enc": vault.seal("phone", phone) if phone else None,
                "address_enc": vault.seal("address", address) if address else None,
                "id_masked": mask_personal_numbers(id_number),
                "birth_date": birth_date(id_number),
                "created_at": now,
            },
            key="id_index",
        )
    found: PersonRow | None = (
        await session.scalars(
            select(PersonRow).where(PersonRow.id_index == index).with_for_update()
        )
    ).first()
    if found is not None and new is not None and ric.is_valid(id_number):
        # A citizen's social security number is the identity card's number.
        await hold_document(session, vault, found, "prc-id-card", id_number, now=now)
    return found


class DocumentTakenError(Exception):
    """The document is on record for another person (the number of one is not the other's)."""


async def hold_document(  # noqa: PLR0913 - the document's parts
    session: AsyncSession,
    vault: PersonalDataVault,
    person: PersonRow,
    doc_type: str,
    number: str,
    *,
    now: datetime,
) -> IdentityDocumentRow:
    """The person's record of a document, added when new (``ON CONFLICT DO NOTHING``).

    Raises:
        DocumentTakenError: the document is on record for another person.
    """
    index = vault.document_index(doc_type, number)
    await insert_or_ignore(
        session,
        IdentityDocumentRow,
        {
            "person_id": person.id,
            "doc_type": doc_type,
            "number_index": index,
            "number_enc": vault.seal("id_number", number),
            "number_masked": mask_document_number(number),
            "created_at": now,
        },
        key=("doc_type", "number_index"),
    )
    found = await session.scalar(
        select(IdentityDocumentRow).where(
            IdentityDocumentRow.doc_type == doc_type, IdentityDocumentRow.number_index == index
        )
    )
    assert found is not None  # noqa: S101 - inserted or there already
    if found.person_id != person.id:
        raise DocumentTakenError(doc_type)
    return found


def mask_document_number(number: str) -> str:
    """A document number for lists and logs: an identity number as everywhere, else 2 + 2."""
    masked = mask_personal_numbers(number)
    if masked != number:
        return masked
    return number[:2] + "*" * max(len(number) - 4, 1) + number[-2:]
