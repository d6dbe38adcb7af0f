"""The PIN pad driver against the simulated pad over a real pty."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from devices.pinpad import (
    LoadKeyParams,
    PinPadCancelledError,
    PinPadKeyRefusedError,
    PinPadMismatchError,
    PinPadNoKeyError,
    PinPadOfflineError,
    PinPadRequestError,
    PinPadTimeoutError,
    Prompt,
)
from protocols.pinpad.frames import KeyAlgorithm
from security.keystore import PinBlockFormat
from simulators.pinpad import Fault, PinPadSimConfig
from tests.devices.pinpad.conftest import ACCOUNT, FORMAT, KEY_LABEL, TPK, load_params

if TYPE_CHECKING:
    from devices.pinpad import PinPadDriver
    from security.keystore import SoftwareKeyStore
    from simulators.pinpad import PinPadSimulator
    from tests.devices.pinpad.conftest import DriverFactory
    from tests.fakes import FakeClock

pytestmark = pytest.mark.integration

TIMEOUT = 30.0


async def loaded_driver(
    make_driver: DriverFactory, algorithm: KeyAlgorithm = KeyAlgorithm.TDES_2KEY
) -> PinPadDriver:
    """A connected driver whose pad holds the test TPK of ``algorithm``."""
    driver = make_driver(
        key_label=f"{KEY_LABEL}-{algorithm.name.lower()}", pin_block_format=FORMAT[algorithm]
    )
    await driver.open()
    assert driver.connected
    await driver.load_key(load_params(algorithm))
    return driver


async def until(condition: object, *, rounds: int = 2000) -> None:
    """Yield to the loop (the pty round trip) until ``condition()`` holds."""
    assert callable(condition)
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0.001)
    pytest.fail("condition not reached")


def is_up(driver: PinPadDriver) -> bool:
    """Whether the driver is connected (a call, so the type checker does not narrow it)."""
    return driver.connected


async def reconnected(driver: PinPadDriver, clock: FakeClock) -> None:
    """Move the clock through the keeper's backoff until the driver is connected again."""
    for _ in range(50):
        if driver.connected:
            return
        await clock.advance(1.0)
        await asyncio.sleep(0.01)
    pytest.fail("the driver did not reconnect")


def decipher_tdes(key: bytes, block: bytes) -> bytes:
    """The clear PIN block under a double-length 3DES key (the test plays the HSM)."""
    context = Cipher(TripleDES(key + key[:8]), modes.ECB()).decryptor()  # noqa: S305 (one block)
    return context.update(block) + context.finalize()


async def test_connect_reads_info(pad: PinPadSimulator, make_driver: DriverFactory) -> None:
    """Opening asks INFO: the pad has its TMK and no PIN key yet."""
    driver = make_driver()
    await driver.open()
    assert driver.connected
    assert pad.received == ["info"]
    assert driver.info is not None
    assert driver.info.tmk_loaded
    assert driver.info.key_algorithm is None
    assert driver.info.text == "SSC-EPP-SIM 1.0.0"


async def test_load_key_then_info(pad: PinPadSimulator, make_driver: DriverFactory) -> None:
    """LOAD_KEY with the right check value: the pad keeps the key and reports its KCV."""
    driver = make_driver()
    await driver.open()
    params = load_params()
    assert await driver.load_key(params) == params.key_check_value
    assert pad.keys.key_check_value == params.key_check_value
    info = await driver.pad_info()
    assert info.key_algorithm is KeyAlgorithm.TDES_2KEY
    assert info.key_check_value == params.key_check_value


async def test_load_key_with_a_wrong_kcv_is_refused(
    pad: PinPadSimulator, make_driver: DriverFactory
) -> None:
    """A check value that does not match the deciphered key: refused, nothing kept."""
    driver = make_driver()
    await driver.open()
    good = load_params()
    wrong = LoadKeyParams(good.algorithm, good.wrapped, "000000")
    with pytest.raises(PinPadKeyRefusedError) as caught:
        await driver.load_key(wrong)
    assert caught.value.code == "pinpad_key_refused"
    assert pad.keys.key_check_value is None
    other_algorithm = load_params(KeyAlgorithm.SM4)
    with pytest.raises(PinPadKeyRefusedError):
        await driver.load_key(other_algorithm)
    with pytest.raises(PinPadNoKeyError):
        await driver.read_pin(account=ACCOUNT, prompt=Prompt.ENTER, timeout=TIMEOUT)


