"""``branchd pinpad load-key``: the pad's TPK from the key store, under its TMK, to a pty pad.

The branch's key store holds the pad's TMK (a ``wrap`` key) and its TPK; the
command exports the TPK under the TMK with its check value and loads the
simulated pad on a real pty, which deciphers it with its own TMK and checks
the value. An unknown pad or a missing TMK exits 2 and loads nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import pytest
import structlog

from gateway.assembly import open_keystore
from gateway.cli.main import main
from gateway.config import load_config
from protocols.pinpad.frames import KeyAlgorithm
from security.keystore import Algorithm, KeyUsage
from simulators.pinpad import DEMO_TMK, PinPadSimConfig
from tests.devices.pinpad.conftest import TPK as PAD_TPKS
from tests.devices.pinpad.conftest import pad, pad_clock  # noqa: F401 - fixtures
from tests.devices.printer.conftest import pty_available  # noqa: F401 - a fixture
from tests.gateway.builders import config_toml, master_key_file

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from simulators.pinpad import PinPadSimulator

pytestmark = pytest.mark.integration

TPK_LABEL = "tpk-window-1"


@pytest.fixture
def pad_config() -> PinPadSimConfig:
    """The demo TMK as an SM4 key."""
    return PinPadSimConfig(algorithm=KeyAlgorithm.SM4)


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """The command configures logging for the process: undo it afterwards."""
    yield
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def _config(tmp_path: Path, pad_path: str) -> Path:
    path = tmp_path / "branchd.toml"
    database = f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"
    path.write_text(
        config_toml(database, tmp_path, 8080, master_key_file(tmp_path))
        + '[devices]\nprovince = "650000"\nbranch = "T-652300-01"\n'
        + f'[[devices.pinpads]]\nid = "pinpad-1"\nurl = "{pad_path}"\nkey_label = "{TPK_LABEL}"\n',
        encoding="utf-8",
    )
    return path


async def test_load_key_from_the_key_store(
    tmp_path: Path,
    pad: PinPadSimulator,  # noqa: F811 - the fixture
) -> None:
    """The pad takes the TPK exported under its TMK; its check value is the store's."""
    path = _config(tmp_path, pad.path)
    store = open_keystore(load_config(path), create=True)
    assert store is not None
    store.import_key(TPK_LABEL, Algorithm.SM4_128, KeyUsage.PIN, PAD_TPKS[KeyAlgorithm.SM4])
    expected = store.key_check_value(TPK_LABEL)
    store.close()

    command = ["pinpad", "load-key", "-c", str(path), "pinpad-1"]
    assert await asyncio.to_thread(main, command) == 2  # no TMK in the store yet
    assert pad.keys.key_check_value is None
    assert await asyncio.to_thread(main, ["pinpad", "load-key", "-c", str(path), "nope"]) == 2

    store = open_keystore(load_config(path))
    assert store is not None
    store.import_key("tmk-pinpad-1", Algorithm.SM4_128, KeyUsage.KEY_WRAP, DEMO_TMK)
    store.close()
    assert await asyncio.to_thread(main, command) == 0
    assert pad.keys.key_check_value == expected
