"""Each identity document's number format, and nothing but its own error for any text."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.cn import ric

from protocols.documents import DocumentNumberError, DocumentType, check_document_number

D = DocumentType


def _with_check(first17: str) -> str:
    """An 18-character number with its ISO 7064 MOD 11-2 check character."""
    return first17 + ric.calc_check_digit(first17 + "0")


VALID = [
    (D.PRC_ID_CARD, "11010519491231002x", "11010519491231002X"),
    (D.HOUSEHOLD_REGISTER, _with_check("11010520150505001"), _with_check("11010520150505001")),
    (D.HMT_RESIDENCE_PERMIT, _with_check("81000019940823002"), _with_check("81000019940823002")),
    (D.HMT_RESIDENCE_PERMIT, _with_check("83000019920130002"), _with_check("83000019920130002")),
    (
        D.FOREIGN_PERMANENT_RESIDENCE,
        _with_check("91156019900101001"),
        _with_check("91156019900101001"),
    ),
    (D.FOREIGN_PERMANENT_RESIDENCE, "USA110019900101", "USA110019900101"),
    (D.HMT_TRAVEL_PERMIT, "h1234 5678", "H12345678"),
    (D.HMT_TRAVEL_PERMIT, "M1234567801", "M1234567801"),
    (D.HMT_TRAVEL_PERMIT, "12345678", "12345678"),
    (D.PASSPORT, "e12345678", "E12345678"),
    (D.MILITARY_ID, "军字第1234567号", "军字第1234567号"),
]
INVALID = [
    (D.PRC_ID_CARD, "110105194912310021"),  # wrong check character
    (D.HMT_RESIDENCE_PERMIT, _with_check("11010519491231002")),  # not an HMT region
    (D.HMT_RESIDENCE_PERMIT, "810000199408230029"),  # wrong check character
    (D.FOREIGN_PERMANENT_RESIDENCE, "812345678901234567"),
    (D.HMT_TRAVEL_PERMIT, "X12345678"),
    (D.PASSPORT, "E1"),
    (D.MILITARY_ID, "军"),
]


@pytest.mark.parametrize(("document", "given", "normal"), VALID, ids=str)
def test_valid_numbers_in_their_normal_form(document: D, given: str, normal: str) -> None:
    """A number of the type's format comes back normalised (spaces out, upper case)."""
    assert check_document_number(document, given) == normal


@pytest.mark.parametrize(("document", "given"), INVALID, ids=str)
def test_invalid_numbers_are_refused_with_the_type(document: D, given: str) -> None:
    """A number not of the format is refused, naming the type, never echoing the number."""
    with pytest.raises(DocumentNumberError) as info:
        check_document_number(document, given)
    assert info.value.document is document
    assert given not in str(info.value)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(st.sampled_from(list(DocumentType)), st.text(max_size=40))
def test_any_text_gives_a_number_or_the_documented_error(document: D, text: str) -> None:
    """Nothing but DocumentNumberError, whatever is typed or read."""
    with contextlib.suppress(DocumentNumberError):
        check_document_number(document, text)