async def test_read_pin_deciphers_to_the_pin(
    pad: PinPadSimulator, make_driver: DriverFactory, branch_store: SoftwareKeyStore
) -> None:
    """The block deciphers under the TPK to format 0 of 123456; the key store agrees."""
    driver = await loaded_driver(make_driver)
    pad.press("123456E")
    block = await driver.read_pin(account=ACCOUNT, prompt=Prompt.ENTER, timeout=TIMEOUT)
    assert (block.format, block.key_label, len(block.block)) == (0, f"{KEY_LABEL}-tdes_2key", 8)
    assert block.key_check_value == load_params().key_check_value
    clear = decipher_tdes(TPK[KeyAlgorithm.TDES_2KEY], block.block)
    pan_field = bytes.fromhex("0000" + ACCOUNT[-13:-1])
    assert bytes(a ^ b for a, b in zip(clear, pan_field, strict=True)).hex().upper() == (
        "06123456FFFFFFFF"
    )
    stored = block.for_key_store(branch_store)
    assert branch_store.verify_pin_block(stored, ACCOUNT, "123456")
    zone = branch_store.translate_pin_block(
        stored, block.key_label, "zpk-bank", ACCOUNT, PinBlockFormat.ISO_0
    )
    assert branch_store.verify_pin_block(zone, ACCOUNT, "123456")
    assert make_driver.keys == [1, 2, 3, 4, 5, 6]
    assert pad.display is Prompt.IDLE


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.SM4, KeyAlgorithm.AES_128], ids=["sm4", "aes"])
async def test_read_pin_sixteen_byte_blocks(
    pad: PinPadSimulator,
    make_driver: DriverFactory,
    branch_store: SoftwareKeyStore,
    pad_config: PinPadSimConfig,
    algorithm: KeyAlgorithm,
) -> None:
    """SM4 (format 0 widened) and AES (format 4) pads give 16-byte blocks the store opens."""
    del pad_config
    pad.keys.algorithm = algorithm  # a pad whose TMK is of this algorithm
    driver = await loaded_driver(make_driver, algorithm)
    pad.press("135790E")
    driver_block = await driver.read_pin(account=ACCOUNT, prompt=Prompt.ENTER_OLD, timeout=TIMEOUT)
    assert len(driver_block.block) == 16
    assert driver_block.format == FORMAT[algorithm]
    stored = driver_block.for_key_store(branch_store)
    assert branch_store.verify_pin_block(stored, ACCOUNT, "135790")
    assert not branch_store.verify_pin_block(stored, ACCOUNT, "135799")


async def test_clear_key_starts_over(
    pad: PinPadSimulator, make_driver: DriverFactory, branch_store: SoftwareKeyStore
) -> None:
    """更正 (clear) forgets the digits so far; ENTER with too few digits is ignored."""
    driver = await loaded_driver(make_driver)
    pad.press("99X12E3456E")
    block = await driver.read_pin(account=ACCOUNT, prompt=Prompt.ENTER, timeout=TIMEOUT)
    assert branch_store.verify_pin_block(block.for_key_store(branch_store), ACCOUNT, "123456")
    assert make_driver.keys == [1, 2, 0, 1, 2, 3, 4, 5, 6]


async def test_read_new_pin(
    pad: PinPadSimulator, make_driver: DriverFactory, branch_store: SoftwareKeyStore
) -> None:
    """Enter and re-enter the same PIN: one block of it."""
    driver = await loaded_driver(make_driver)
    pad.press("246810E246810E")
    block = await driver.read_new_pin(account=ACCOUNT, timeout=TIMEOUT)
    assert branch_store.verify_pin_block(block.for_key_store(branch_store), ACCOUNT, "246810")


