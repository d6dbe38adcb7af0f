"""Every decoder in ``protocols/``: how to feed it bytes, its own errors, how to re-encode.

The contract (issue 16, and each ``docs/protocols/*.md``): on *any* input a
decoder returns a value or raises only its own documented error type, and what
it returns encodes again with the matching encoder (where the codec is exact,
the encoding decodes back to an equal value). :data:`DECODERS` is one row per
decoder; :func:`run` judges one input against a row and raises
:class:`Breach` when the contract does not hold.

Inputs: every row has a seed corpus of valid encodings and mutators that
change them (bytes, JSON values, XML markup). :meth:`Decoder.mutate` makes one
input from an integer, so the Hypothesis test (``tests/protocols/test_decoder_fuzz.py``)
and the benchmark (``bench/fuzz.py``) draw the same kinds of input. Decoders
of text (a topic, a reply text) and of mappings (RPC arguments, record sets)
get theirs built from bytes as the row's ``decode`` says.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from protocols.apdu import ApduError, CommandApdu, ResponseApdu, T0Exchange
from protocols.bank import BANK_DIALECT
from protocols.envelope import Envelope, EnvelopeError, EnvelopeHeader
from protocols.mqtt import (
    ApplicationsReport,
    AuditCheckpoint,
    BranchTopics,
    CertificatesReport,
    DeviceKind,
    DeviceState,
    DeviceStatus,
    FeederLevel,
    Levels,
    MqttProtocolError,
    OutboxReport,
    ParsedTopic,
    Presence,
    PresenceState,
    ProductionReport,
    QueuesReport,
    RpcError,
    RpcRequest,
    RpcResponse,
    StockReport,
    decode_report,
    parse_topic,
    rpc,
)
from protocols.mqtt.reports import CertificateEntry, FeederStock, HourCount
from protocols.pinpad import (
    Command,
    EntryParams,
    KeyAlgorithm,
    KeyEvent,
    LoadKeyParams,
    PadInfo,
    PadMessageDecoder,
    PinPadClient,
    PinPadCodecError,
    Prompt,
    Status,
    decode_frame,
    encode_frame,
    parse_info,
    parse_kcv,
    parse_pin,
    parse_show,
)
from protocols.pinpad import Reply as PadReply
from protocols.pinpad import Request as PadRequest
from protocols.pinpad import RequestDecoder as PadRequestDecoder
from protocols.pinpad.commands import EncipheredPin, abort, read_pin, show
from protocols.pinpad.decoder import NEED_DATA as PAD_NEED_DATA
from protocols.pinpad.decoder import BadRequest, Discarded
from protocols.pinpad.state import Completed as PadCompleted
from protocols.pinpad.state import Unsolicited as PadUnsolicited
from protocols.platform import JSON_DIALECT, SOAP_DIALECT, MessageDecodeError
from protocols.platform import Request as PlatformRequest
from protocols.platform import Result as PlatformResult
from protocols.platform import Status as Outcome
from protocols.platform.peers import (
    PeerKey,
    PeerKeysDecodeError,
    decode_peer_keys,
    encode_peer_keys,
)
from protocols.printer import (
    Ack,
    CardPosition,
    Depth,
    Nack,
    Panel,
    PrinterClient,
    PrinterProtocolError,
    PrinterStatus,
    ReplyDecoder,
    RequestDecoder,
    TextReply,
    commands,
    panel_size,
    parse_status,
    status_requests,
)
from protocols.printer import Request as PrinterRequest
from protocols.printer.decoder import NEED_DATA as PRINTER_NEED_DATA
from protocols.printer.decoder import Discarded as PrinterDiscarded
from protocols.printer.state import Completed, Unsolicited
from protocols.sscard import (
    EF05_FIELDS,
    EF06_FIELDS,
    FIELDS,
    HolderData,
    IssuerData,
    SscardError,
    check,
    decode_field,
    decode_pin,
    decode_tlvs,
    encode_field,
    encode_pin,
    encode_tlv,
    generation_from_version,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from protocols.platform import Codec

__all__ = ["DECODERS", "Breach", "Decoder", "Mutator", "run"]

#: How many times a seed is mutated for one input (the seed itself now and then).
_MUTATION_COUNTS: Final = (0, 1, 1, 1, 1, 2, 2, 3, 4, 6)
#: Raw random inputs are at most this long (Hypothesis draws its own).
MAX_RANDOM_SIZE: Final = 512

#: Changes one input (a seed, or what an earlier mutator made of it) using ``rng``.
Mutator: TypeAlias = "Callable[[random.Random, bytes, Decoder], bytes]"


# --------------------------------------------------------------------- the row
@dataclass(frozen=True, slots=True)
class Decoder:
    """One decoder: how to feed it bytes, its own errors, and how to re-encode.

    Attributes:
        name: The decoder, as its module path says it (``apdu.CommandApdu.from_bytes``).
        decode: Decodes one input (bytes; text and mapping decoders get theirs built
            from the bytes here) and returns what the decoder returned.
        errors: The decoder's own documented error types; ``()`` for the incremental
            decoders, which never raise on received bytes.
        reencode: Encodes what ``decode`` returned with the matching encoder; raises
            (``AssertionError`` too, when an exact codec does not decode back) on failure.
        seeds: Valid encodings the mutators start from.
        mutators: Ways of changing a seed (:func:`mutate_bytes` for every row).
        tokens: Byte strings worth inserting (delimiters, keywords).
        vocabulary: Strings worth putting into JSON or XML (keys, enum values).
    """

    name: str
    decode: Callable[[bytes], object]
    errors: tuple[type[Exception], ...]
    reencode: Callable[[Any], object]
    seeds: tuple[bytes, ...]
    mutators: tuple[Mutator, ...] = ()
    tokens: tuple[bytes, ...] = ()
    vocabulary: tuple[str, ...] = field(default=())

    def mutate(self, seed: int) -> bytes:
        """One input made from ``seed``: a mutated seed, or now and then random bytes."""
        rng = random.Random(seed)
        if rng.random() < 0.1:
            return rng.randbytes(rng.randrange(MAX_RANDOM_SIZE))
        data = rng.choice(self.seeds)
        mutators = (mutate_bytes, *self.mutators)
        for _ in range(rng.choice(_MUTATION_COUNTS)):
            data = rng.choice(mutators)(rng, data, self)
        return data


class Breach(Exception):  # noqa: N818 - a contract breach, not an error of the code under test
    """A decoder broke its contract on one input.

    Attributes:
        decoder: The row's name.
        data: The input.
        stage: ``"decode"`` (a foreign exception escaped) or ``"re-encode"``.
        error: What was raised.
    """

    def __init__(self, decoder: str, data: bytes, stage: str, error: BaseException) -> None:
        """Record what broke and where."""
        super().__init__(
            f"{decoder}: {stage} raised {type(error).__name__}: {error} on input {data.hex()}"
        )
        self.decoder = decoder
        self.data = data
        self.stage = stage
        self.error = error


def run(decoder: Decoder, data: bytes) -> bool:
    """Feed ``data`` to ``decoder``: True if it decoded (and re-encoded), False if refused.

    Raises:
        Breach: Something other than the decoder's own errors escaped, or what it
            decoded does not encode again.
    """
    try:
        value = decoder.decode(data)
    except decoder.errors:
        return False
    except Exception as exc:
        raise Breach(decoder.name, data, "decode", exc) from exc
    try:
        decoder.reencode(value)
    except Exception as exc:
        raise Breach(decoder.name, data, "re-encode", exc) from exc
    return True


# --------------------------------------------------------------- the mutators
_INTERESTING_BYTES: Final = (0x00, 0x01, 0x02, 0x03, 0x06, 0x0D, 0x15, 0x1B, 0x20, 0x7F, 0x80, 0xFF)


def mutate_bytes(rng: random.Random, data: bytes, decoder: Decoder) -> bytes:
    """Flip, set, insert, delete, duplicate, truncate or splice bytes; insert a token."""
    buf = bytearray(data)
    pos = rng.randrange(len(buf) + 1)
    end = min(len(buf), pos + rng.choice((1, 2, 4, 8, 64)))
    match rng.randrange(9):
        case 0 if buf:
            buf[pos % len(buf)] ^= 1 << rng.randrange(8)
        case 1 if buf:
            buf[pos % len(buf)] = (
                rng.choice(_INTERESTING_BYTES) if rng.random() < 0.5 else rng.randrange(256)
            )
        case 2:
            buf[pos:pos] = rng.randbytes(rng.choice((1, 2, 3, 8)))
        case 3:
            del buf[pos:end]
        case 4:
            buf[pos:pos] = buf[pos:end] * rng.choice((1, 2, 16))
        case 5 if decoder.tokens:
            buf[pos:pos] = rng.choice(decoder.tokens)
        case 6:
            del buf[pos:]
        case 7:
            other = rng.choice(decoder.seeds)
            start = rng.randrange(len(other) + 1)
            buf[pos:end] = other[start : start + rng.randrange(1, 64)]
        case _:
            if buf:  # a length or count field off by one
                i = pos % len(buf)
                buf[i] = (buf[i] + rng.choice((1, -1, 0x7F, 0x80))) % 256
    return bytes(buf)


# Literal JSON the standard encoder never writes; placed through placeholders.
_RAW_NUMBERS: Final = (
    "1e400",
    "-1e400",
    "1E+999",
    "NaN",
    "-Infinity",
    "1" * 5000,
    "1" + "0" * 400,
    "-" + "9" * 400,
    "-0",
    "0.1e-400",
)
_RAW_JSON: Final = (
    *_RAW_NUMBERS,
    "[" * 3000 + "]" * 3000,
    '"\\ud800"',
    '"\\udfff\\ud800"',
    '"\\ud83d\\ude00"',
    '"\\u0000"',
)
_TEXT_ALPHABET: Final = (
    "a",
    "Z",
    "0",
    "9",
    "-",
    "_",
    ".",
    "/",
    "+",
    "#",
    ";",
    " ",
    "\r",
    "\x00",
    "\x7f",
    "\u00e9",
    "中",
    "\ufffd",
    "\ud800",
    "\udc80",
    "\udfff",
    "\U0001f600",
)


def _text(rng: random.Random, decoder: Decoder) -> str:
    if decoder.vocabulary and rng.random() < 0.5:
        word = rng.choice(decoder.vocabulary)
        return word if rng.random() < 0.7 else word + rng.choice(_TEXT_ALPHABET)
    size = rng.choice((0, 1, 2, 5, 12, 64, 65, 201, 300))
    return "".join(rng.choice(_TEXT_ALPHABET) for _ in range(size))


def _json_value(rng: random.Random, decoder: Decoder, raws: list[str], depth: int = 0) -> object:  # noqa: PLR0911 - one case per kind
    kind = rng.randrange(10 if depth < 2 else 8)
    if kind <= 2:
        return _text(rng, decoder)
    if kind == 3:
        return rng.choice((0, 1, 2, -1, 7, 48, 64, 65, 255, 256, 2**31, 2**63, -(2**63), 10**20))
    if kind == 4:
        return rng.choice((0.5, -0.0, 1.5, 1e308, -1e-300, 30.0))
    if kind == 5:
        return rng.choice((True, False, None))
    if kind in (6, 7):
        raws.append(rng.choice(_RAW_JSON))
        return f"@@RAW{len(raws) - 1}@@"
    if kind == 8:
        return [_json_value(rng, decoder, raws, depth + 1) for _ in range(rng.randrange(4))]
    return {
        _text(rng, decoder): _json_value(rng, decoder, raws, depth + 1)
        for _ in range(rng.randrange(4))
    }


def _mutate_dict(
    rng: random.Random, node: dict[str, object], decoder: Decoder, raws: list[str]
) -> object:
    key = rng.choice(list(node))
    copy = dict(node)
    match rng.randrange(10):
        case 0:
            del copy[key]
        case 1:
            copy[_text(rng, decoder)] = copy.pop(key)
        case 2:
            copy[_text(rng, decoder)] = _json_value(rng, decoder, raws)
        case _:  # mostly deeper: that is where the checks are
            copy[key] = _mutate_json_node(rng, node[key], decoder, raws)
    return copy


def _mutate_list(
    rng: random.Random, node: list[object], decoder: Decoder, raws: list[str]
) -> object:
    i = rng.randrange(len(node))
    items = list(node)
    match rng.randrange(8):
        case 0:
            del items[i]
        case 1:
            items.insert(i, items[i])
        case _:
            items[i] = _mutate_json_node(rng, node[i], decoder, raws)
    return items


def _mutate_json_node(
    rng: random.Random, node: object, decoder: Decoder, raws: list[str]
) -> object:
    """``node`` with one change somewhere inside it; leaves mostly keep their type."""
    if isinstance(node, dict) and node and rng.random() < 0.9:
        return _mutate_dict(rng, node, decoder, raws)
    if isinstance(node, list) and node and rng.random() < 0.9:
        return _mutate_list(rng, node, decoder, raws)
    if isinstance(node, int | float) and not isinstance(node, bool) and rng.random() < 0.6:
        if rng.random() < 0.5:
            raws.append(rng.choice(_RAW_NUMBERS))
            return f"@@RAW{len(raws) - 1}@@"
        return rng.choice((0, -1, 1, 2**31, 2**63, 10**20, 0.5, -0.0, 1e308))
    if isinstance(node, str) and rng.random() < 0.6:
        return _text(rng, decoder)
    return _json_value(rng, decoder, raws)


def mutate_json(rng: random.Random, data: bytes, decoder: Decoder) -> bytes:
    """Change values, keys and items of a JSON document; write it back some way or other.

    Values include lone surrogates, numbers beyond a float, ``NaN``, digits past
    the integer limit and deep nesting; the text is written with ASCII escapes,
    as UTF-8 (lone surrogates as their three bytes), or now and then as UTF-16.
    """
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return mutate_bytes(rng, data, decoder)
    raws: list[str] = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        document = _mutate_json_node(rng, document, decoder, raws)
    text = json.dumps(document, ensure_ascii=rng.random() < 0.5)
    for i, raw in enumerate(raws):
        text = text.replace(f'"@@RAW{i}@@"', raw)
    if rng.random() < 0.05:
        return text.encode("utf-16", "surrogatepass")
    return text.encode("utf-8", "surrogatepass")


_ENCODINGS: Final = (
    "utf-8",
    "UTF-8",
    "x-nope",
    "",
    "hex",
    "rot13",
    "base64",
    "zlib",
    "bz2",
    "uu",
    "quopri",
    "undefined",
    "mbcs",
    "oem",
    "utf-7",
    "utf-16",
    "utf-32",
    "gbk",
    "GB2312",
    "gb18030",
    "big5",
    "latin-1",
    "cp037",
    "cp1252",
    "koi8-r",
    "mac-roman",
    "unicode_escape",
    "raw_unicode_escape",
    "idna",
    "punycode",
    "ascii",
    "utf-8-sig",
    "iso2022_jp",
    "palmos",
    "cp65001",
)
_XML_INSERTS: Final = (
    "&#xD800;",
    "&#13;",
    "&#xD;&#xA;",
    "&#9;",
    "&#0;",
    "&#x1;",
    "&#x1F600;",
    "&#x110000;",
    "&amp;",
    "&lt;",
    "&bogus;",
    "\r\n",
    "\t",
    "中文",
    "]]>",
    "<!--x-->",
    "<![CDATA[x]]>",
    "<!DOCTYPE x>",
    "<?pi x?>",
    "<x/>",
    "<data><AAC002>1</AAC002></data>",
    ' xmlns="urn:x"',
    "\x00",
    "\udc80",
)
_XML_DECLARATION: Final = re.compile(r"<\?xml[^>]*\?>")
_XML_TAG: Final = re.compile(r"</?([A-Za-z_][\w:.-]*)")
_XML_ATTRIBUTE: Final = re.compile(r'([\w:]+)="([^"]*)"')
_XML_ELEMENT: Final = re.compile(r"<([A-Za-z_][\w:.-]*)[^>]*>[^<]*</\1>")


def mutate_xml_encoding(rng: random.Random, data: bytes, decoder: Decoder) -> bytes:
    """Declare an odd encoding (unknown, not a text codec, multi-byte...), now and then use it."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return mutate_bytes(rng, data, decoder)
    encoding = rng.choice(_ENCODINGS)
    text = f'<?xml version="1.0" encoding="{encoding}"?>' + _XML_DECLARATION.sub("", text, count=1)
    if rng.random() < 0.3:
        try:
            return text.encode(encoding)
        except (LookupError, ValueError, TypeError):
            pass
    return text.encode("utf-8", "surrogatepass")


