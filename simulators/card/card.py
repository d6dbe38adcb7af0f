"""A social-security card: the application of docs/protocols/sscard.md, card side.

:class:`SimulatedCard` answers APDU bytes with response bytes. It holds EF05
and EF06, the PIN with its retry counter, the card-diversified keys and the
application's block flag in a :class:`ChipState`, which it writes to a JSON
file after every change (the card keeps its data between runs, like EEPROM).
Session state (selected application, current EF, challenge, authentication)
is lost on every power cycle, as on a real card.

With ``protocol="T=0"`` the card behaves as a T=0 card does at the APDU level:
answer data to a command that carried data or no Le comes through ``61xx``
and GET RESPONSE, and an Le that does not match the answer is refused with
``6Cxx``. With ``"T=1"`` the answer comes at once.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from protocols.apdu import GET_RESPONSE_INS, ApduDecodeError, CommandApdu
from protocols.sscard import (
    AID,
    CHALLENGE_SIZE,
    DEFAULT_PIN,
    FID_EF05,
    FID_EF06,
    FIELDS,
    KEY_ID_EXTERNAL_AUTH,
    SFI_EF05,
    SFI_EF06,
    CardAlgorithm,
    HolderData,
    IssuerData,
    SscardError,
    algorithm_for,
    decode_pin,
    decode_tlvs,
    encode_tlv,
)
from protocols.sscard import status as sw
from protocols.sscard.commands import (
    CLA_PROPRIETARY,
    CLA_SECURED,
    INS_APPLICATION_BLOCK,
    INS_APPLICATION_UNBLOCK,
    INS_CHANGE_PIN,
    INS_EXTERNAL_AUTHENTICATE,
    INS_GET_CHALLENGE,
    INS_PIN_RESET,
    INS_READ_RECORD,
    INS_SELECT,
    INS_UPDATE_RECORD,
    INS_VERIFY,
    P1_PIN_RESET,
    P1_PIN_UNLOCK,
)
from security.cardcrypto import (
    CardCryptoError,
    CardKeyPurpose,
    CardMasterKeys,
    decipher_pin,
    derive_card_keys,
    external_auth_cryptogram,
    verify_command_mac,
)

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "ATR_T0",
    "ATR_T1",
    "CardProtocol",
    "ChipState",
    "SimulatedCard",
    "atr_for",
]

CardProtocol = Literal["T=0", "T=1"]
Answer = tuple[bytes, int]

_HISTORICAL: Final = b"SSCARD"


def _tck(body: bytes) -> int:
    value = 0
    for byte in body:
        value ^= byte
    return value


#: ATR of a T=0 card: TS 3B, T0 = 06 (no interface bytes), 6 historical bytes.
ATR_T0: Final = bytes((0x3B, len(_HISTORICAL))) + _HISTORICAL
_T1_BODY: Final = bytes((0x80 | len(_HISTORICAL), 0x01)) + _HISTORICAL
#: ATR of a T=1 card: TS 3B, T0 = 86 (TD1 follows), TD1 = 01 (T=1), history, TCK.
ATR_T1: Final = b"\x3b" + _T1_BODY + bytes((_tck(_T1_BODY),))
_RETRY_CHOICES: Final = (3, 6)
_FILES: Final = {SFI_EF05: "ef05", SFI_EF06: "ef06"}
_FIDS: Final = {FID_EF05: SFI_EF05, FID_EF06: SFI_EF06}
_CURRENT_EF: Final = 0x04
_SW1_MORE: Final = 0x61
_SW1_WRONG_LE: Final = 0x6C


def atr_for(protocol: CardProtocol) -> bytes:
    """The ATR the simulated card answers for ``protocol``."""
    return ATR_T0 if protocol == "T=0" else ATR_T1


@dataclass(slots=True)
class ChipState:
    """What a card keeps between power cycles (its EEPROM), as JSON-ready values.

    Attributes:
        algorithm: ``"sm4"`` (3rd generation) or ``"3des"`` (2nd).
        protocol: ``"T=0"`` or ``"T=1"``.
        records: ``"ef05"``/``"ef06"`` → record number (decimal text) → TLV hex.
        keys: Card key purpose → diversified key hex.
        pin: The PIN digits.
        pin_is_default: The PIN is still the issuer's default.
        retries_max: Tries before the PIN locks (3 or 6).
        retries_left: Tries left.
        application_blocked: The application is blocked.
    """

    algorithm: CardAlgorithm
    protocol: CardProtocol
    records: dict[str, dict[str, str]]
    keys: dict[str, str] = field(repr=False)
    pin: str = field(repr=False)
    pin_is_default: bool
    retries_max: int
    retries_left: int
    application_blocked: bool = False

    def to_json(self) -> str:
        """Serialize for the card file."""
        return json.dumps(asdict(self), indent=2, sort_keys=True, ensure_ascii=True)

    @classmethod
    def from_json(cls, text: str) -> ChipState:
        """Load from the card file.

        Raises:
            ValueError: The file does not hold a card state.
        """
        data: Any = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("card file does not hold an object")  # noqa: TRY004 - bad file
        try:
            return cls(**data)
        except TypeError as exc:
            raise ValueError("card file has missing or unknown fields") from exc


@dataclass(slots=True)
class _Session:
    """What a power cycle forgets."""

    selected: bool = False
    current_sfi: int | None = None
    challenge: bytes | None = None
    authenticated: bool = False
    pending: bytes = b""
    pending_sw: int = sw.SW_OK


class SimulatedCard:
    """One social-security card: APDU bytes in, response bytes out.

    Build a new card with :meth:`issue`; load a saved one with :meth:`load`.
    """

    def __init__(
        self,
        state: ChipState,
        *,
        path: Path | None = None,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        """Wrap ``state``; with ``path``, save it there after every change."""
        if state.retries_max not in _RETRY_CHOICES:
            msg = f"retries_max must be one of {_RETRY_CHOICES}"
            raise ValueError(msg)
        self.state = state
        self.path = path
        self._random = random_bytes
        self._session = _Session()
        self.powered = False

    @classmethod
    def issue(  # noqa: PLR0913 - personalization data, all keyword-only
        cls,
        *,
        issuer: IssuerData,
        holder: HolderData,
        masters: CardMasterKeys,
        retries: int = 3,
        protocol: CardProtocol = "T=0",
        path: Path | None = None,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> SimulatedCard:
        """Personalize a new card: records, diversified keys, default PIN; save it.

        Raises:
            SscardError: A record value does not fit its field.
            ValueError: ``retries`` is not 3 or 6.
        """
        algorithm = algorithm_for(issuer.generation)
        keys = derive_card_keys(masters, issuer.card_id_code, algorithm)
        state = ChipState(
            algorithm=algorithm,
            protocol=protocol,
            records={
                "ef05": {str(k): v.hex() for k, v in issuer.to_records().items()},
                "ef06": {str(k): v.hex() for k, v in holder.to_records().items()},
            },
            keys={p.value: keys.for_purpose(p).hex() for p in CardKeyPurpose},
            pin=DEFAULT_PIN,
            pin_is_default=True,
            retries_max=retries,
            retries_left=retries,
        )
        card = cls(state, path=path, random_bytes=random_bytes)
        card.save()
        return card

    @classmethod
    def load(
        cls, path: Path, *, random_bytes: Callable[[int], bytes] = secrets.token_bytes
    ) -> SimulatedCard:
        """Load a card saved at ``path``.

        Raises:
            OSError: The file cannot be read.
            ValueError: It does not hold a card.
        """
        state = ChipState.from_json(path.read_text(encoding="utf-8"))
        return cls(state, path=path, random_bytes=random_bytes)

    def save(self) -> None:
        """Write the state to the card file atomically (no-op without a path)."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".card-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(self.state.to_json())
            Path(tmp).chmod(0o600)
            Path(tmp).replace(self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # ------------------------------------------------------------------ power

    @property
    def atr(self) -> bytes:
        """The answer to reset."""
        return atr_for(self.state.protocol)

    def power_on(self) -> None:
        """Power the card: a fresh session."""
        self.powered = True
        self._session = _Session()

    def power_off(self) -> None:
        """Remove power: the session is forgotten."""
        self.powered = False
        self._session = _Session()

    def reset(self) -> None:
        """Warm reset: a fresh session."""
        self.power_on()

    # --------------------------------------------------------------- dispatch

    def transmit(self, apdu: bytes) -> bytes:
        """Answer one command APDU (response data followed by SW1 SW2)."""
        try:
            command = CommandApdu.from_bytes(apdu)
        except ApduDecodeError:
            return sw.SW_WRONG_LENGTH.to_bytes(2, "big")
        if command.ins == GET_RESPONSE_INS and self.state.protocol == "T=0":
            data, status = self._get_response(command)
        else:
            self._session.pending = b""
            data, status = self._dispatch(command)
            if self.state.protocol == "T=0":
                data, status = self._t0_answer(command, data, status)
            elif command.le is None:
                data = b""
            else:
                data = data[: command.le]
        return data + status.to_bytes(2, "big")

    def _t0_answer(self, command: CommandApdu, data: bytes, status: int) -> Answer:
        if not data:
            return b"", status
        if command.data or command.le is None:
            self._session.pending = data
            self._session.pending_sw = status
            return b"", (_SW1_MORE << 8) | (min(len(data), 256) % 256)
        if command.le != len(data):
            return b"", (_SW1_WRONG_LE << 8) | (len(data) % 256)
        return data, status

    def _get_response(self, command: CommandApdu) -> Answer:
        pending = self._session.pending
        if not pending:
            return b"", sw.SW_CONDITIONS_NOT_SATISFIED
        wanted = command.le or 256
        if wanted > len(pending):
            return b"", (_SW1_WRONG_LE << 8) | (len(pending) % 256)
        chunk, rest = pending[:wanted], pending[wanted:]
        self._session.pending = rest
        if rest:
            return chunk, (_SW1_MORE << 8) | (min(len(rest), 256) % 256)
        return chunk, self._session.pending_sw

    def _dispatch(self, command: CommandApdu) -> Answer:
        key = (command.cla, command.ins)
        if key == (0x00, INS_SELECT):
            return self._select(command)
        if not self._session.selected:
            return b"", sw.SW_FILE_NOT_FOUND
        if self.state.application_blocked and key not in {
            (0x00, INS_GET_CHALLENGE),
            (CLA_SECURED, INS_APPLICATION_UNBLOCK),
        }:
            return b"", sw.SW_APPLICATION_BLOCKED
        handlers: dict[tuple[int, int], Callable[[CommandApdu], Answer]] = {
            (0x00, INS_READ_RECORD): self._read_record,
            (0x00, INS_UPDATE_RECORD): self._update_record,
            (0x00, INS_GET_CHALLENGE): self._get_challenge,
            (0x00, INS_EXTERNAL_AUTHENTICATE): self._external_authenticate,
            (0x00, INS_VERIFY): self._verify,
            (CLA_PROPRIETARY, INS_CHANGE_PIN): self._change_pin,
            (CLA_SECURED, INS_PIN_RESET): self._pin_reset,
            (CLA_SECURED, INS_APPLICATION_BLOCK): self._application_block,
            (CLA_SECURED, INS_APPLICATION_UNBLOCK): self._application_unblock,
        }
        handler = handlers.get(key)
        if handler is not None:
            return handler(command)
        if any(ins == command.ins for _, ins in handlers):
            return b"", sw.SW_CLA_NOT_SUPPORTED
        return b"", sw.SW_INS_NOT_SUPPORTED

    # ---------------------------------------------------------------- commands

    def _select(self, command: CommandApdu) -> Answer:
        if command.p1 == 0x04:  # noqa: PLR2004 - by name
            if command.data != AID:
                return b"", sw.SW_FILE_NOT_FOUND
            self._session = _Session(selected=True)
            fci = encode_tlv(0x6F, encode_tlv(0x84, AID) + encode_tlv(0xA5, b""))
            blocked = self.state.application_blocked
            return fci, sw.SW_SELECTED_BLOCKED if blocked else sw.SW_OK
        if command.p1 == 0x02:  # noqa: PLR2004 - EF by identifier
            if not self._session.selected:
                return b"", sw.SW_FILE_NOT_FOUND
            sfi = _FIDS.get(int.from_bytes(command.data, "big")) if len(command.data) == 2 else None  # noqa: PLR2004 - FID
            if sfi is None:
                return b"", sw.SW_FILE_NOT_FOUND
            self._session.current_sfi = sfi
            return b"", sw.SW_OK
        return b"", sw.SW_WRONG_P1P2

    def _target_sfi(self, p2: int) -> int | None:
        if p2 & 0x07 != _CURRENT_EF:
            return None
        sfi = p2 >> 3
        return self._session.current_sfi if sfi == 0 else sfi

    def _read_record(self, command: CommandApdu) -> Answer:
        if command.p2 & 0x07 != _CURRENT_EF:
            return b"", sw.SW_WRONG_P1P2
        sfi = self._target_sfi(command.p2)
        if sfi is None:
            return b"", sw.SW_NO_CURRENT_EF
        if sfi not in _FILES:
            return b"", sw.SW_FILE_NOT_FOUND
        self._session.current_sfi = sfi
        record = self.state.records[_FILES[sfi]].get(str(command.p1))
        if record is None:
            return b"", sw.SW_RECORD_NOT_FOUND
        return bytes.fromhex(record), sw.SW_OK

    def _update_record(self, command: CommandApdu) -> Answer:  # noqa: PLR0911 - one per SW
        if not self._session.authenticated:
            return b"", sw.SW_SECURITY_STATUS
        if command.p2 & 0x07 != _CURRENT_EF:
            return b"", sw.SW_WRONG_P1P2
        sfi = self._target_sfi(command.p2)
        if sfi is None:
            return b"", sw.SW_NO_CURRENT_EF
        if sfi not in _FILES:
            return b"", sw.SW_FILE_NOT_FOUND
        spec = FIELDS.get(command.p1)
        try:
            items = decode_tlvs(command.data)
        except SscardError:
            return b"", sw.SW_WRONG_DATA
        if (
            spec is None
            or spec.sfi != sfi
            or len(items) != 1
            or items[0][0] != command.p1
            or len(items[0][1]) != spec.length
        ):
            return b"", sw.SW_WRONG_DATA
        self.state.records[_FILES[sfi]][str(command.p1)] = command.data.hex()
        self.save()
        return b"", sw.SW_OK

    def _get_challenge(self, command: CommandApdu) -> Answer:
        if command.le not in {4, CHALLENGE_SIZE}:
            return b"", sw.SW_WRONG_LENGTH
        self._session.challenge = self._random(command.le)
        return self._session.challenge, sw.SW_OK

    def _take_challenge(self) -> bytes | None:
        challenge, self._session.challenge = self._session.challenge, None
        return challenge

    def _key(self, purpose: CardKeyPurpose) -> bytes:
        return bytes.fromhex(self.state.keys[purpose.value])

    def _external_authenticate(self, command: CommandApdu) -> Answer:
        if command.p2 != KEY_ID_EXTERNAL_AUTH:
            return b"", sw.SW_WRONG_P1P2
        challenge = self._take_challenge()
        if challenge is None or len(challenge) != CHALLENGE_SIZE:
            return b"", sw.SW_CONDITIONS_NOT_SATISFIED
        if len(command.data) != CHALLENGE_SIZE:
            return b"", sw.SW_WRONG_LENGTH
        expected = external_auth_cryptogram(
            self._key(CardKeyPurpose.EXTERNAL_AUTH), challenge, self.state.algorithm
        )
        if not secrets.compare_digest(expected, command.data):
            self._session.authenticated = False
            return b"", sw.SW_AUTHENTICATION_FAILED
        self._session.authenticated = True
        return b"", sw.SW_OK

    def _wrong_pin(self) -> Answer:
        self.state.retries_left = max(0, self.state.retries_left - 1)
        self.save()
        return b"", sw.wrong_pin_sw(self.state.retries_left)

    def _verify(self, command: CommandApdu) -> Answer:
        if not command.data:  # ISO/IEC 7816-4: the tries left, none used
            left = self.state.retries_left
            return b"", sw.wrong_pin_sw(left) if left else sw.SW_PIN_BLOCKED
        pin = decode_pin(command.data)
        if pin is None:
            return b"", sw.SW_WRONG_DATA
        if self.state.retries_left == 0:
            return b"", sw.SW_PIN_BLOCKED
        if not secrets.compare_digest(pin, self.state.pin):
            return self._wrong_pin()
        if self.state.pin_is_default:
            return b"", sw.SW_CONDITIONS_NOT_SATISFIED
        self._refill()
        return b"", sw.SW_OK

    def _refill(self) -> None:
        if self.state.retries_left != self.state.retries_max:
            self.state.retries_left = self.state.retries_max
            self.save()

    def _change_pin(self, command: CommandApdu) -> Answer:
        if command.p1 != 0x01 or command.p2 != 0x00:
            return b"", sw.SW_WRONG_P1P2
        old_raw, sep, new_raw = command.data.partition(b"\xff")
        old, new = decode_pin(old_raw), decode_pin(new_raw)
        if not sep or old is None or new is None:
            return b"", sw.SW_WRONG_DATA
        if self.state.retries_left == 0:
            return b"", sw.SW_PIN_BLOCKED
        if not secrets.compare_digest(old, self.state.pin):
            return self._wrong_pin()
        if new == DEFAULT_PIN:
            return b"", sw.SW_WRONG_DATA
        self._set_pin(new)
        return b"", sw.SW_OK

    def _set_pin(self, pin: str) -> None:
        self.state.pin = pin
        self.state.pin_is_default = False
        self.state.retries_left = self.state.retries_max
        self.save()

    def _secured(self, command: CommandApdu, purpose: CardKeyPurpose) -> int | None:
        """Check a secured command's MAC; ``None`` when good, else the status word."""
        challenge = self._take_challenge()
        if challenge is None:
            return sw.SW_CONDITIONS_NOT_SATISFIED
        if not verify_command_mac(self._key(purpose), challenge, command, self.state.algorithm):
            return sw.SW_SM_INCORRECT
        return None

    def _pin_reset(self, command: CommandApdu) -> Answer:
        if command.p2 != 0x00 or command.p1 not in {P1_PIN_RESET, P1_PIN_UNLOCK}:
            return b"", sw.SW_WRONG_P1P2
        if command.p1 == P1_PIN_UNLOCK:
            refused = self._secured(command, CardKeyPurpose.PIN_UNLOCK)
            if refused is not None:
                return b"", refused
            self._refill()
            return b"", sw.SW_OK
        refused = self._secured(command, CardKeyPurpose.PIN_RESET)
        if refused is not None:
            return b"", refused
        return self._reload_pin(command.data[:-4])

    def _reload_pin(self, enciphered: bytes) -> Answer:
        try:
            pin = decipher_pin(
                self._key(CardKeyPurpose.PIN_RESET), enciphered, self.state.algorithm
            )
        except CardCryptoError:
            return b"", sw.SW_WRONG_DATA
        if pin == DEFAULT_PIN:
            return b"", sw.SW_WRONG_DATA
        self._set_pin(pin)
        return b"", sw.SW_OK

    def _application_block(self, command: CommandApdu) -> Answer:
        refused = self._secured(command, CardKeyPurpose.APP_MAINTENANCE)
        if refused is not None:
            return b"", refused
        self.state.application_blocked = True
        self.save()
        return b"", sw.SW_OK

    def _application_unblock(self, command: CommandApdu) -> Answer:
        refused = self._secured(command, CardKeyPurpose.APP_MAINTENANCE)
        if refused is not None:
            return b"", refused
        self.state.application_blocked = False
        self.save()
        return b"", sw.SW_OK
