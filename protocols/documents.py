"""Identity documents a citizen shows at the window, and each one's number format.

One enum for the whole daemon: the window's materials, the person's stored
documents and the identity card reader's layouts (PRC identity card, 港澳台居民
居住证, 外国人永久居留身份证) all name a document by a :class:`DocumentType`.

The checks are format checks (what a number of that type looks like, and its
check digit where the type has one); whether a document is genuine is the
reader's and the teller's business. Sans-I/O: no clock, no I/O.

Formats:

* 居民身份证 and 户口簿 (a minor's): the 18-character citizen identity number
  (GB 11643: region, birth date, sequence, ISO 7064 MOD 11-2 check character).
* 港澳台居民居住证: the same layout with the region ``810000`` (Hong Kong),
  ``820000`` (Macao) or ``830000`` (Taiwan).
* 外国人永久居留身份证: the 2023 layout (18 digits, ``9`` then a 2-digit
  province code..., the same check character) or the 2017 one (3 letters, the
  nationality, then 12 digits).
* 港澳台居民来往内地通行证: ``H`` or ``M`` and 8 digits (Hong Kong, Macao; the
  older cards add 2 digits of the issue count), or 8 digits (Taiwan).
* 护照: 5 to 17 letters and digits (a PRC passport: ``E`` and 8 characters).
* 军官证: 4 to 20 characters, Chinese characters, letters and digits.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final

from stdnum.cn import ric
from stdnum.exceptions import ValidationError

__all__ = ["DocumentNumberError", "DocumentType", "check_document_number", "normalise"]


class DocumentType(StrEnum):
    """An identity document; the values are the API's stable names."""

    PRC_ID_CARD = "prc-id-card"  # 居民身份证
    HMT_TRAVEL_PERMIT = "hmt-travel-permit"  # 港澳台居民来往内地通行证
    HMT_RESIDENCE_PERMIT = "hmt-residence-permit"  # 港澳台居民居住证
    FOREIGN_PERMANENT_RESIDENCE = "foreign-permanent-residence"  # 外国人永久居留身份证
    PASSPORT = "passport"  # 护照
    MILITARY_ID = "military-id"  # 军官证
    HOUSEHOLD_REGISTER = "household-register"  # 户口簿 (minors)


class DocumentNumberError(ValueError):
    """A document number that does not have its type's format; ``reason`` says how."""

    def __init__(self, document: DocumentType, reason: str) -> None:
        """Keep the type and the reason (the number itself is not repeated)."""
        super().__init__(f"{document.value}: {reason}")
        self.document = document
        self.reason = reason


_HMT_REGIONS: Final = ("810000", "820000", "830000")
_TRAVEL_PERMIT: Final = re.compile(r"[HM]\d{8}(\d{2})?|\d{8}")
_FOREIGN_2017: Final = re.compile(r"[A-Z]{3}\d{12}")
_PASSPORT: Final = re.compile(r"[A-Z0-9]{5,17}")
_MILITARY: Final = re.compile(r"[\u4e00-\u9fffA-Z0-9]{4,20}")
_EIGHTEEN: Final = 18


def normalise(number: str) -> str:
    """Spaces and hyphens out, letters in upper case."""
    return re.sub(r"[\s-]", "", number).upper()


def check_document_number(document: DocumentType, number: str) -> str:
    """The number in its normal form, or :class:`DocumentNumberError`."""
    text = normalise(number)
    if document in {DocumentType.PRC_ID_CARD, DocumentType.HOUSEHOLD_REGISTER}:
        if not ric.is_valid(text):
            raise DocumentNumberError(document, "not a valid citizen identity number")
        return text
    if document is DocumentType.HMT_RESIDENCE_PERMIT:
        if not text.startswith(_HMT_REGIONS):
            raise DocumentNumberError(document, "must begin 810000, 820000 or 830000")
        return _eighteen(document, text)
    if document is DocumentType.FOREIGN_PERMANENT_RESIDENCE:
        if _FOREIGN_2017.fullmatch(text):
            return text
        if not text.startswith("9"):
            raise DocumentNumberError(document, "neither the 2017 nor the 2023 layout")
        return _eighteen(document, text)
    pattern = {
        DocumentType.HMT_TRAVEL_PERMIT: _TRAVEL_PERMIT,
        DocumentType.PASSPORT: _PASSPORT,
        DocumentType.MILITARY_ID: _MILITARY,
    }[document]
    if not pattern.fullmatch(text):
        raise DocumentNumberError(document, "not in the document's format")
    return text


def _eighteen(document: DocumentType, text: str) -> str:
    """The 18-character layout: digits, a birth date, the ISO 7064 check character."""
    if len(text) != _EIGHTEEN or not text[:-1].isdigit():
        raise DocumentNumberError(document, "must be 17 digits and a check character")
    if text[-1] != ric.calc_check_digit(text):
        raise DocumentNumberError(document, "check character does not match")
    try:
        ric.get_birth_date(text)
    except ValidationError:
        raise DocumentNumberError(document, "no valid birth date") from None
    return text
