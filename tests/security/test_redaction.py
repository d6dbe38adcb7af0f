import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from gateway.runtime.logs import configure_logging
from security.redaction import (
    REDACTED,
    is_secret_name,
    mask_personal_numbers,
    redact_event,
    redact_value,
)

ID_NUMBER = "11010519491231002X"
MASKED_ID = "110105********002X"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The real logging chain, rendering JSON lines into a buffer."""
    buffer = io.StringIO()
    configure_logging("debug", "json", stream=buffer)
    yield buffer
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    """Parse the JSON lines written so far."""
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line]


@pytest.mark.parametrize(
    "name",
    ["pin", "PIN", "old_pin", "new_pin", "pin_block", "pinblock", "master_key", "private_key",
     "key", "password", "db_password", "secret", "client_secret", "cryptogram", "Authorization"],
)  # fmt: skip
def test_secret_names(name: str) -> None:
    """Names of PINs, PIN blocks, keys and passwords are recognised."""
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    ["idempotency_key", "key_id", "key_version", "pin_tries_left", "branch_id", "public_key"],
)
def test_identifier_names_are_not_secret(name: str) -> None:
    """Identifiers that only look like secrets stay readable for operators."""
    assert not is_secret_name(name)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ID_NUMBER, MASKED_ID),
        ("id=110105194912310021.", "id=110105********0021."),
        ("old 130503670401001 id", "old 130503*****1001 id"),
        ("card 6222021234567890123 ok", "card 622202*********0123 ok"),
        ("short 1234567890 stays", "short 1234567890 stays"),
        ("hex a1b2110105194912310021ff stays", "hex a1b2110105194912310021ff stays"),
    ],
)
def test_personal_numbers_masked(text: str, expected: str) -> None:
    """Identity and bank card numbers keep 6 leading and 4 trailing characters."""
    assert mask_personal_numbers(text) == expected


def test_nested_values_redacted_without_touching_the_original() -> None:
    """Secrets deep in containers are removed; the caller's objects are unchanged."""
    original: dict[str, Any] = {
        "applicant": {"aac002": ID_NUMBER, "pin": "123456"},
        "list": [{"pin_block": "x"}],
    }
    redacted = redact_value(original)
    assert redacted == {
        "applicant": {"aac002": MASKED_ID, "pin": REDACTED},
        "list": [{"pin_block": REDACTED}],
    }
    assert original["applicant"]["pin"] == "123456"


def test_processor_redacts_top_level_fields() -> None:
    """The structlog processor removes secret fields and masks numbers in the event text."""
    event = redact_event(None, "info", {"event": f"applicant {ID_NUMBER}", "new_pin": "654321"})
    assert event == {"event": f"applicant {MASKED_ID}", "new_pin": REDACTED}


def test_bytes_never_logged_raw() -> None:
    """A bare bytes value is summarised by its length only."""
    assert redact_value(b"\x01\x02\x03") == "<3 bytes>"


def test_pipeline_redacts_our_events_and_context(json_log: io.StringIO) -> None:
    """Events, bound context and keyword fields all go through redaction; context is merged."""
    structlog.contextvars.bind_contextvars(branch_id="B1", request_id="r-1")
    structlog.get_logger("t").info("pin_reset", holder=ID_NUMBER, pin_block="0412AC89", tries=3)
    [record] = lines(json_log)
    assert record["holder"] == MASKED_ID
    assert record["pin_block"] == REDACTED
    assert record["branch_id"] == "B1"
    assert record["request_id"] == "r-1"
    assert record["tries"] == 3
    assert "0412AC89" not in json_log.getvalue()


def test_pipeline_redacts_exception_text(json_log: io.StringIO) -> None:
    """A traceback quoting an identity number is masked too."""
    log = structlog.get_logger("t")

    def lookup() -> None:
        raise ValueError(f"bad applicant {ID_NUMBER}")

    try:
        lookup()
    except ValueError:
        log.exception("lookup_failed")
    output = json_log.getvalue()
    assert ID_NUMBER not in output
    assert MASKED_ID in output
    assert "Traceback" in lines(json_log)[0]["exception"]


def test_pipeline_covers_standard_library_loggers(json_log: io.StringIO) -> None:
    """Records from libraries using the logging module are redacted the same way."""
    logging.getLogger("somelib").warning("holder %s", ID_NUMBER, extra={"password": "hunter2"})
    [record] = lines(json_log)
    assert record["event"] == f"holder {MASKED_ID}"
    assert record["password"] == REDACTED
    assert record["logger"] == "somelib"


def test_console_format_is_readable_text() -> None:
    """The console renderer writes text, not JSON, and still redacts."""
    buffer = io.StringIO()
    configure_logging("info", "console", stream=buffer)
    try:
        structlog.get_logger("t").info("hello", pin="1234")
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()
    text = buffer.getvalue()
    assert "hello" in text
    assert "1234" not in text
    assert not text.startswith("{")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tel 13812345678", "tel 138****5678"),
        ("+8613912345678 called", "+86139****5678 called"),
        ("手机13712345678。", "手机137****5678。"),
        ("order 213812345678 stays", "order 213812345678 stays"),  # 12 digits: not a mobile
        ("12812345678", "12812345678"),  # no mobile begins 12
    ],
)
def test_mobile_numbers_masked(text: str, expected: str) -> None:
    """A standalone mainland mobile number keeps its first 3 and last 4 digits."""
    assert mask_personal_numbers(text) == expected


def test_names_addresses_and_phones_masked_by_field() -> None:
    """Personal fields are masked by name; a task's ``name`` in Latin letters stays."""
    event = redact_event(
        None,
        "info",
        {
            "event": "applicant",
            "name": "张晓明",
            "holder_name": "Li Na",
            "address": "新疆昌吉市延安北路1号",
            "phone": "13812345678",
            "details": {"aac003": "王伟", "mobile": "0994-2345678"},
            "task": {"name": "heartbeat"},
        },
    )
    assert event["name"] == "张**"
    assert event["holder_name"] == "L****"
    assert event["address"] == "新疆昌吉市延****"
    assert event["phone"] == "138****5678"
    assert event["details"] == {"aac003": "王*", "mobile": "0***********"}
    assert event["task"] == {"name": "heartbeat"}