def _xml_insert(rng: random.Random, text: str, _decoder: Decoder) -> str:
    """A reference, markup or odd characters where text goes."""
    at = rng.choice([m.end() for m in re.finditer(">", text)] or [0])
    return text[:at] + rng.choice(_XML_INSERTS) + text[at:]


def _xml_rename(rng: random.Random, text: str, decoder: Decoder) -> str:
    """Rename one tag (an open or a close one alone: often no longer well-formed)."""
    tags = list(_XML_TAG.finditer(text))
    if not tags:
        return text
    tag = rng.choice(tags)
    name = rng.choice(decoder.vocabulary) if decoder.vocabulary else "x"
    return text[: tag.start(1)] + name + text[tag.end(1) :]


def _xml_attribute(rng: random.Random, text: str, decoder: Decoder) -> str:
    """Another value for one attribute."""
    attributes = list(_XML_ATTRIBUTE.finditer(text))
    if not attributes:
        return text
    attribute = rng.choice(attributes)
    value = _text(rng, decoder).replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return text[: attribute.start(2)] + value + text[attribute.end(2) :]


def _xml_repeat(rng: random.Random, text: str, _decoder: Decoder) -> str:
    """Drop an element, or repeat it."""
    elements = list(_XML_ELEMENT.finditer(text))
    if not elements:
        return text
    element = rng.choice(elements)
    repeat = element.group(0) * rng.choice((0, 2, 3))
    return text[: element.start()] + repeat + text[element.end() :]