async def test_read_new_pin_mismatch_then_match(
    pad: PinPadSimulator, make_driver: DriverFactory, branch_store: SoftwareKeyStore
) -> None:
    """A first round that differs is asked again by the pad itself."""
    driver = await loaded_driver(make_driver)
    pad.press("111111E222222E333333E333333E")
    block = await driver.read_new_pin(account=ACCOUNT, timeout=TIMEOUT)
    assert branch_store.verify_pin_block(block.for_key_store(branch_store), ACCOUNT, "333333")


async def test_read_new_pin_mismatch(pad: PinPadSimulator, make_driver: DriverFactory) -> None:
    """Every round differs: the pad shows 两次输入不一致 and the driver raises."""
    driver = await loaded_driver(make_driver)
    pad.press("111111E222222E")
    task = asyncio.ensure_future(driver.read_new_pin(account=ACCOUNT, timeout=TIMEOUT))
    await until(lambda: Prompt.MISMATCH in pad.shown)
    assert Prompt.MISMATCH.text == "两次输入不一致"
    pad.press("333333E444444E")
    with pytest.raises(PinPadMismatchError) as caught:
        await task
    assert caught.value.code == "pinpad_mismatch"
    assert caught.value.attempts == 2
    assert pad.shown.count(Prompt.MISMATCH) == 2
    assert pad.display is Prompt.IDLE


async def test_cancel_key(pad: PinPadSimulator, make_driver: DriverFactory) -> None:
    """取消 during the entry: cancelled, and the pad is ready for the next one."""
    driver = await loaded_driver(make_driver)
    pad.press("12C")
    with pytest.raises(PinPadCancelledError) as caught:
        await driver.read_pin(account=ACCOUNT, prompt=Prompt.ENTER, timeout=TIMEOUT)
    assert caught.value.code == "pinpad_cancelled"
    pad.press("654321E")
    assert await driver.read_pin(account=ACCOUNT, prompt=Prompt.ENTER, timeout=TIMEOUT)


async def test_timeout_on_the_host_clock_aborts(
    pad: PinPadSimulator, make_driver: DriverFactory, clock: FakeClock
) -> None:
    """Nobody types: when the driver's clock passes the limit it sends ABORT and raises."""
    driver = await loaded_driver(make_driver)
    task = asyncio.ensure_future(
        driver.read_pin(account=ACCOUNT, prompt=Prompt.ENTER, timeout=TIMEOUT)
    )
    await until(lambda: pad.entry_running)
    await clock.wait_for_sleepers()
    await clock.advance(TIMEOUT - 1)
    assert not task.done()
    await clock.advance(1)
    with pytest.raises(PinPadTimeoutError) as caught:
        await task
    assert (caught.value.code, caught.value.by, caught.value.timeout) == (
        "pinpad_timeout",
        "host",
        TIMEOUT,
    )
    assert pad.received[-2:] == ["read_pin", "abort"]
    assert not pad.entry_running
    pad.press("123456E")
    assert await driver.read_pin(account=ACCOUNT, prompt=Prompt.ENTER, timeout=TIMEOUT)


async def test_timeout_on_the_pad(
    pad: PinPadSimulator, make_driver: DriverFactory, pad_clock: FakeClock
) -> None:
    """The pad's own inactivity limit (the host's plus the grace) ends the entry too."""
    driver = await loaded_driver(make_driver)
    task = asyncio.ensure_future(
        driver.read_pin(account=ACCOUNT, prompt=Prompt.ENTER, timeout=TIMEOUT)
    )
    await until(lambda: pad.entry_running)
    await pad_clock.wait_for_sleepers()
    await pad_clock.advance(TIMEOUT + 5)
    with pytest.raises(PinPadTimeoutError) as caught:
        await task
    assert caught.value.by == "pad"


async def test_caller_cancellation_aborts_the_entry(
    pad: PinPadSimulator, make_driver: DriverFactory
) -> None:
    """A cancelled read_pin (the teller gave up) tells the pad to stop waiting."""
    driver = await loaded_driver(make_driver)
    task = asyncio.ensure_future(
        driver.read_pin(account=ACCOUNT, prompt=Prompt.ENTER, timeout=TIMEOUT)
    )
    await until(lambda: pad.entry_running)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not pad.entry_running
    assert pad.received[-1] == "abort"
    await driver.show(Prompt.FAILED)
    assert pad.display is Prompt.FAILED


