"""Status words of the social-security application and their errors.

::

    SW    meaning                                            error
    ----  -------------------------------------------------  ------------------------------
    9000  done                                               -
    61xx  xx more bytes: GET RESPONSE (T=0)                  handled by the T=0 exchange
    6Cxx  wrong Le, resend with xx (T=0)                     handled by the T=0 exchange
    6283  SELECT: the application is blocked                ApplicationBlockedError
    6300  EXTERNAL AUTHENTICATE: wrong cryptogram            AuthenticationFailedError
    63Cx  VERIFY/CHANGE PIN: wrong PIN, x tries left (x>0)   WrongPinError
    63C0  wrong PIN, no try left: now locked                 PinBlockedError
    6700  wrong length                                       WrongDataError
    6982  security status not satisfied (authenticate first) SecurityStatusError
    6983  PIN locked                                         PinBlockedError
    6985  conditions not satisfied (default PIN; no challenge) ConditionsNotSatisfiedError
    6986  no current EF for UPDATE RECORD P2=04              CardStatusError
    6988  wrong MAC                                          MacError
    6A80  wrong data (e.g. default PIN as a new PIN)          WrongDataError
    6A81  application blocked                                ApplicationBlockedError
    6A82  application or file not found                      NotFoundError
    6A83  record not found                                   NotFoundError
    6A86  wrong P1 P2                                        CardStatusError
    6D00  instruction not supported                          CardStatusError
    6E00  class not supported                                CardStatusError
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from protocols.sscard.errors import (
    ApplicationBlockedError,
    AuthenticationFailedError,
    CardStatusError,
    ConditionsNotSatisfiedError,
    MacError,
    NotFoundError,
    PinBlockedError,
    SecurityStatusError,
    WrongDataError,
    WrongPinError,
)

if TYPE_CHECKING:
    from protocols.apdu import ResponseApdu

__all__ = [
    "SW_APPLICATION_BLOCKED",
    "SW_AUTHENTICATION_FAILED",
    "SW_CLA_NOT_SUPPORTED",
    "SW_CONDITIONS_NOT_SATISFIED",
    "SW_FILE_NOT_FOUND",
    "SW_INS_NOT_SUPPORTED",
    "SW_NO_CURRENT_EF",
    "SW_OK",
    "SW_PIN_BLOCKED",
    "SW_RECORD_NOT_FOUND",
    "SW_SECURITY_STATUS",
    "SW_SELECTED_BLOCKED",
    "SW_SM_INCORRECT",
    "SW_WRONG_DATA",
    "SW_WRONG_LENGTH",
    "SW_WRONG_P1P2",
    "check",
    "error_for",
    "wrong_pin_sw",
]

SW_OK: Final = 0x9000
SW_SELECTED_BLOCKED: Final = 0x6283
SW_AUTHENTICATION_FAILED: Final = 0x6300
SW_WRONG_LENGTH: Final = 0x6700
SW_SECURITY_STATUS: Final = 0x6982
SW_PIN_BLOCKED: Final = 0x6983
SW_CONDITIONS_NOT_SATISFIED: Final = 0x6985
SW_NO_CURRENT_EF: Final = 0x6986
SW_SM_INCORRECT: Final = 0x6988
SW_WRONG_DATA: Final = 0x6A80
SW_APPLICATION_BLOCKED: Final = 0x6A81
SW_FILE_NOT_FOUND: Final = 0x6A82
SW_RECORD_NOT_FOUND: Final = 0x6A83
SW_WRONG_P1P2: Final = 0x6A86
SW_INS_NOT_SUPPORTED: Final = 0x6D00
SW_CLA_NOT_SUPPORTED: Final = 0x6E00
_SW_WRONG_PIN_BASE: Final = 0x63C0

_ERRORS: Final[dict[int, type[CardStatusError]]] = {
    SW_SELECTED_BLOCKED: ApplicationBlockedError,
    SW_AUTHENTICATION_FAILED: AuthenticationFailedError,
    _SW_WRONG_PIN_BASE: PinBlockedError,
    SW_WRONG_LENGTH: WrongDataError,
    SW_SECURITY_STATUS: SecurityStatusError,
    SW_PIN_BLOCKED: PinBlockedError,
    SW_CONDITIONS_NOT_SATISFIED: ConditionsNotSatisfiedError,
    SW_SM_INCORRECT: MacError,
    SW_WRONG_DATA: WrongDataError,
    SW_APPLICATION_BLOCKED: ApplicationBlockedError,
    SW_FILE_NOT_FOUND: NotFoundError,
    SW_RECORD_NOT_FOUND: NotFoundError,
}


def wrong_pin_sw(tries_left: int) -> int:
    """``63Cx`` for ``tries_left`` (0..15)."""
    return _SW_WRONG_PIN_BASE | (tries_left & 0x0F)


def error_for(sw: int, command: str) -> CardStatusError:
    """The error a status word other than ``9000`` stands for."""
    if sw & 0xFFF0 == _SW_WRONG_PIN_BASE and sw != _SW_WRONG_PIN_BASE:
        return WrongPinError(sw, command)
    return _ERRORS.get(sw, CardStatusError)(sw, command)


def check(response: ResponseApdu, command: str) -> bytes:
    """Return the answer data of a ``9000`` response, or raise its error.

    Raises:
        CardStatusError: The status word is not ``9000`` (the subclass says why).
    """
    if response.sw != SW_OK:
        raise error_for(response.sw, command)
    return response.data