def _xml_retext(rng: random.Random, text: str, decoder: Decoder) -> str:
    """Other text in an element."""
    elements = list(_XML_ELEMENT.finditer(text))
    if not elements:
        return text
    element = rng.choice(elements)
    inner = text.index(">", element.start()) + 1
    close = element.end() - len(element.group(1)) - 3
    value = _text(rng, decoder).replace("&", "&amp;").replace("<", "&lt;")
    return text[:inner] + value + text[close:]


_XML_CHANGES: Final = (_xml_insert, _xml_rename, _xml_attribute, _xml_repeat, _xml_retext)


def mutate_xml(rng: random.Random, data: bytes, decoder: Decoder) -> bytes:
    """Change an XML document's markup, names, attributes or text."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return mutate_bytes(rng, data, decoder)
    return rng.choice(_XML_CHANGES)(rng, text, decoder).encode("utf-8", "surrogatepass")


# ------------------------------------------------------------------ helpers
def _same(decoded: object, again: object) -> None:
    if decoded != again:
        msg = f"decodes back to {again!r}, not {decoded!r}"
        raise AssertionError(msg)


def _text_of(data: bytes) -> str:
    """Text built from bytes: UTF-8, undecodable bytes as lone surrogates."""
    return data.decode("utf-8", "surrogateescape")


def _chunks(data: bytes) -> list[bytes]:
    """Length-prefixed chunks: ``n`` then ``n`` bytes, repeated; the rest is the last one."""
    chunks, pos = [], 0
    while pos < len(data):
        size = data[pos]
        chunks.append(data[pos + 1 : pos + 1 + size])
        pos += 1 + size
    return chunks


def _prefixed(*chunks: bytes) -> bytes:
    return b"".join(bytes((len(chunk),)) + chunk for chunk in chunks)


def _pieces(data: bytes) -> list[bytes]:
    """Stream pieces of 1, 2, 7, 64 and the rest bytes, in turn (a line cut anywhere)."""
    sizes, pos = (1, 2, 7, 64), 0
    pieces: list[bytes] = []
    while pos < len(data):
        size = sizes[len(pieces) % len(sizes)] if len(pieces) < 8 else len(data)
        pieces.append(data[pos : pos + size])
        pos += size
    return pieces


def _json_words(seeds: Sequence[bytes]) -> tuple[str, ...]:
    """Every key and text in the seed documents."""
    words: set[str] = set()
    stack: list[object] = [json.loads(seed) for seed in seeds]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            words.add(item)
        elif isinstance(item, dict):
            words.update(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return tuple(sorted(words))


def _xml_words(seeds: Sequence[bytes]) -> tuple[str, ...]:
    words: set[str] = set()
    for seed in seeds:
        text = seed.decode()
        words.update(m.group(1) for m in _XML_TAG.finditer(text))
        words.update(m.group(2) for m in _XML_ATTRIBUTE.finditer(text))
    return tuple(sorted(words))


def _json_row(
    name: str,
    decode: Callable[[bytes], object],
    errors: tuple[type[Exception], ...],
    reencode: Callable[[Any], object],
    seeds: Sequence[bytes],
) -> Decoder:
    return Decoder(
        name,
        decode,
        errors,
        reencode,
        tuple(seeds),
        mutators=(mutate_json, mutate_json, mutate_json),
        tokens=(b"{", b"}", b"[", b"]", b'"', b",", b":", b"\\ud800", b"\xed\xa0\x80", b"\xff"),
        vocabulary=_json_words(seeds),
    )


# -------------------------------------------------------------------- APDU
_APDU_SEEDS: Final = tuple(
    c.to_bytes()
    for c in (
        CommandApdu(0x00, 0x84, 0x00, 0x00, le=8),
        CommandApdu(0x00, 0xA4, 0x04, 0x00, bytes(15)),
        CommandApdu(0x00, 0xB2, 0x07, 0x2C, le=256),
        CommandApdu(0x84, 0x24, 0x00, 0x01, bytes(12), le=4),
        CommandApdu(0x00, 0xB0, 0x00, 0x00, le=65536),
        CommandApdu(0x00, 0xD6, 0x00, 0x00, bytes(300)),
        CommandApdu(0x00, 0xD6, 0x00, 0x00, bytes(300), le=1000),
        CommandApdu(0x00, 0xD6, 0x00, 0x00, b"\x01", extended=True),
        CommandApdu(0x00, 0x20, 0x00, 0x00),
    )
)


def _command_again(command: CommandApdu) -> None:
    _same(command, CommandApdu.from_bytes(command.to_bytes()))


def _response_again(response: ResponseApdu) -> None:
    _same(response, ResponseApdu.from_bytes(response.to_bytes()))


def _t0_exchange(data: bytes) -> tuple[CommandApdu | ResponseApdu, ...]:
    """Answers (length-prefixed response APDUs) to READ RECORD, until the exchange ends."""
    exchange = T0Exchange(CommandApdu(0x00, 0xB2, 0x07, 0x2C, le=256), max_rounds=8)
    steps: list[CommandApdu | ResponseApdu] = [exchange.start()]
    for chunk in _chunks(data):
        step = exchange.receive(ResponseApdu.from_bytes(chunk))
        steps.append(step)
        if isinstance(step, ResponseApdu):
            break
    return tuple(steps)


def _t0_again(steps: tuple[CommandApdu | ResponseApdu, ...]) -> None:
    for step in steps:
        if isinstance(step, CommandApdu):
            _command_again(step)
        else:
            _response_again(step)


_APDU_ROWS: Final = (
    Decoder(
        "apdu.CommandApdu.from_bytes",
        CommandApdu.from_bytes,
        (ApduError,),
        _command_again,
        _APDU_SEEDS,
        tokens=(b"\x00", b"\x00\x00", b"\xff\xff", b"\x00\x01\x00"),
    ),
    Decoder(
        "apdu.ResponseApdu.from_bytes",
        ResponseApdu.from_bytes,
        (ApduError,),
        _response_again,
        (b"\x90\x00", b"\x6a\x82", bytes(18) + b"\x90\x00", b"\x61\x10", b"\x6c\x08"),
    ),
    Decoder(
        "apdu.T0Exchange.receive",
        _t0_exchange,
        (ApduError,),
        _t0_again,
        (
            _prefixed(b"\x90\x00"),
            _prefixed(b"\x61\x10", bytes(16) + b"\x90\x00"),
            _prefixed(b"\x6c\x09", b"\x61\x00", bytes(200) + b"\x61\x05", bytes(5) + b"\x90\x00"),
            _prefixed(b"\x63\xc2"),
        ),
        tokens=(b"\x02\x61\x00", b"\x02\x6c\x00", b"\x02\x90\x00", b"\xff"),
    ),
)


# ---------------------------------------------------------------- envelope
def _envelope(suite: str = "gm", *, repeat: bool = False, text: str = "M-1") -> bytes:
    header = EnvelopeHeader(
        sender="BRANCH-652300-01",
        receiver="PLATFORM-650000",
        message_id=text,
        timestamp_ms=1_795_000_000_000,
        nonce=bytes(range(12)),
        suite="gm" if suite == "gm" else "intl",
        key_id="branch-sig",
        key_version=3,
        repeat=repeat,
    )
    return Envelope(header, bytes(range(48)), bytes(64)).to_bytes()


def _envelope_again(envelope: Envelope) -> None:
    _same(envelope, Envelope.from_bytes(envelope.to_bytes()))


_ENVELOPE_ROWS: Final = (
    Decoder(
        "envelope.Envelope.from_bytes",
        Envelope.from_bytes,
        (EnvelopeError,),
        _envelope_again,
        (_envelope(), _envelope("intl", repeat=True), _envelope(text="x" * 64)),
        tokens=(b"SE\x01", b"\x00", b"\x40", b"\x41", b"\xff\xff\xff\xff"),
    ),
)


# -------------------------------------------------------------------- MQTT
_TOPICS: Final = BranchTopics("650000", "T-652300-01")


def _topic_of(parsed: ParsedTopic) -> str:  # noqa: PLR0911 - a case per topic kind
    topics = BranchTopics(parsed.province, parsed.branch)
    agent, device, client = parsed.agent or "", parsed.device or "", parsed.client or ""
    match parsed.kind:
        case "daemon_state":
            return topics.daemon_state()
        case "daemon_report":
            return topics.daemon_report(parsed.report or "")
        case "device_state":
            return topics.device_state(device)
        case "agent_state":
            return topics.agent_state(agent)
        case "agent_device_state":
            return topics.agent_device_state(agent, device)
        case "agent_request":
            return topics.agent_request(agent, device)
        case _:
            return topics.client_response(client)


def _topic_again(parsed: ParsedTopic) -> None:
    _same(parsed, parse_topic(_topic_of(parsed)))


_PRESENCE_SEEDS: Final = (
    PresenceState(Presence.ONLINE, at="2026-11-23T09:00:00Z").to_bytes(),
    PresenceState(Presence.OFFLINE, "connection_lost").to_bytes(),
)
_DEVICE_STATE_SEEDS: Final = (
    DeviceState(
        "printer-1",
        DeviceKind.PRINTER,
        DeviceStatus.ERROR,
        "printer.jam",
        "2026-11-23T09:00:00.000Z",
        Levels(FeederLevel.NEAR_EMPTY, "YMCKO", 12, reject_box_full=False, cover_open=True),
        {"commands": 3, "errors": 1},
    ).to_bytes(),
    DeviceState(
        "encoder-1", DeviceKind.ENCODER, DeviceStatus.ONLINE, None, "2026-11-23T09:00:00Z"
    ).to_bytes(),
)
_AT: Final = "2026-11-23T09:15:00Z"
_REPORT_SEEDS: Final[dict[str, tuple[bytes, ...]]] = {
    "queues": (QueuesReport(_AT, {"production": 2, "audit": 0}).to_bytes(),),
    "production": (
        ProductionReport(
            _AT, (HourCount("2026-11-23T08:00:00Z", 12, 1), HourCount(_AT, 3, 0))
        ).to_bytes(),
    ),
    "stock": (
        StockReport(
            _AT,
            (FeederStock("printer-1", -2, 1, low=True),),
            reconciled=True,
            problems=0,
            checked_at="2026-11-23T08:00:00Z",
        ).to_bytes(),
        StockReport(_AT).to_bytes(),
    ),
    "outbox": (OutboxReport(_AT, 3, 1, "2026-11-23T08:00:00Z").to_bytes(),),
    "applications": (ApplicationsReport(_AT, 40, 2, "2026-11-20").to_bytes(),),
    "certificates": (
        CertificatesReport(
            _AT,
            (CertificateEntry("CN=branch,O=x", "2027-01-01T00:00:00Z", 38.5, expires_soon=False),),
        ).to_bytes(),
    ),
}


def _report_row(name: str) -> Decoder:
    def decode(data: bytes) -> object:
        return decode_report(name, data)

    def again(report: Any) -> None:  # noqa: ANN401 - one of the report types
        _same(report, decode_report(name, report.to_bytes()))

    return _json_row(
        f"mqtt.decode_report[{name}]",
        decode,
        (MqttProtocolError,),
        again,
        _REPORT_SEEDS[name],
    )


def _presence_again(state: PresenceState) -> None:
    _same(state, PresenceState.from_bytes(state.to_bytes()))


def _device_state_again(state: DeviceState) -> None:
    _same(state, DeviceState.from_bytes(state.to_bytes()))


def _rpc_request_again(request: RpcRequest) -> None:
    _same(request, RpcRequest.from_bytes(request.to_bytes()))


def _rpc_response_again(response: RpcResponse) -> None:
    _same(response, RpcResponse.from_bytes(response.to_bytes()))


def _args(data: bytes) -> dict[str, Any]:
    """The arguments of the RPC request in ``data``, as the agent reads them."""
    return dict(RpcRequest.from_bytes(data).args)


def _result(data: bytes) -> dict[str, Any]:
    """The result of the RPC response in ``data``, as the client reads it."""
    return dict(RpcResponse.from_bytes(data).result)


def _request(op: str, args: dict[str, Any]) -> bytes:
    return RpcRequest(op, args).to_bytes()


def _response(result: dict[str, Any]) -> bytes:
    return RpcResponse(result).to_bytes()


def _printer_request_again(request: PrinterRequest) -> None:
    wire = _request("printer.command", rpc.request_to_json(request))
    _same(request, rpc.request_from_json(_args(wire)))
    _same(request, PrinterRequest.from_bytes(request.to_bytes()))


def _printer_reply_again(reply: TextReply | Ack | Nack) -> None:
    _same(reply, rpc.reply_from_json(_result(_response(rpc.reply_to_json(reply)))))


def _printer_status_again(status: PrinterStatus) -> None:
    _same(status, rpc.status_from_json(_result(_response(rpc.status_to_json(status)))))


def _panels_again(panels: list[tuple[Panel, Depth, bytes]]) -> None:
    for panel, depth, bitmap in panels:
        commands.download_panel(panel, depth, bitmap).to_bytes()
    wire = _request("printer.print_card", {"panels": rpc.panels_to_json(panels)})
    _same(panels, rpc.panels_from_json(_args(wire)))


def _station_again(station: commands.EncodingStation) -> None:
    wire = _request("printer.insert_card", {"station": station.value})
    _same(station, rpc.station_from_json(_args(wire)))
    commands.insert_card(station).to_bytes()


def _apdu_hex_again(apdu: bytes) -> None:
    wire = _request("encoder.transmit", {"channel": "c-1", "apdu": apdu.hex()})
    _same(apdu, rpc.bytes_from_hex(_args(wire).get("apdu")))


_STATUS: Final = PrinterStatus(
    feeder_loaded=True,
    feeder_near_empty=False,
    cover_open=False,
    card_at_output=False,
    reject_box_full=False,
    card_position=CardPosition.CONTACT,
    ribbon_type="YMCKO",
    ribbon_remaining=199,
)
_FULL_PANEL: Final = (Panel.BLACK, Depth.LEVELS_2, bytes(panel_size(Depth.LEVELS_2)))

_MQTT_ROWS: Final = (
    Decoder(
        "mqtt.parse_topic",
        lambda data: parse_topic(_text_of(data)),
        (MqttProtocolError,),
        _topic_again,
        tuple(
            t.encode()
            for t in (
                _TOPICS.daemon_state(),
                _TOPICS.daemon_report("stock"),
                _TOPICS.device_state("printer-1"),
                _TOPICS.agent_state("agent-1"),
                _TOPICS.agent_device_state("agent-1", "encoder-1"),
                _TOPICS.agent_request("agent-1", "printer-1"),
                _TOPICS.client_response("teller-7"),
            )
        ),
        tokens=(
            b"/",
            b"+",
            b"#",
            b"sscard/v1/",
            b"daemon",
            b"agents",
            b"state",
            b"\xff",
            b"\xc3\xa9",
        ),
    ),
    _json_row(
        "mqtt.PresenceState.from_bytes",
        PresenceState.from_bytes,
        (MqttProtocolError,),
        _presence_again,
        _PRESENCE_SEEDS,
    ),
    _json_row(
        "mqtt.DeviceState.from_bytes",
        DeviceState.from_bytes,
        (MqttProtocolError,),
        _device_state_again,
        _DEVICE_STATE_SEEDS,
    ),
    *(_report_row(name) for name in sorted(_REPORT_SEEDS)),
    _json_row(
        "mqtt.AuditCheckpoint.from_bytes",
        AuditCheckpoint.from_bytes,
        (MqttProtocolError,),
        lambda c: _same(c, AuditCheckpoint.from_bytes(c.to_bytes())),
        (
            AuditCheckpoint(
                1_795_000_000, 1_795_003_600, 42, "ab" * 32, "branch-signing", 1, "30" * 36
            ).to_bytes(),
            AuditCheckpoint(0, 60, 0, "00" * 32, "k", 2**31 - 1, "ff").to_bytes(),
        ),
    ),
    _json_row(
        "mqtt.RpcRequest.from_bytes",
        RpcRequest.from_bytes,
        (MqttProtocolError,),
        _rpc_request_again,
        (
            _request("printer.status", {}),
            _request("encoder.connect", {"protocols": ["T=0", "T=1"]}),
            _request("printer.command", rpc.request_to_json(commands.read_ribbon_type())),
        ),
    ),
    _json_row(
        "mqtt.RpcResponse.from_bytes",
        RpcResponse.from_bytes,
        (MqttProtocolError,),
        _rpc_response_again,
        (
            _response({"kind": "ack"}),
            RpcResponse(error=RpcError("printer.jam", {"printer_code": "T", "n": 1.5})).to_bytes(),
        ),
    ),
    _json_row(
        "mqtt.rpc.request_from_json",
        lambda data: rpc.request_from_json(_args(data)),
        (MqttProtocolError,),
        _printer_request_again,
        tuple(
            _request("printer.command", rpc.request_to_json(r))
            for r in (commands.read_sensor(commands.Sensor.FEEDER), commands.insert_card())
        ),
    ),
    _json_row(
        "mqtt.rpc.reply_from_json",
        lambda data: rpc.reply_from_json(_result(data)),
        (MqttProtocolError,),
        _printer_reply_again,
        tuple(_response(rpc.reply_to_json(r)) for r in (TextReply("5,00 Volts"), Ack(), Nack("T"))),
    ),
    _json_row(
        "mqtt.rpc.status_from_json",
        lambda data: rpc.status_from_json(_result(data)),
        (MqttProtocolError,),
        _printer_status_again,
        (_response(rpc.status_to_json(_STATUS)),),
    ),
    _json_row(
        "mqtt.rpc.panels_from_json",
        lambda data: rpc.panels_from_json(_args(data)),
        (MqttProtocolError,),
        _panels_again,
        (
            _request("printer.print_card", {"panels": []}),
            _request("printer.print_card", {"panels": [], "copies": 1}),
            _request("printer.print_card", {"panels": rpc.panels_to_json([_FULL_PANEL])}),
        ),
    ),
    _json_row(
        "mqtt.rpc.station_from_json",
        lambda data: rpc.station_from_json(_args(data)),
        (MqttProtocolError,),
        _station_again,
        (_request("printer.insert_card", {"station": "s"}),),
    ),
    _json_row(
        "mqtt.rpc.bytes_from_hex",
        lambda data: rpc.bytes_from_hex(_args(data).get("apdu")),
        (MqttProtocolError,),
        _apdu_hex_again,
        (_request("encoder.transmit", {"channel": "c-1", "apdu": "00A4040000"}),),
    ),
)


# ------------------------------------------------------------------ PIN pad
_ENTRY: Final = EntryParams(Prompt.ENTER, 0, 4, 6, 30, "6217000012345678")
_LOAD_KEY: Final = LoadKeyParams(KeyAlgorithm.SM4, bytes(range(16)), "A1B2C3")
_PAD_SEEDS: Final = (
    PadReply(
        1,
        Command.INFO,
        Status.OK,
        PadInfo(
            tmk_loaded=True,
            key_algorithm=KeyAlgorithm.SM4,
            key_check_value="A1B2C3",
            text="SSC-EPP 1.0",
        ).to_data(),
    ).to_bytes(),
    PadReply(2, Command.READ_PIN, Status.OK, bytes(3 + 16)).to_bytes(),
    PadReply(3, Command.ABORT, Status.ABORTED).to_bytes(),
    KeyEvent(4).to_bytes(),
)
_PAD_REQUEST_SEEDS: Final = (
    PadRequest(1, Command.INFO).to_bytes(),
    PadRequest(2, Command.READ_PIN, _ENTRY.to_data(Command.READ_PIN)).to_bytes(),
    PadRequest(255, Command.LOAD_KEY, _LOAD_KEY.to_data()).to_bytes(),
    PadRequest(9, Command.SHOW, bytes((Prompt.SUCCESS,))).to_bytes(),
)
_PAD_TOKENS: Final = (b"\x02", b"\x03", b"0", b"F", b"80", b"0000", b"\x02\x03")


def _pad_again(message: object) -> None:
    if isinstance(message, PadReply):
        _same(message, PadReply.from_bytes(message.to_bytes()))
    elif isinstance(message, KeyEvent):
        _same(message, KeyEvent.from_bytes(message.to_bytes()))
    elif isinstance(message, PadRequest):
        _same(message, PadRequest.from_bytes(message.to_bytes()))
    elif isinstance(message, BadRequest):
        encode_frame(bytes((message.seq, message.code)))
    elif isinstance(message, PadCompleted):
        _pad_again(message.request)
        _pad_again(message.reply)
    elif isinstance(message, PadUnsolicited):
        _pad_again(message.reply)
    elif not isinstance(message, Discarded) or message.count <= 0:
        msg = f"not an event of the decoder: {message!r}"
        raise AssertionError(msg)


def _pad_events(
    decoder: PadMessageDecoder | PadRequestDecoder | PinPadClient, data: bytes
) -> list[object]:
    events: list[object] = []
    for piece in _pieces(data):
        decoder.receive_data(piece)
        while (event := decoder.next_event()) is not PAD_NEED_DATA:
            events.append(event)
    return events


def _pad_client(data: bytes) -> list[object]:
    """A READ_PIN under way and its ABORT (SEQ 1 and 2), then the pad's bytes."""
    client = PinPadClient()
    client.send(read_pin(_ENTRY))
    client.send(abort())
    return _pad_events(client, data)


