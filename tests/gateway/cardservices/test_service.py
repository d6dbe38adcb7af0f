"""CardServices with the card in an in-process reader: refusals explained, nothing changed.

The platform is a fake here (one layer at a time); the end-to-end tests use the
platform simulator over mutual TLS and the card behind pcscd.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from devices.encoder import InProcessEncoder
from gateway.audit.log import AuditLog
from gateway.cardservices import CardServices, PinPadFailure, PinSettings, Prompt, WindowSettings
from gateway.operations.catalogue import Role
from gateway.operations.schemas import OperationRequest
from gateway.runtime.db import create_engine, session_factory
from gateway.runtime.http.auth import Terminal
from gateway.runtime.migrate import upgrade
from gateway.runtime.problems import ProblemError
from gateway.upstream.errors import (
    KeyServiceUnavailableError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
)
from security.keystore import Algorithm, KeyUsage, MasterKey, PinBlockFormat, SoftwareKeyStore
from security.suites import GM
from simulators.platform import DEMO_ZONE_PIN_KEY
from tests.fakes import FakeClock
from tests.gateway.cardservices.conftest import (
    CHONGQING_CARD_ID,
    CHONGQING_MASTERS,
    CHONGQING_SSN,
    as_problem,
    make_card,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from security.keystore import EncryptedPinBlock
    from simulators.card import SimulatedCard

READER = "Window 1"
TELLER = Terminal("teller-01", Role.TELLER)


@dataclass
class FakePlatform:
    """Answers the key service with a chosen failure."""

    failure: Exception | None = None
    calls: list[str] = field(default_factory=list)

    async def authorize_pin_reset(self, *_args: Any) -> bytes:  # noqa: ANN401
        """Fail as told."""
        self.calls.append("pin_reset")
        assert self.failure is not None
        raise self.failure

    async def authorize_unlock(self, *_args: Any) -> bytes:  # noqa: ANN401
        """Fail as told."""
        self.calls.append("unlock")
        assert self.failure is not None
        raise self.failure


@dataclass
class Pad:
    """Types PINs under the TPK, or fails with a code."""

    store: SoftwareKeyStore
    typed: list[str] = field(default_factory=list)
    failure: str | None = None

    async def read_pin(self, *, account: str, prompt: Prompt, timeout: float) -> EncryptedPinBlock:  # noqa: ASYNC109
        """One PIN."""
        del prompt, timeout
        return self._next(account)

    async def read_new_pin(self, *, account: str, timeout: float) -> EncryptedPinBlock:  # noqa: ASYNC109
        """A new PIN."""
        del timeout
        return self._next(account)

    def _next(self, account: str) -> EncryptedPinBlock:
        if self.failure is not None:
            raise PinPadFailure(self.failure)
        return self.store.encrypt_pin_block("tpk", self.typed.pop(0), account, PinBlockFormat.ISO_0)

    async def show(self, prompt: Prompt) -> None:
        """Nothing to show here."""
        del prompt


@dataclass
class Window:
    """The services, the card, the pad and the fake platform."""

    services: CardServices
    card: SimulatedCard
    pad: Pad
    platform: FakePlatform


@pytest.fixture
async def window(tmp_path: Path) -> AsyncIterator[Window]:
    """A Chongqing card in the reader of a 652300 window."""
    store = SoftwareKeyStore.open(
        tmp_path / "keys.bin", MasterKey(os.urandom(32), source="test"), create=True
    )
    store.generate_key("tpk", Algorithm.SM4_128, KeyUsage.PIN)
    store.import_key("zone-pin", Algorithm.SM4_128, KeyUsage.PIN, DEMO_ZONE_PIN_KEY)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'branch.db'}")
    await upgrade(engine)
    sessions = session_factory(engine)
    card = make_card(CHONGQING_CARD_ID, CHONGQING_SSN, CHONGQING_MASTERS, tmp_path / "card.json")
    encoder = InProcessEncoder(readers=(READER,))
    encoder.insert(READER, card)
    platform = FakePlatform()
    pad = Pad(store)
    services = CardServices(
        settings=PinSettings(
            windows=[WindowSettings(terminal="teller-01", encoder="enc", pinpad="pad")]
        ),
        keystore=store,
        platform=platform,  # type: ignore[arg-type]
        breaker=None,
        sessions=sessions,
        audit=AuditLog(sessions, GM, FakeClock()),
        region="652300",
        encoders={"enc": (encoder, READER)},
        index=lambda number: number,
        pads={"pad": pad},
    )
    yield Window(services, card, pad, platform)
    await engine.dispose()


def request(**changes: Any) -> OperationRequest:  # noqa: ANN401
    """The holder in person."""
    body: dict[str, Any] = {
        "case": "self",
        "channel": "window",
        "applicant": {"id_number": CHONGQING_SSN, "name": "李四"},
        "materials": ["applicant-ss-card"],
    }
    body.update(changes)
    return OperationRequest.model_validate(body)


async def test_refusal_by_the_issuing_province_is_explained(window: Window) -> None:
    """The hub's answer from Chongqing is a refusal: the teller sees who refused and why."""
    window.platform.failure = UpstreamRejectedError(
        "platform", "pin_reset_auth", "invalid_state", "卡片状态不允许 card state forbids it"
    )
    window.pad.typed = ["864200"]
    with pytest.raises(ProblemError) as refused, as_problem():
        await window.services.pin_reset(request(), TELLER)
    problem = refused.value
    assert problem.problem.code == "issuer-refused"
    assert problem.extra["province"] == "500000"
    assert problem.extra["cross_region"] is True
    assert "卡片状态不允许" in problem.extra["platform_message"]
    assert window.card.state.pin_is_default  # nothing changed on the card


