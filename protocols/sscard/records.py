"""The card's two data files, EF05 (issuer) and EF06 (holder), one TLV per record.

Record number ``rr`` of either file holds exactly one TLV whose tag is ``rr``
(READ RECORD ``00 B2 07 2C`` answers ``07 09 <card number>``). Field table
(LD/T 32.6 as public integrator code shows it; lengths are value lengths)::

    file  SFI tag len kind  field                          dictionary
    ----  --- --- --- ----  -----------------------------  ----------
    EF05   5  01  16  bin   card identification code 卡识别码  AAZ501
    EF05   5  03   4  ascii spec version ("3.00", "2.00")
    EF05   5  05   4  bcd   issue date YYYYMMDD
    EF05   5  06   4  bcd   expiry date YYYYMMDD
    EF05   5  07   9  ascii card number                    AAZ500
    EF06   6  08  18  ascii social security number         AAC002
    EF06   6  09  30  gbk   name (00-padded)               AAC003
    EF06   6  0A   1  ascii sex (GB/T 2261.1: 1, 2, 0, 9)
    EF06   6  0B   1  bcd   ethnicity (GB 3304, "01".."58")
    EF06   6  0D   4  bcd   birth date YYYYMMDD
    EF06   6  4E  20  gbk   name extension (3rd generation only)

The card identification code is kept as 32 upper-case hex digits; its first
six are the issuing region code (AAB301). The spec version's major digit
gives the card generation: ``3`` uses SM4, ``2`` (and ``1``) 3DES.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Final, Literal

from protocols.sscard.errors import SscardDecodeError, SscardEncodeError
from protocols.sscard.tlv import decode_tlvs, encode_tlv

__all__ = [
    "EF05_FIELDS",
    "EF06_FIELDS",
    "FIELDS",
    "SFI_EF05",
    "SFI_EF06",
    "CardAlgorithm",
    "CardGeneration",
    "FieldKind",
    "FieldSpec",
    "HolderData",
    "IssuerData",
    "algorithm_for",
    "decode_field",
    "encode_field",
    "generation_from_version",
]

CardAlgorithm = Literal["sm4", "3des"]
FieldKind = Literal["bin", "ascii", "bcd", "gbk"]

#: Short file identifier of EF05, the issuer file.
SFI_EF05: Final = 5
#: Short file identifier of EF06, the holder file.
SFI_EF06: Final = 6
_GBK_PADDING: Final = b"\x00\x20\xff"


class CardGeneration(enum.IntEnum):
    """Card generation, from the spec version record (EF05 tag 03)."""

    SECOND = 2
    THIRD = 3


def generation_from_version(version: str) -> CardGeneration:
    """Card generation from the spec version: ``"3.00"`` → third, ``"2.00"`` → second.

    Raises:
        SscardDecodeError: The version is not ``d.dd`` with a major of 1, 2 or 3.
    """
    major, dot, minor = version.partition(".")
    if not (dot and major.isdigit() and minor.isdigit() and len(major) == 1):
        raise SscardDecodeError("spec version is not d.dd", 0x03)
    if major == "3":
        return CardGeneration.THIRD
    if major in {"1", "2"}:
        return CardGeneration.SECOND
    raise SscardDecodeError("unknown card generation", 0x03)


def algorithm_for(generation: CardGeneration) -> CardAlgorithm:
    """The card-key algorithm of a generation: SM4 for the third, 3DES before."""
    return "sm4" if generation is CardGeneration.THIRD else "3des"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One record of EF05 or EF06 (see the module's table).

    Attributes:
        tag: TLV tag, also the record number.
        sfi: Short file identifier of the file holding it.
        length: Value length in bytes (the maximum for ``gbk``).
        kind: ``bin``, ``ascii``, ``bcd`` or ``gbk``.
        name: Attribute name in :class:`IssuerData`/:class:`HolderData`.
    """

    tag: int
    sfi: int
    length: int
    kind: FieldKind
    name: str