def _each(check_one: Callable[[object], None]) -> Callable[[list[object]], None]:
    def again(events: list[object]) -> None:
        for event in events:
            check_one(event)

    return again


def _entry_params(data: bytes) -> tuple[Command, EntryParams]:
    """READ_PIN data after an even first byte, READ_NEW_PIN data after an odd one."""
    command = Command.READ_NEW_PIN if data[:1] and data[0] % 2 else Command.READ_PIN
    return command, EntryParams.from_data(command, data[1:])


def _entry_again(decoded: tuple[Command, EntryParams]) -> None:
    command, params = decoded
    _same(params, EntryParams.from_data(command, params.to_data(command)))


def _info_again(pad: PadInfo) -> None:
    _same(pad, parse_info(pad.to_data()))


def _pin_again(pin: EncipheredPin) -> None:
    _same(pin, parse_pin(Command.READ_PIN, pin.to_data()))


_PINPAD_ROWS: Final = (
    Decoder(
        "pinpad.decode_frame",
        decode_frame,
        (PinPadCodecError,),
        lambda body: _same(body, decode_frame(encode_frame(body))),
        _PAD_SEEDS + _PAD_REQUEST_SEEDS,
        tokens=_PAD_TOKENS,
    ),
    Decoder(
        "pinpad.Request.from_bytes",
        PadRequest.from_bytes,
        (PinPadCodecError,),
        _pad_again,
        _PAD_REQUEST_SEEDS,
        tokens=_PAD_TOKENS,
    ),
    Decoder(
        "pinpad.Reply.from_bytes",
        PadReply.from_bytes,
        (PinPadCodecError,),
        _pad_again,
        _PAD_SEEDS,
        tokens=_PAD_TOKENS,
    ),
    Decoder(
        "pinpad.KeyEvent.from_bytes",
        KeyEvent.from_bytes,
        (PinPadCodecError,),
        _pad_again,
        _PAD_SEEDS,
        tokens=_PAD_TOKENS,
    ),
    Decoder(
        "pinpad.PadMessageDecoder.receive_data",
        lambda data: _pad_events(PadMessageDecoder(), data),
        (),
        _each(_pad_again),
        (b"".join(_PAD_SEEDS), b"\x02\x02" + _PAD_SEEDS[0] + b"\x03" + _PAD_SEEDS[3]),
        tokens=_PAD_TOKENS,
    ),
    Decoder(
        "pinpad.RequestDecoder.receive_data",
        lambda data: _pad_events(PadRequestDecoder(), data),
        (),
        _each(_pad_again),
        (b"".join(_PAD_REQUEST_SEEDS), encode_frame(b"\x05\x77") + _PAD_REQUEST_SEEDS[1]),
        tokens=_PAD_TOKENS,
    ),
    Decoder(
        "pinpad.PinPadClient.receive_data",
        _pad_client,
        (),
        _each(_pad_again),
        (
            KeyEvent(1).to_bytes()
            + PadReply(1, Command.READ_PIN, Status.ABORTED).to_bytes()
            + PadReply(2, Command.ABORT, Status.OK).to_bytes(),
            PadReply(2, Command.INFO, Status.OK).to_bytes(),
        ),
        tokens=_PAD_TOKENS,
    ),
    Decoder(
        "pinpad.EntryParams.from_data",
        _entry_params,
        (PinPadCodecError,),
        _entry_again,
        (
            b"\x00" + _ENTRY.to_data(Command.READ_PIN),
            b"\x01"
            + EntryParams(Prompt.ENTER_NEW, 4, 4, 12, 255, "1", 9).to_data(Command.READ_NEW_PIN),
        ),
        tokens=(b"0", b"9", b"\x0c", b"\x00"),
    ),
    Decoder(
        "pinpad.LoadKeyParams.from_data",
        LoadKeyParams.from_data,
        (PinPadCodecError,),
        lambda params: _same(params, LoadKeyParams.from_data(params.to_data())),
        (_LOAD_KEY.to_data(),),
    ),
    Decoder(
        "pinpad.parse_info",
        parse_info,
        (PinPadCodecError,),
        _info_again,
        (
            PadInfo(
                tmk_loaded=True,
                key_algorithm=KeyAlgorithm.AES_128,
                key_check_value="00FF10",
                text="SSC-EPP-SIM 1.0.0",
            ).to_data(),
            PadInfo(tmk_loaded=False, key_algorithm=None, key_check_value=None, text="").to_data(),
        ),
    ),
    Decoder(
        "pinpad.parse_kcv",
        parse_kcv,
        (PinPadCodecError,),
        lambda kcv: _same(kcv, parse_kcv(bytes.fromhex(kcv))),
        (b"\xa1\xb2\xc3",),
    ),
    Decoder(
        "pinpad.parse_pin",
        lambda data: parse_pin(Command.READ_PIN, data),
        (PinPadCodecError,),
        _pin_again,
        (bytes(3 + 8), bytes(range(3 + 16))),
    ),
    Decoder(
        "pinpad.parse_show",
        parse_show,
        (PinPadCodecError,),
        lambda prompt: _same(prompt, parse_show(show(prompt).data)),
        (b"\x00", b"\x07"),
    ),
)


