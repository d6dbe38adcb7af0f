"""What a resident identity number says of its holder: birth date, sex and age."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from stdnum.cn import ric

if TYPE_CHECKING:
    from datetime import date

__all__ = ["ADULT_AGE", "age_on", "birth_date", "sex_of"]

#: Age of full civil capacity (民法典 §17): younger applicants need a guardian.
ADULT_AGE: Final = 18


def birth_date(id_number: str) -> date:
    """The holder's birth date (the number is checked first: ``ValueError`` when invalid)."""
    return ric.get_birth_date(id_number)


def sex_of(id_number: str) -> str:
    """GB/T 2261.1 sex code from the identity number's 17th digit (odd: 1 male, else 2)."""
    return "1" if int(id_number[16]) % 2 else "2"


def age_on(birth: date, day: date) -> int:
    """Whole years of age on ``day`` (a birthday counts from its own date)."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))