EF05_FIELDS: Final = (
    FieldSpec(0x01, SFI_EF05, 16, "bin", "card_id_code"),
    FieldSpec(0x03, SFI_EF05, 4, "ascii", "spec_version"),
    FieldSpec(0x05, SFI_EF05, 4, "bcd", "issue_date"),
    FieldSpec(0x06, SFI_EF05, 4, "bcd", "expiry_date"),
    FieldSpec(0x07, SFI_EF05, 9, "ascii", "card_number"),
)
EF06_FIELDS: Final = (
    FieldSpec(0x08, SFI_EF06, 18, "ascii", "ssn"),
    FieldSpec(0x09, SFI_EF06, 30, "gbk", "name"),
    FieldSpec(0x0A, SFI_EF06, 1, "ascii", "sex"),
    FieldSpec(0x0B, SFI_EF06, 1, "bcd", "ethnicity"),
    FieldSpec(0x0D, SFI_EF06, 4, "bcd", "birth_date"),
    FieldSpec(0x4E, SFI_EF06, 20, "gbk", "name_extension"),
)
#: Every field by tag.
FIELDS: Final = {spec.tag: spec for spec in (*EF05_FIELDS, *EF06_FIELDS)}

FieldValue = str | dt.date


def _bcd_digits(raw: bytes, tag: int) -> str:
    text = raw.hex()
    if not text.isdigit():
        raise SscardDecodeError("BCD field holds a non-digit", tag)
    return text


def _raw_value(spec: FieldSpec, value: str) -> bytes:
    raw: bytes
    if spec.kind == "bin":
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise SscardEncodeError(spec.name, "must be hex digits") from None
    elif spec.kind == "bcd":
        if not value.isdigit() or not value.isascii() or len(value) != 2 * spec.length:
            raise SscardEncodeError(spec.name, f"must be {2 * spec.length} digits")
        raw = bytes.fromhex(value)
    elif spec.kind == "ascii":
        if not value.isascii() or not value.isprintable():
            raise SscardEncodeError(spec.name, "must be printable ASCII")
        raw = value.encode("ascii")
    else:
        try:
            raw = value.encode("gbk")
        except UnicodeEncodeError:
            raise SscardEncodeError(spec.name, "has a character outside GBK") from None
        if not raw or len(raw) > spec.length:
            raise SscardEncodeError(spec.name, f"must be 1..{spec.length} bytes in GBK")
        raw = raw.ljust(spec.length, b"\x00")
    return raw


def encode_field(spec: FieldSpec, value: FieldValue) -> bytes:
    """Encode one field's value as its record (a TLV).

    Dates are ``datetime.date``; ``bin`` fields are hex text; ``bcd`` text
    fields are digits; ``gbk`` text is right-padded with ``00``.

    Raises:
        SscardEncodeError: The value does not fit the field.
    """
    if isinstance(value, dt.date):
        if spec.kind != "bcd" or spec.length != 4:  # noqa: PLR2004 - YYYYMMDD
            raise SscardEncodeError(spec.name, "not a date field")
        # Not strftime: "%Y" is not zero-padded below year 1000 on every platform.
        value = f"{value.year:04d}{value.month:02d}{value.day:02d}"
    raw = _raw_value(spec, value)
    if len(raw) != spec.length:
        raise SscardEncodeError(spec.name, f"must be {spec.length} bytes")
    return encode_tlv(spec.tag, raw)


def decode_field(spec: FieldSpec, value: bytes) -> FieldValue:
    """Decode one field's TLV value.

    Raises:
        SscardDecodeError: Wrong length, bad digits, bad date or bad text.
    """
    if len(value) != spec.length:
        raise SscardDecodeError(f"value must be {spec.length} bytes", spec.tag)
    if spec.kind == "bin":
        return value.hex().upper()
    if spec.kind == "bcd":
        digits = _bcd_digits(value, spec.tag)
        if spec.length != 4:  # noqa: PLR2004 - YYYYMMDD
            return digits
        try:
            return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
        except ValueError:
            raise SscardDecodeError("not a calendar date", spec.tag) from None
    if spec.kind == "ascii":
        # What the encoder writes, and nothing else: a control byte would not encode again.
        if not value.isascii() or not value.decode("ascii").isprintable():
            raise SscardDecodeError("not printable ASCII", spec.tag)
        return value.decode("ascii")
    try:
        text = value.rstrip(_GBK_PADDING).decode("gbk")
    except UnicodeDecodeError:
        raise SscardDecodeError("not GBK", spec.tag) from None
    if not text:
        raise SscardDecodeError("empty name", spec.tag)
    return text