async def test_remote_time_out_and_platform_down(window: Window) -> None:
    """A time-out behind the hub and a platform known to be down: explained, not queued."""
    window.platform.failure = UpstreamTimeoutError("platform timed out", "platform")
    window.card.state.retries_left = 0
    with pytest.raises(ProblemError) as timed_out, as_problem():
        await window.services.unlock(request(), TELLER)
    assert timed_out.value.problem.code == "issuer-unreachable"
    assert timed_out.value.extra["province"] == "500000"
    window.platform.failure = KeyServiceUnavailableError("platform", "unlock_auth", 12.0)
    with pytest.raises(ProblemError) as down, as_problem():
        await window.services.unlock(request(), TELLER)
    assert (down.value.problem.code, down.value.extra["retry_after"]) == (
        "upstream-unavailable",
        12.0,
    )
    assert window.card.state.retries_left == 0
    assert window.platform.calls == ["unlock", "unlock"]


async def test_pad_failure_and_wrong_holder(window: Window) -> None:
    """A pad time-out changes nothing; a card of someone else is refused before the pad."""
    window.pad.failure = "pinpad-timeout"
    with pytest.raises(ProblemError) as failed, as_problem():
        await window.services.pin_change(request(), TELLER)
    assert (failed.value.problem.code, failed.value.extra["pad_code"]) == (
        "pin-pad-failed",
        "pinpad-timeout",
    )
    other = request(applicant={"id_number": "11010519491231002X", "name": "张三"})
    with pytest.raises(ProblemError) as mismatch, as_problem():
        await window.services.pin_reset(other, TELLER)
    assert mismatch.value.problem.code == "card-holder-mismatch"
    assert window.platform.calls == []


async def test_holder_only_and_unequipped_terminal(window: Window) -> None:
    """PIN change by proxy is refused with the one-time notice; a terminal without a window too."""
    proxy = request(
        case="adult-proxy",
        agent={"id_number": "11010519491231002X", "name": "张三"},
        materials=["applicant-ss-card", "agent-id-card"],
    )
    with pytest.raises(ProblemError) as refused, as_problem():
        await window.services.pin_change(proxy, TELLER)
    assert refused.value.problem.code == "incomplete-request"
    with pytest.raises(ProblemError) as unequipped, as_problem():
        await window.services.unlock(request(), Terminal("teller-02", Role.TELLER))
    assert unequipped.value.problem.code == "window-not-equipped"
