"""Card fixtures: simulated cards, and pcscd with the vpcd virtual reader for integration.

pcscd's socket path is fixed (/run/pcscd), so there is one pcscd per machine
and the PC/SC tests (marked ``pcsc``) share one session-scoped daemon and run
one after another. A pcscd that is already running (a system service) is
reused, and the tests that restart pcscd cannot run (they fail in CI); otherwise the session starts
``pcscd -f`` itself, reaps it at the end, and may restart it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from simulators.card import CardProtocol, SimulatedCard
from simulators.card.cli import DEMO_MASTER_KEYS, demo_holder, demo_issuer
from simulators.card.vpcd import VPCD_PORT, serve_vpcd
from tests.conftest import missing_part

if TYPE_CHECKING:
    from collections.abc import Iterator

    from protocols.sscard import HolderData, IssuerData

VPCD_DRIVERS = (
    Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so"),
    Path("/usr/lib64/pcsc/drivers/serial/libifdvpcd.so"),
)
#: pcscd names the reader behind port 35963 like this.
VPCD_READER = "Virtual PCD 00 00"
_READY_SECONDS = 60.0  # waited on pcscd (it answers at once when well); a loaded CI box


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``pcsc`` marker (tests that share the machine's one pcscd)."""
    config.addinivalue_line("markers", "pcsc: uses the machine's pcscd; runs serially")


class CardFactory(Protocol):
    """Makes a personalized simulated card."""

    def __call__(
        self,
        *,
        generation: int = 3,
        retries: int = 3,
        protocol: CardProtocol = "T=0",
        path: Path | None = None,
        serial: int = 1,
    ) -> SimulatedCard:
        """Issue a card."""
        ...


@pytest.fixture
def issue_card(tmp_path: Path) -> CardFactory:
    """Issue demo cards (SM4 for generation 3, 3DES for 2) saved under ``tmp_path``."""

    def issue(
        *,
        generation: int = 3,
        retries: int = 3,
        protocol: CardProtocol = "T=0",
        path: Path | None = None,
        serial: int = 1,
    ) -> SimulatedCard:
        issuer: IssuerData = demo_issuer(generation, serial)
        holder: HolderData = demo_holder(generation)
        return SimulatedCard.issue(
            issuer=issuer,
            holder=holder,
            masters=DEMO_MASTER_KEYS,
            retries=retries,
            protocol=protocol,
            path=path or tmp_path / f"card-{serial}.json",
        )

    return issue


def _pcscd_pids() -> list[int]:
    """The pcscd processes alive (a killed one whose parent is gone stays a zombie: not it)."""
    pids = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() != "pcscd":
                continue
            state = (comm.parent / "stat").read_text().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            pids.append(int(comm.parent.name))
    return pids


def _scard() -> Any:  # noqa: ANN401 - pyscard has no types
    try:
        from smartcard import scard  # noqa: PLC0415 - part check
    except ImportError:
        missing_part("pyscard: pip install 'pyscard>=2.1,<3' (needs swig, libpcsclite-dev, gcc)")
    return scard


def _vpcd_readers(scard: Any) -> list[str]:  # noqa: ANN401 - pyscard module
    result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if result:
        return []
    try:
        result, readers = scard.SCardListReaders(context, [])
        return [] if result else [r for r in readers if r.startswith("Virtual PCD")]
    finally:
        scard.SCardReleaseContext(context)


@dataclass
class Pcscd:
    """The session's pcscd: ours (restartable) or the system's (reused as it is)."""

    executable: str | None
    owned: bool
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None)

    def start(self) -> None:
        """Start ``pcscd -f`` and wait until it lists the vpcd readers."""
        assert self.executable is not None
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [self.executable, "-f"], stdout=log, stderr=subprocess.STDOUT
            )
        try:
            self.wait_ready()
        except BaseException:
            self.stop()  # never leave a pcscd behind that the next run would take for a system one
            raise

    def wait_ready(self) -> None:
        """Wait (on pcscd, not on a timer) until the vpcd readers are listed."""
        scard = _scard()
        deadline = time.monotonic() + _READY_SECONDS
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                pytest.fail(f"pcscd exited with {self.process.returncode}; see {self.log}")
            if _vpcd_readers(scard):
                return
            time.sleep(0.05)
        pytest.fail(f"pcscd did not list the vpcd readers within {_READY_SECONDS} s")

    def stop(self) -> None:
        """Stop our pcscd and reap it (a zombie pcscd blocks the next start)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        """Stop and start again (only for the pcscd this session started)."""
        if not self.owned:
            missing_part("a pcscd of the test session's own (a system pcscd is running: stop it)")
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def pcscd() -> Iterator[Pcscd]:
    """The vpcd-equipped pcscd for the whole session (reused if already running)."""
    _scard()
    executable = shutil.which("pcscd") or next(
        (p for p in ("/usr/sbin/pcscd",) if Path(p).exists()), None
    )
    if executable is None:
        missing_part("pcscd: apt-get install pcscd")
    if not any(driver.exists() for driver in VPCD_DRIVERS):
        missing_part("vpcd reader driver: apt-get install vsmartcard-vpcd")
    log = Path(tempfile.mkdtemp(prefix="branchd-pcscd-")) / "pcscd.log"
    if _pcscd_pids():
        daemon = Pcscd(executable, owned=False, log=log)
        daemon.wait_ready()
        yield daemon
        return
    daemon = Pcscd(executable, owned=True, log=log)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()
        shutil.rmtree(log.parent, ignore_errors=True)


@dataclass
class VpcdCard:
    """A simulated card served into the vpcd reader on a thread; insert/remove at will."""

    card: SimulatedCard
    port: int = VPCD_PORT
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def insert(self) -> None:
        """Connect the card to vpcd (the reader sees a card ~0.4 s later)."""
        if self._thread is not None:
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=serve_vpcd,
            args=(self.card, self._stop),
            kwargs={"port": self.port, "retry_seconds": 0.1},
            name="vpcd-card",
            daemon=True,
        )
        self._thread.start()

    def remove(self) -> None:
        """Disconnect the card from vpcd and wait until pcscd has seen it go."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=5)
        self._thread = None
        wait_card_absent(VPCD_READER)


def wait_card_absent(reader: str, seconds: float = 5.0) -> None:
    """Block until pcscd reports no card in ``reader`` (SCardGetStatusChange, no polling)."""
    scard = _scard()
    result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if result:
        return
    try:
        state = scard.SCARD_STATE_UNAWARE
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            result, states = scard.SCardGetStatusChange(context, 500, [(reader, state)])
            if result and result != scard.SCARD_E_TIMEOUT:
                return
            if result == 0:
                state = states[0][1] & ~scard.SCARD_STATE_CHANGED
            if state & scard.SCARD_STATE_EMPTY:
                return
    finally:
        scard.SCardReleaseContext(context)


@pytest.fixture
def vpcd_card(pcscd: Pcscd, issue_card: CardFactory) -> Iterator[VpcdCard]:
    """A T=0 third-generation card for the first vpcd reader; removed at the end."""
    del pcscd
    handle = VpcdCard(issue_card())
    try:
        yield handle
    finally:
        handle.remove()