async def test_show(pad: PinPadSimulator, make_driver: DriverFactory) -> None:
    """SHOW puts the idle text on the display."""
    driver = make_driver()
    await driver.open()
    await driver.show(Prompt.SUCCESS)
    assert pad.display is Prompt.SUCCESS
    assert Prompt.SUCCESS.text == "交易成功"


async def test_noise_before_a_reply_is_skipped(
    pad: PinPadSimulator, make_driver: DriverFactory
) -> None:
    """Garbage on the line before a reply: the decoder resynchronises at STX."""
    driver = make_driver()
    await driver.open()
    pad.inject(Fault.NOISE)
    await driver.show(Prompt.SUCCESS)
    assert pad.display is Prompt.SUCCESS


async def test_silent_pad_drops_the_link(
    pad: PinPadSimulator, make_driver: DriverFactory, clock: FakeClock
) -> None:
    """No reply within the command timeout: offline, the link is dropped and reported."""
    driver = make_driver()
    await driver.open()
    pad.inject(Fault.SILENT)
    task = asyncio.ensure_future(driver.show(Prompt.SUCCESS))
    await until(lambda: pad.received[-1:] == ["show"])
    await clock.wait_for_sleepers()
    await clock.advance(2.0)
    with pytest.raises(PinPadOfflineError) as caught:
        await task
    assert caught.value.reason == "no reply"
    assert not driver.connected


async def test_link_drop_and_reconnect(
    pad: PinPadSimulator, make_driver: DriverFactory, clock: FakeClock
) -> None:
    """The pty goes away mid-entry: offline and reported; the keeper reconnects later."""
    connected: list[str] = []
    driver = await loaded_driver(make_driver)
    driver._on_connected = lambda info: connected.append(info.text)
    task = asyncio.ensure_future(
        driver.read_pin(account=ACCOUNT, prompt=Prompt.ENTER, timeout=TIMEOUT)
    )
    await until(lambda: pad.entry_running)
    await pad.drop_link()
    with pytest.raises(PinPadOfflineError):
        await task
    await until(lambda: bool(make_driver.lost))
    assert not is_up(driver)
    with pytest.raises(PinPadOfflineError) as caught:
        await driver.show(Prompt.IDLE)
    assert caught.value.code == "pinpad_offline"
    await pad.restore_link()
    await reconnected(driver, clock)
    assert connected == ["SSC-EPP-SIM 1.0.0"]
    assert len(make_driver.lost) == 1
    pad.press("123456E")
    assert await driver.read_pin(account=ACCOUNT, prompt=Prompt.ENTER, timeout=TIMEOUT)


async def test_open_without_a_pad_keeps_trying(
    pad: PinPadSimulator, make_driver: DriverFactory, clock: FakeClock
) -> None:
    """A pad absent at start: open returns, operations are offline, a later pad is found."""
    await pad.drop_link()
    driver = make_driver()
    await driver.open()
    assert not is_up(driver)
    with pytest.raises(PinPadOfflineError):
        await driver.read_pin(account=ACCOUNT, prompt=Prompt.ENTER, timeout=TIMEOUT)
    await pad.start()
    await reconnected(driver, clock)


@pytest.mark.parametrize(
    ("account", "limit", "field"),
    [
        ("12345", TIMEOUT, "account"),
        ("62170000x0001234", TIMEOUT, "account"),
        (ACCOUNT, 0, "timeout"),
    ],
)
async def test_bad_requests(
    make_driver: DriverFactory, account: str, limit: float, field: str
) -> None:
    """An account the format cannot take, or no time at all: refused before the pad."""
    driver = await loaded_driver(make_driver)
    with pytest.raises(PinPadRequestError) as caught:
        await driver.read_pin(account=account, prompt=Prompt.ENTER, timeout=limit)
    assert caught.value.field == field
    assert account not in str(caught.value)