# ----------------------------------------------------------------- platform
_PLATFORM_REQUESTS: Final = (
    PlatformRequest("apply", "M-1", fields={"AAC002": "650102199001011234", "AAC003": "张三"}),
    PlatformRequest("enable", "M-2", repeat=True, fields={"AAZ500": "A12345678"}),
)
_PLATFORM_RESULTS: Final = (
    PlatformResult("M-1", Outcome.OK, "成功", {"AAZ500": "A12345678"}),
    PlatformResult("M-2", Outcome.NOT_FOUND, "not found"),
)
_BANK_REQUESTS: Final = (
    PlatformRequest("open_account", "S-1", fields={"AAC002": "650102199001011234"}),
    PlatformRequest("freeze", "S-2", repeat=True),
)


def _codec_rows(
    label: str, codec: Codec, requests: Sequence[PlatformRequest]
) -> tuple[Decoder, ...]:
    def requests_again(items: list[PlatformRequest]) -> None:
        _same(items, codec.decode_requests(codec.encode_requests(items)))

    def results_again(items: list[PlatformResult]) -> None:
        _same(items, codec.decode_results(codec.encode_results(items)))

    request_seeds = (codec.encode_requests(requests), codec.encode_requests(requests[:1]))
    result_seeds = (
        codec.encode_results(_PLATFORM_RESULTS),
        codec.encode_results(_PLATFORM_RESULTS[1:]),
    )
    if codec.name == "soap":
        return tuple(
            Decoder(
                f"{label}.decode_{kind}",
                decode,
                (MessageDecodeError,),
                again,
                seeds,
                mutators=(mutate_xml_encoding, mutate_xml, mutate_xml),
                tokens=(b"<", b">", b"</", b"&", b'"', b"<!", b"\xed\xa0\x80", b"\xff"),
                vocabulary=_xml_words(seeds),
            )
            for kind, decode, again, seeds in (
                ("requests", codec.decode_requests, requests_again, request_seeds),
                ("results", codec.decode_results, results_again, result_seeds),
            )
        )
    return (
        _json_row(
            f"{label}.decode_requests",
            codec.decode_requests,
            (MessageDecodeError,),
            requests_again,
            request_seeds,
        ),
        _json_row(
            f"{label}.decode_results",
            codec.decode_results,
            (MessageDecodeError,),
            results_again,
            result_seeds,
        ),
    )


