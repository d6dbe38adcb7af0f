"""Receipt numbers (受理编号): unique, readable aloud, and self-checking.

Layout, 22 characters::

    SS 652300 20261123 00042 7
    |  |      |        |     +-- Damm check digit over the 19 digits before it
    |  |      |        +-------- sequence within the branch and day (5 digits)
    |  |      +----------------- acceptance date (Beijing time)
    |  +------------------------ region code of the branch (AAB301)
    +--------------------------- fixed prefix

The Damm check digit catches every single mistyped digit and every swap of two
adjacent digits, the two mistakes people make when reading a number over a
counter or a phone. Uniqueness comes from the branch sequence (one per day,
kept in the database); the branch's region keeps numbers of neighbouring
branches apart only together with the branch's own sequence range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Final

from sqlalchemy.exc import IntegrityError
from stdnum import damm

from gateway.operations.errors import OperationReason, OperationRefusal
from gateway.operations.rows import BusinessDayRow, ReceiptSequenceRow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = [
    "PREFIX",
    "ReceiptNumber",
    "ReceiptNumberError",
    "ensure_open",
    "make_receipt_number",
    "next_receipt",
]

PREFIX: Final = "SS"
_PATTERN: Final = re.compile(r"^SS(\d{6})(\d{8})(\d{5})(\d)$")
MAX_SEQUENCE: Final = 99_999


class ReceiptNumberError(ValueError):
    """A receipt number that is malformed or fails its check digit."""


@dataclass(frozen=True, slots=True)
class ReceiptNumber:
    """A parsed receipt number."""

    region: str
    day: date
    sequence: int

    def __str__(self) -> str:
        """The 22-character form with its check digit."""
        body = f"{self.region}{self.day:%Y%m%d}{self.sequence:05d}"
        return f"{PREFIX}{body}{damm.calc_check_digit(body)}"

    @classmethod
    def parse(cls, text: str) -> ReceiptNumber:
        """Parse and check ``text`` (spaces and lower case are tolerated)."""
        cleaned = text.replace(" ", "").upper()
        match = _PATTERN.match(cleaned)
        if match is None:
            raise ReceiptNumberError("expected SS + 6-digit region + date + 5 digits + check digit")
        region, day_text, sequence, _check = match.groups()
        if not damm.is_valid(cleaned[len(PREFIX) :]):
            raise ReceiptNumberError("check digit does not match: a digit is mistyped")
        try:
            day = date(int(day_text[:4]), int(day_text[4:6]), int(day_text[6:]))
        except ValueError:
            raise ReceiptNumberError("the date part is not a date") from None
        return cls(region=region, day=day, sequence=int(sequence))


def make_receipt_number(region: str, day: date, sequence: int) -> ReceiptNumber:
    """Build the receipt number for the ``sequence``-th acceptance of ``day``."""
    if not re.fullmatch(r"\d{6}", region):
        raise ReceiptNumberError("region must be 6 digits")
    if not 1 <= sequence <= MAX_SEQUENCE:
        raise ReceiptNumberError(f"sequence must be 1..{MAX_SEQUENCE}")
    return ReceiptNumber(region=region, day=day, sequence=sequence)


async def next_receipt(session: AsyncSession, region: str, day: date) -> str:
    """The branch's next receipt number of ``day``, in ``session``'s transaction.

    One sequence per branch and day for every acceptance (window operations,
    card services, batch imports and pickups alike); the day's row is locked
    until commit.
    """
    row = await session.get(ReceiptSequenceRow, day, with_for_update=True)
    if row is None:
        row = ReceiptSequenceRow(day=day, last=0)
        session.add(row)
        try:
            async with session.begin_nested():
                await session.flush()
        except IntegrityError:  # another request created the day's row first
            row = await session.get(
                ReceiptSequenceRow, day, with_for_update=True, populate_existing=True
            )
            assert row is not None  # noqa: S101 - it exists: the insert just collided
    await ensure_open(session, day)  # under the day's sequence lock, as a close takes it
    row.last += 1
    return str(make_receipt_number(region, day, row.last))


async def ensure_open(session: AsyncSession, day: date) -> None:
    """Refuse when ``day`` was closed (日终): nothing more is posted on a closed day.

    Raises:
        OperationRefusal: ``DAY_CLOSED``.
    """
    held = await session.get(BusinessDayRow, day)
    if held is not None and held.status == "closed":
        raise OperationRefusal(
            OperationReason.DAY_CLOSED,
            f"The business day {day} is closed; a supervisor may reopen it.",
            f"{day} 已日终结账，如需办理请由主管重新开启当日账务。",
            day=day.isoformat(),
        )
