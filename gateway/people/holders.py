"""Card holders: found by the identity number's blind index, inserted once, locked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from gateway.people.identity import birth_date
from gateway.people.rows import PersonRow
from gateway.runtime.db import insert_or_ignore
from security.redaction import mask_personal_numbers

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from gateway.people.vault import PersonalDataVault

__all__ = ["hold_person"]


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
    return found