def _peer_keys_again(entries: list[PeerKey]) -> None:
    private = any(entry.signing_key is not None for entry in entries)
    in_order = sorted(entries, key=lambda entry: entry.index)  # the file is sorted
    _same(in_order, decode_peer_keys(encode_peer_keys(entries, private=private)))


_PEER: Final = PeerKey("PLATFORM-650000", "gm", "platform-sig", 1, b"\x04" + bytes(64), bytes(16))
_PLATFORM_ROWS: Final = (
    *_codec_rows("platform.JSON_DIALECT", JSON_DIALECT, _PLATFORM_REQUESTS),
    *_codec_rows("platform.SOAP_DIALECT", SOAP_DIALECT, _PLATFORM_REQUESTS),
    *_codec_rows("bank.BANK_DIALECT", BANK_DIALECT, _BANK_REQUESTS),
    _json_row(
        "platform.peers.decode_peer_keys",
        decode_peer_keys,
        (PeerKeysDecodeError,),
        _peer_keys_again,
        (
            encode_peer_keys([_PEER]),
            encode_peer_keys(
                [
                    PeerKey("BRANCH-1", "intl", "b", 2, b"\x04" + bytes(64), bytes(32), bytes(32)),
                    _PEER,
                ],
                private=True,
            ),
        ),
    ),
)