def _decode_record(spec: FieldSpec, record: bytes) -> FieldValue:
    items = decode_tlvs(record)
    if len(items) != 1 or items[0][0] != spec.tag:
        raise SscardDecodeError("record does not hold its one TLV", spec.tag)
    return decode_field(spec, items[0][1])


def _text(value: FieldValue, tag: int) -> str:
    if not isinstance(value, str):
        raise SscardDecodeError("expected text", tag)
    return value


def _date(value: FieldValue, tag: int) -> dt.date:
    if not isinstance(value, dt.date):
        raise SscardDecodeError("expected a date", tag)
    return value


@dataclass(frozen=True, slots=True)
class IssuerData:
    """EF05, the issuer file.

    Attributes:
        card_id_code: Card identification code (AAZ501), 32 hex digits.
        spec_version: Spec version, ``"3.00"`` on third-generation cards.
        issue_date: Issue date.
        expiry_date: Expiry date.
        card_number: Card number (AAZ500), 9 characters.
    """

    card_id_code: str
    spec_version: str
    issue_date: dt.date
    expiry_date: dt.date
    card_number: str

    @property
    def region(self) -> str:
        """The issuing region code (AAB301): the first six digits of the card id code."""
        return self.card_id_code[:6]

    @property
    def generation(self) -> CardGeneration:
        """The card generation from the spec version."""
        return generation_from_version(self.spec_version)

    def to_records(self) -> dict[int, bytes]:
        """Every record: record number → TLV bytes.

        Raises:
            SscardEncodeError: A value does not fit its field.
        """
        return {spec.tag: encode_field(spec, getattr(self, spec.name)) for spec in EF05_FIELDS}

    @classmethod
    def from_records(cls, records: dict[int, bytes]) -> IssuerData:
        """Build from records read from the card (record number → record bytes).

        Raises:
            SscardDecodeError: A record is missing or malformed.
        """
        values: dict[str, FieldValue] = {}
        for spec in EF05_FIELDS:
            if spec.tag not in records:
                raise SscardDecodeError("record missing", spec.tag)
            values[spec.name] = _decode_record(spec, records[spec.tag])
        return cls(
            card_id_code=_text(values["card_id_code"], 0x01),
            spec_version=_text(values["spec_version"], 0x03),
            issue_date=_date(values["issue_date"], 0x05),
            expiry_date=_date(values["expiry_date"], 0x06),
            card_number=_text(values["card_number"], 0x07),
        )


@dataclass(frozen=True, slots=True)
class HolderData:
    """EF06, the holder file.

    Attributes:
        ssn: Social security number (AAC002), 18 characters.
        name: Name (AAC003), at most 30 bytes in GBK.
        sex: Sex code, one character.
        ethnicity: Ethnicity code, two digits.
        birth_date: Birth date.
        name_extension: Name extension (3rd generation), at most 20 bytes in GBK.
    """

    ssn: str
    name: str
    sex: str
    ethnicity: str
    birth_date: dt.date
    name_extension: str | None = None

    def to_records(self) -> dict[int, bytes]:
        """Every record present: record number → TLV bytes.

        Raises:
            SscardEncodeError: A value does not fit its field.
        """
        records: dict[int, bytes] = {}
        for spec in EF06_FIELDS:
            value = getattr(self, spec.name)
            if value is not None:
                records[spec.tag] = encode_field(spec, value)
        return records

    @classmethod
    def from_records(cls, records: dict[int, bytes]) -> HolderData:
        """Build from records read from the card; the name extension may be absent.

        Raises:
            SscardDecodeError: A required record is missing or a record is malformed.
        """
        values: dict[str, FieldValue] = {}
        for spec in EF06_FIELDS:
            if spec.tag in records:
                values[spec.name] = _decode_record(spec, records[spec.tag])
            elif spec.name != "name_extension":
                raise SscardDecodeError("record missing", spec.tag)
        extension = values.get("name_extension")
        return cls(
            ssn=_text(values["ssn"], 0x08),
            name=_text(values["name"], 0x09),
            sex=_text(values["sex"], 0x0A),
            ethnicity=_text(values["ethnicity"], 0x0B),
            birth_date=_date(values["birth_date"], 0x0D),
            name_extension=None if extension is None else _text(extension, 0x4E),
        )
