"""Key store fixtures: every key store test runs on the software store and on SoftHSM2.

The PKCS#11 run is an integration test: a private SoftHSM2 configuration and
token directory are made for the session and one token is initialized with
``softhsm2-util``. If SoftHSM2 or python-pkcs11 is missing, those tests skip on
a developer machine and FAIL when ``CI`` or ``BRANCHD_REQUIRE_PARTS`` is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import pytest

from security.keystore import KeyStore, MasterKey, SoftwareKeyStore
from tests.conftest import missing_part

#: Where Debian's softhsm2 package puts the module (override with $BRANCHD_SOFTHSM2_MODULE).
SOFTHSM2_MODULES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
TOKEN_LABEL = "branchd-test"  # noqa: S105  # a token label, not a password
USER_PIN = "246810"
SO_PIN = "13579111"

RandomSource: TypeAlias = Callable[[int], bytes]
KeyStoreFactory: TypeAlias = Callable[..., KeyStore]


@dataclass(frozen=True)
class SoftHsmToken:
    """A SoftHSM2 token initialized for this test session."""

    module: str
    label: str
    user_pin: str
    conf: Path


def _find_module() -> str | None:
    candidates = [os.environ.get("BRANCHD_SOFTHSM2_MODULE", ""), *SOFTHSM2_MODULES]
    return next((c for c in candidates if c and Path(c).exists()), None)


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsmToken]:
    """A fresh SoftHSM2 token in a private token directory, for the whole session."""
    try:
        import pkcs11  # noqa: F401, PLC0415  # only to tell a missing binding apart
    except ImportError:
        missing_part("python-pkcs11 (pip install python-pkcs11)")
    util = shutil.which("softhsm2-util")
    module = _find_module()
    if util is None or module is None:
        missing_part("SoftHSM2 (apt-get install softhsm2)")
    base = tmp_path_factory.mktemp("softhsm2")
    tokens = base / "tokens"
    tokens.mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n",
        encoding="utf-8",
    )
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    try:
        subprocess.run(
            [
                util,
                "--init-token",
                "--free",
                "--label",
                TOKEN_LABEL,
                "--so-pin",
                SO_PIN,
                "--pin",
                USER_PIN,
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        yield SoftHsmToken(module=module, label=TOKEN_LABEL, user_pin=USER_PIN, conf=conf)
    finally:
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous


def _software_factory(tmp_path: Path) -> tuple[KeyStoreFactory, Callable[[], None]]:
    master = MasterKey(os.urandom(32), source="test")
    path = tmp_path / "keys.bin"
    opened: list[KeyStore] = []

    def make(*, random: RandomSource | None = None) -> KeyStore:
        kwargs = {} if random is None else {"random": random}
        store = SoftwareKeyStore.open(path, master, create=True, **kwargs)
        opened.append(store)
        return store

    def cleanup() -> None:
        for store in opened:
            store.close()

    return make, cleanup


def _pkcs11_factory(token: SoftHsmToken) -> tuple[KeyStoreFactory, Callable[[], None]]:
    from security.keystore.pkcs11_store import Pkcs11KeyStore  # noqa: PLC0415  # needs the binding

    opened: list[KeyStore] = []

    def make(*, random: RandomSource | None = None) -> KeyStore:
        kwargs = {} if random is None else {"random": random}
        store = Pkcs11KeyStore.open(
            token.module, token_label=token.label, user_pin=token.user_pin, **kwargs
        )
        opened.append(store)
        return store

    def cleanup() -> None:
        # The token lives for the session: leave it empty for the next test.
        with Pkcs11KeyStore.open(
            token.module, token_label=token.label, user_pin=token.user_pin
        ) as sweeper:
            for info in sweeper.list_keys():
                sweeper._destroy(info)
        for store in opened:
            store.close()

    return make, cleanup


@pytest.fixture(params=["software", pytest.param("pkcs11", marks=pytest.mark.integration)])
def keystore_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyStoreFactory]:
    """Open stores on one backend (each call opens the same key file or token again)."""
    if request.param == "software":
        make, cleanup = _software_factory(tmp_path)
    else:
        make, cleanup = _pkcs11_factory(request.getfixturevalue("softhsm_token"))
    try:
        yield make
    finally:
        cleanup()


@pytest.fixture
def keystore(keystore_factory: KeyStoreFactory) -> KeyStore:
    """An empty key store on each backend."""
    return keystore_factory()
