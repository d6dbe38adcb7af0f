"""No PIN block, account number or key ever shows in logs, reprs or error texts."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import TYPE_CHECKING

import pytest
from structlog.testing import capture_logs

from devices.pinpad import (
    LoadKeyParams,
    PadPinBlock,
    PinPadCancelledError,
    PinPadKeyRefusedError,
    PinPadRequestError,
    Prompt,
)
from protocols.pinpad.frames import KeyAlgorithm
from tests.devices.pinpad.conftest import ACCOUNT, KEY_LABEL, TPK, load_params

if TYPE_CHECKING:
    from simulators.pinpad import PinPadSimulator
    from tests.devices.pinpad.conftest import DriverFactory

pytestmark = pytest.mark.integration


def forbidden(block: bytes) -> list[str]:
    """Every spelling of a secret the tests look for."""
    key = TPK[KeyAlgorithm.TDES_2KEY]
    wrapped = load_params().wrapped
    return [
        block.hex(),
        block.hex().upper(),
        repr(block)[2:-1],
        key.hex(),
        key.hex().upper(),
        wrapped.hex(),
        wrapped.hex().upper(),
        ACCOUNT,
        ACCOUNT.encode().hex().upper(),  # the account as it travels in hex on the wire
        "123456",  # the PIN itself
    ]


async def test_block_never_in_logs_reprs_or_errors(
    pad: PinPadSimulator, make_driver: DriverFactory
) -> None:
    """A whole session (load key, PIN entry, cancel, refusal): nothing secret is printed."""
    texts: list[str] = []
    with capture_logs() as logs:
        driver = make_driver(key_label=f"{KEY_LABEL}-tdes_2key")
        await driver.open()
        await driver.load_key(load_params())
        pad.press("123456E")
        block = await driver.read_pin(account=ACCOUNT, prompt=Prompt.ENTER, timeout=30)
        pad.press("1C")
        with pytest.raises(PinPadCancelledError) as cancelled:
            await driver.read_pin(account=ACCOUNT, prompt=Prompt.ENTER, timeout=30)
        params = load_params()
        with pytest.raises(PinPadKeyRefusedError) as refused:
            await driver.load_key(LoadKeyParams(params.algorithm, params.wrapped, "123456"))
        with pytest.raises(PinPadRequestError) as bad:
            await driver.read_pin(account=ACCOUNT[:12], prompt=Prompt.ENTER, timeout=30)
    texts += [repr(entry) for entry in logs]
    texts += [repr(block), str(block), f"{block}", f"{block!r}", repr(driver.info)]
    for caught in (cancelled, bad):
        texts += [str(caught.value), repr(caught.value), repr(vars(caught.value))]
    secrets = forbidden(block.block)
    secrets.remove("123456")  # the refused check value above is "123456" on purpose
    texts.append(str(refused.value).replace("123456", ""))
    assert any("pinpad_key_loaded" in t for t in texts)
    for text in texts:
        for secret in secrets:
            assert secret not in text, (secret, text)


def test_block_refuses_pickling_and_compares_in_constant_time() -> None:
    """A block cannot be pickled; copies are equal; dataclass repr hides the bytes."""
    block = PadPinBlock(bytes(range(8)), 0, "tpk", "ABCDEF")
    with pytest.raises(TypeError):
        pickle.dumps(block)
    assert copy.copy(block) == block
    assert block != PadPinBlock(bytes(8), 0, "tpk", "ABCDEF")
    assert "0001020304050607" not in repr(block)
    assert "block=" not in repr(block)
    assert [f.name for f in dataclasses.fields(block)] == [
        "block",
        "format",
        "key_label",
        "key_check_value",
    ]
    with pytest.raises(TypeError):
        hash(block)


@pytest.mark.parametrize(
    ("length", "fmt"), [(7, 0), (16, 9), (8, 4), (12, 3)], ids=["short", "format", "f4", "odd"]
)
def test_block_checks_its_shape(length: int, fmt: int) -> None:
    """A block of the wrong length for its format is refused without showing its bytes."""
    with pytest.raises(ValueError, match="PIN block") as caught:
        PadPinBlock(b"\x42" * length, fmt, "tpk")
    assert "42" not in str(caught.value)