# ------------------------------------------------------------------ printer
_PRINTER_REQUEST_SEEDS: Final = (
    commands.read_sensor(commands.Sensor.COVER).to_bytes(),
    commands.set_serial_mode(commands.SerialMode.ACK_NACK).to_bytes(),
    commands.insert_card().to_bytes(),
    commands.download_panel(
        Panel.OVERLAY,
        Depth.LEVELS_2,
        bytes(range(256)) * (panel_size(Depth.LEVELS_2) // 256)
        + bytes(panel_size(Depth.LEVELS_2) % 256),
    ).to_bytes(),
)
_PRINTER_REPLY_SEEDS: Final = (
    b"OK\r",
    b"5,00 Volts\r",
    b"ERR MECHANICAL\r",
    b"\x06",
    b"\x15T",
    b"SMART CARD\r",
)
_PRINTER_TOKENS: Final = (
    b"\x1b",
    b"\r",
    b"\x06",
    b"\x15",
    b";",
    b"Db;k;2;",
    b"Db;y;256;",
    b"OK",
    b"Sis",
    b"ERR ",
)


def _printer_again(event: object) -> None:
    if isinstance(event, PrinterRequest):
        _same(event, PrinterRequest.from_bytes(event.to_bytes()))
    elif isinstance(event, TextReply):
        _same(event, TextReply.from_bytes(event.to_bytes()))
    elif isinstance(event, Ack):
        _same(event, Ack.from_bytes(event.to_bytes()))
    elif isinstance(event, Nack):
        _same(event, Nack.from_bytes(event.to_bytes()))
    elif isinstance(event, Completed):
        _printer_again(event.request)
        _printer_again(event.reply)
    elif isinstance(event, Unsolicited):
        _printer_again(event.reply)
    elif not isinstance(event, PrinterDiscarded) or event.count <= 0:
        msg = f"not an event of the decoder: {event!r}"
        raise AssertionError(msg)


def _printer_events(
    decoder: ReplyDecoder | RequestDecoder | PrinterClient, data: bytes
) -> list[object]:
    events: list[object] = []
    for piece in _pieces(data):
        decoder.receive_data(piece)
        while (event := decoder.next_event()) is not PRINTER_NEED_DATA:
            events.append(event)
    return events


def _printer_client(data: bytes) -> list[object]:
    """``Rlr;p`` in flight, then the printer's bytes."""
    client = PrinterClient()
    client.send(commands.read_card_position(), 0.0)
    return _printer_events(client, data)


def _replies_of(status: PrinterStatus) -> dict[str, str | None]:
    """The reply texts :func:`parse_status` reads ``status`` from."""
    volts = {True: commands.format_voltage(5.0), False: commands.format_voltage(0.0)}
    sensors = {
        commands.Sensor.FEEDER: status.feeder_loaded,
        commands.Sensor.FEEDER_NEAR_EMPTY: not status.feeder_near_empty,
        commands.Sensor.COVER: not status.cover_open,
        commands.Sensor.BEZEL: status.card_at_output,
    }
    replies: dict[str, str | None] = {
        commands.read_sensor(sensor).label: volts[active] for sensor, active in sensors.items()
    }
    replies[commands.read_reject_box().label] = "CARD" if status.reject_box_full else "NO CARD"
    replies[commands.read_card_position().label] = status.card_position.value
    replies[commands.read_ribbon_type().label] = status.ribbon_type
    remaining = status.ribbon_remaining
    replies[commands.read_ribbon_remaining().label] = None if remaining is None else str(remaining)
    return replies


def _status(data: bytes) -> PrinterStatus:
    """Reply texts, one a line in :func:`status_requests` order; ``-`` is no reply (None)."""
    lines = _text_of(data).split("\n")
    replies = {
        request.label: None if line == "-" else line
        for request, line in zip(status_requests(), lines, strict=False)
    }
    return parse_status(replies)


_STATUS_SEED: Final = "\n".join(
    "-" if text is None else text for text in _replies_of(_STATUS).values()
).encode()
_PRINTER_ROWS: Final = (
    Decoder(
        "printer.Request.from_bytes",
        PrinterRequest.from_bytes,
        (PrinterProtocolError,),
        _printer_again,
        _PRINTER_REQUEST_SEEDS,
        tokens=_PRINTER_TOKENS,
    ),
    Decoder(
        "printer.TextReply.from_bytes",
        TextReply.from_bytes,
        (PrinterProtocolError,),
        _printer_again,
        _PRINTER_REPLY_SEEDS,
        tokens=_PRINTER_TOKENS,
    ),
    Decoder(
        "printer.Ack.from_bytes",
        Ack.from_bytes,
        (PrinterProtocolError,),
        _printer_again,
        (b"\x06",),
    ),
    Decoder(
        "printer.Nack.from_bytes",
        Nack.from_bytes,
        (PrinterProtocolError,),
        _printer_again,
        (b"\x15T", b"\x15?"),
    ),
    Decoder(
        "printer.ReplyDecoder.receive_data",
        lambda data: _printer_events(ReplyDecoder(), data),
        (),
        _each(_printer_again),
        (b"".join(_PRINTER_REPLY_SEEDS), b"O\x00K\r\x15\x06" + b"A" * 300 + b"\r"),
        tokens=_PRINTER_TOKENS,
    ),
    Decoder(
        "printer.RequestDecoder.receive_data",
        lambda data: _printer_events(RequestDecoder(), data),
        (),
        _each(_printer_again),
        (b"".join(_PRINTER_REQUEST_SEEDS[:3]), b"Sis\r" + _PRINTER_REQUEST_SEEDS[3] + b"\x1bRfv\r"),
        tokens=_PRINTER_TOKENS,
    ),
    Decoder(
        "printer.PrinterClient.receive_data",
        _printer_client,
        (),
        _each(_printer_again),
        (b"SMART CARD\r", b"\x15T\x06OK\r"),
        tokens=_PRINTER_TOKENS,
    ),
    Decoder(
        "printer.commands.parse_voltage",
        lambda data: commands.parse_voltage(_text_of(data)),
        (PrinterProtocolError,),
        lambda volts: _same(volts, commands.parse_voltage(commands.format_voltage(volts))),
        (b"5,00 Volts", b"0.35 Volts", b"99,99 Volts"),
        tokens=(b",", b".", b"0", b"9", b" Volts", "\uff15".encode(), "\u0663".encode()),
    ),
    Decoder(
        "printer.commands.parse_count",
        lambda data: commands.parse_count(_text_of(data)),
        (PrinterProtocolError,),
        lambda count: _same(count, commands.parse_count(str(count))),
        (b"0", b"199", b"999999999"),
        tokens=(b"0", b"9", b"-", b" ", "\u0663".encode(), "\u00b2".encode()),
    ),
    Decoder(
        "printer.commands.parse_card_position",
        lambda data: commands.parse_card_position(_text_of(data)),
        (PrinterProtocolError,),
        lambda position: _same(position, commands.parse_card_position(position.value)),
        tuple(p.value.encode() for p in CardPosition),
    ),
    Decoder(
        "printer.commands.parse_reject_box_full",
        lambda data: commands.parse_reject_box_full(_text_of(data)),
        (PrinterProtocolError,),
        lambda full: _same(full, commands.parse_reject_box_full("CARD" if full else "NO CARD")),
        (b"CARD", b"NO CARD"),
    ),
    Decoder(
        "printer.commands.parse_status",
        _status,
        (PrinterProtocolError,),
        lambda status: _same(status, parse_status(_replies_of(status))),
        (_STATUS_SEED, _STATUS_SEED.replace(b"YMCKO\n199", b"-\n-")),
        tokens=(b"\n", b"-", b"5,00 Volts", b"0,00 Volts", b"CARD", b"NO CARD", b"OK"),
    ),
)


# ------------------------------------------------------------------- sscard
_SPECS: Final = (*EF05_FIELDS, *EF06_FIELDS)
_ISSUER: Final = IssuerData(
    card_id_code="65230000" + "0" * 24,
    spec_version="3.00",
    issue_date=dt.date(2026, 11, 23),
    expiry_date=dt.date(2036, 11, 23),
    card_number="A12345678",
)
_HOLDER: Final = HolderData(
    ssn="650102199001011234",
    name="张三",
    sex="1",
    ethnicity="01",
    birth_date=dt.date(1990, 1, 1),
    name_extension="·买买提",
)


def _field(data: bytes) -> tuple[int, object]:
    """The field picked by the first byte, its value in the rest."""
    if not data:
        return 0, None
    spec = _SPECS[data[0] % len(_SPECS)]
    return spec.tag, decode_field(spec, data[1:])


def _field_again(decoded: tuple[int, object]) -> None:
    tag, value = decoded
    if value is None:
        return
    spec = FIELDS[tag]
    assert isinstance(value, str | dt.date)
    ((_, raw),) = decode_tlvs(encode_field(spec, value))
    _same(value, decode_field(spec, raw))


def _records(specs: Sequence[Any], data: bytes) -> dict[int, bytes]:
    """Length-prefixed records, the n-th for the n-th field of the file."""
    return {spec.tag: chunk for spec, chunk in zip(specs, _chunks(data), strict=False)}


def _tlvs_again(items: list[tuple[int, bytes]]) -> None:
    _same(items, decode_tlvs(b"".join(encode_tlv(tag, value) for tag, value in items)))


def _pin_again_sscard(pin: str | None) -> None:
    if pin is not None:
        _same(pin, decode_pin(encode_pin(pin)))


_SSCARD_ROWS: Final = (
    Decoder(
        "sscard.decode_tlvs",
        decode_tlvs,
        (SscardError,),
        _tlvs_again,
        (
            encode_field(FIELDS[7], "A12345678") + encode_field(FIELDS[9], "张三"),
            encode_tlv(1, bytes(300)) + b"\x00\xff",
        ),
        tokens=(b"\x81", b"\x82", b"\x00", b"\xff", b"\x7f", b"\x80"),
    ),
    Decoder(
        "sscard.decode_field",
        _field,
        (SscardError,),
        _field_again,
        tuple(
            bytes((i,)) + decode_tlvs(encode_field(spec, getattr(record, spec.name)))[0][1]
            for i, spec in enumerate(_SPECS)
            for record in (_ISSUER if spec in EF05_FIELDS else _HOLDER,)
            if getattr(record, spec.name) is not None
        ),
        tokens=(
            b"\x00",
            b"\x20",
            b"\xff",
            b"\x81\x40",
            b"\xa1\xa1",
            b"\x99\x99\x12\x31",
            b"\x00\x01\x01\x01",
        ),
    ),
    Decoder(
        "sscard.IssuerData.from_records",
        lambda data: IssuerData.from_records(_records(EF05_FIELDS, data)),
        (SscardError,),
        lambda issuer: _same(issuer, IssuerData.from_records(issuer.to_records())),
        (_prefixed(*_ISSUER.to_records().values()),),
        tokens=(b"\x00", b"\x20", b"\xff", b"\x00\x01\x01\x01", b"\x02"),
    ),
    Decoder(
        "sscard.HolderData.from_records",
        lambda data: HolderData.from_records(_records(EF06_FIELDS, data)),
        (SscardError,),
        lambda holder: _same(holder, HolderData.from_records(holder.to_records())),
        (_prefixed(*_HOLDER.to_records().values()),),
        tokens=(b"\x00", b"\x20", b"\xff", b"\x81\x40", b"\xa1\xa1"),
    ),
    Decoder(
        "sscard.generation_from_version",
        lambda data: generation_from_version(_text_of(data)),
        (SscardError,),
        lambda generation: generation_from_version(f"{int(generation)}.00"),
        (b"3.00", b"2.00", b"1.01"),
        tokens=(b".", "\uff13".encode(), "\u0663".encode()),
    ),
    Decoder(
        "sscard.decode_pin",
        decode_pin,
        (),
        _pin_again_sscard,
        (encode_pin("123456"), encode_pin("12345"), encode_pin("123456789012")),
        tokens=(b"\xff", b"\x0f", b"\xf0"),
    ),
    Decoder(
        "sscard.check",
        lambda data: check(ResponseApdu.from_bytes(data), "read_record"),
        (ApduError, SscardError),
        lambda answer: _same(answer, check(ResponseApdu(answer, 0x9000), "read_record")),
        (b"\x07\x09" + b"A12345678" + b"\x90\x00", b"\x63\xc2", b"\x69\x83"),
    ),
)

#: Every decoder of ``protocols/``.
DECODERS: Final[tuple[Decoder, ...]] = (
    *_APDU_ROWS,
    *_ENVELOPE_ROWS,
    *_MQTT_ROWS,
    *_PINPAD_ROWS,
    *_PLATFORM_ROWS,
    *_PRINTER_ROWS,
    *_SSCARD_ROWS,
)
