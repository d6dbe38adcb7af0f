"""PIN change, PIN reset, unlock and status at the window: card, pad, key store, platform.

Each operation reads the card in the window's reader first (issuer and holder
files, the PIN tries left), checks that the card belongs to the applicant, then:

* **PIN change** (holder only): the old PIN from the pad is checked by VERIFY,
  then CHANGE PIN carries old and new. The key store builds both commands from
  the pad's PIN blocks (:meth:`security.keystore.KeyStore.card_verify_command`),
  so no clear PIN passes through this module.
* **PIN reset** (holder or proxy): the new PIN from the pad is translated from
  the pad's key to the zone PIN key and sent with the card's challenge to the
  issuing province's key service (through the national hub for another
  province's card), whose MAC-ed reset command the card applies.
* **Unlock**: the key service's MAC-ed unlock command refills the retry counter;
  the PIN stays.

None of them is ever queued or replayed: each is live, and a teller's retry
with the same ``Idempotency-Key`` gets the stored answer. The outcome, good or
bad, goes to the audit log (masked holder, never a PIN or block), and the
teller is told what happened in both languages: tries left, locked, refused by
the issuing province, which province answered.

Why one module of this size: the four services share one sequence (read the
card, check its holder, take the PIN from the pad, ask the key service, apply
on the card, tell the platform) and its refusals; they differ in one step each.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeVar

import structlog
from sqlalchemy import select
from stdnum.cn import ric

from devices.clock import SystemClock
from devices.encoder import EncoderError, SocialSecurityApplication
from gateway.cardservices.errors import CardServiceReason, CardServiceRefusal
from gateway.cardservices.pad import PinPadFailure, Prompt
from gateway.cardservices.pads import DRIVER_ERRORS
from gateway.operations.catalogue import CATALOGUE, Channel, Operation, Role
from gateway.operations.completeness import Deficiency, check_completeness
from gateway.operations.receipts import next_receipt
from gateway.operations.rows import ApplicationRow
from gateway.people import lifecycle
from gateway.people.holders import hold_person
from gateway.people.rows import CardRow, PersonRow
from gateway.people.states import ApplicationEvent
from gateway.runtime.business_day import local_day
from gateway.runtime.http.auth import require_role
from gateway.upstream.errors import (
    UpstreamError,
    UpstreamRejectedError,
    UpstreamUnavailableError,
)
from gateway.upstream.outbox import ReportCardEvent
from gateway.upstream.platform import CardRef, KeyServiceContext, pin_block_account
from protocols import sscard
from protocols.apdu import ApduError, CommandApdu
from protocols.platform import Status
from protocols.sscard import (
    ApplicationBlockedError,
    CardGeneration,
    CardStatusError,
    ConditionsNotSatisfiedError,
    PinBlockedError,
    SscardError,
    WrongPinError,
)
from protocols.sscard.commands import CLA_SECURED, INS_APPLICATION_BLOCK
from security.keystore import KeyStoreError, PinBlockError, PinBlockFormat
from security.redaction import mask_personal_numbers

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from devices.agent.interfaces import Encoder
    from devices.clock import Clock
    from gateway.audit.log import AuditLog
    from gateway.cardservices.pad import PinPad
    from gateway.cardservices.settings import PinSettings
    from gateway.operations.schemas import OperationRequest
    from gateway.people.vault import PersonalDataVault
    from gateway.runtime.http.auth import Terminal
    from gateway.upstream.assembly import Upstream
    from gateway.upstream.breaker import CircuitBreaker
    from gateway.upstream.platform import AppState, FoundCard, PlatformClient
    from security.keystore import EncryptedPinBlock, KeyStore

__all__ = ["CardServices", "ChipCard", "Outcome", "province_of"]

log = structlog.get_logger(__name__)

_REGION: Final = 6
#: APPLICATION BLOCK header (``84 1E 00 00``); the key service adds Lc and the MAC.
APPLICATION_BLOCK: Final = bytes([CLA_SECURED, INS_APPLICATION_BLOCK, 0, 0])
#: AAZ502 states in which a card presented at the window is blocked: formal loss, cancelled.
INVALID_APPLICATION_STATES: Final = frozenset({"2", "9"})
#: Card record states in which it is blocked: formal loss, reissue under way, cancelled.
INVALID_CARD_STATES: Final = frozenset({"05", "07", "09"})
T = TypeVar("T")
#: Errors a PIN pad raises when no block comes; each carries a stable ``code``.
PAD_ERRORS: Final[tuple[type[Exception], ...]] = (PinPadFailure, *DRIVER_ERRORS)


def province_of(region: str) -> str:
    """The province code of a region code: its first two digits, then ``0000``."""
    return region[:2] + "0000"


@dataclass(frozen=True, slots=True)
class ChipCard:
    """What the window read from the card (the holder's number stays in memory only).

    Attributes:
        card_number: AAZ500.
        card_id_code: AAZ501; its first six digits are the issuing region.
        ssn: The holder's social security number (AAC002); never logged.
        atr: The card's answer to reset, upper-case hex.
        generation: 3 (SM4 card keys) or 2 (3DES).
    """

    card_number: str
    card_id_code: str
    ssn: str = field(repr=False)
    atr: str
    generation: CardGeneration

    @property
    def region(self) -> str:
        """The issuing region (AAB301 of the card)."""
        return self.card_id_code[:_REGION]

    @property
    def province(self) -> str:
        """The issuing province: its key service answers for this card."""
        return province_of(self.region)

    @property
    def account(self) -> str:
        """The account number PIN blocks for this holder are bound to."""
        return pin_block_account(self.ssn)

    @property
    def holder_masked(self) -> str:
        """The holder's number, masked for logs and answers."""
        return mask_personal_numbers(self.ssn)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the teller is told after a card service.

    Attributes:
        operation: Which service.
        card_number: AAZ500 of the card read.
        holder: The holder's masked identity number.
        issuer_region: The card's issuing region.
        issuer_province: The province whose platform (and key service) answers for it.
        cross_region: The card comes from another province (routed by the national hub).
        tries_left_before: PIN tries left when the card was read.
        tries_left_after: PIN tries left afterwards.
        application_state: AAZ502 from the platform (status query), else ``None``.
        local_state: The card's states in this branch's records, when it has it.
        chip_blocked: The card was formally lost or cancelled and its application
            has just been blocked on the chip.
        message_en: What happened, English.
        message_zh: What happened, Chinese.
    """

    operation: Operation
    card_number: str
    holder: str
    issuer_region: str
    issuer_province: str
    cross_region: bool
    tries_left_before: int | None
    tries_left_after: int | None
    message_en: str
    message_zh: str
    application_state: str | None = None
    local_state: dict[str, str] | None = None
    chip_blocked: bool = False
    #: The receipt (受理编号) of a PIN change, reset or unlock, for its archive images.
    receipt_number: str | None = None


@dataclass(slots=True)
class _Window:
    terminal: str
    encoder: Encoder
    reader: str
    pad_id: str


class CardServices:
    """PIN change, reset, unlock and status for the windows of ``[pin]``."""

    def __init__(  # noqa: PLR0913 - the services' collaborators, all injected
        self,
        *,
        settings: PinSettings,
        keystore: KeyStore,
        platform: PlatformClient,
        breaker: CircuitBreaker | None,
        sessions: async_sessionmaker[AsyncSession],
        audit: AuditLog,
        region: str,
        encoders: Mapping[str, tuple[Encoder, str]],
        index: Callable[[str], str],
        pads: Mapping[str, PinPad] | None = None,
        upstream: Upstream | None = None,
        vault: PersonalDataVault | None = None,
        on_outcome: Callable[[str, str], None] | None = None,
        clock: Clock | None = None,
    ) -> None:
        """Keep the collaborators.

        Args:
            settings: ``[pin]``.
            keystore: Holds the pads' TPKs and the zone PIN key.
            platform: The provincial platform client (key service, status).
            breaker: The platform's circuit breaker (live-only refusal while open).
            sessions: The branch database (local card states).
            audit: The audit log every outcome is written to.
            region: The branch's region code.
            encoders: Encoder id → (encoder, reader name), from ``[devices]``.
            index: The personal-data vault's blind index of an identity number.
            pads: PIN pad id → pad; more can be added to :attr:`pads` later.
            upstream: The outbox and relay that carry card events to the platform.
            vault: The personal-data vault (the holder's record of each receipt).
            on_outcome: Called with (operation, outcome) of every service (metrics).
            clock: Wall clock of the events reported (the daemon's injected one).
        """
        self._settings = settings
        #: The readers serving a request now (one request at a time per window).
        self._busy: set[str] = set()
        self._keystore = keystore
        self._platform = platform
        self._breaker = breaker
        self._sessions = sessions
        self._audit = audit
        self._region = region
        self._encoders = dict(encoders)
        self._index = index
        self.pads: dict[str, PinPad] = dict(pads or {})
        self._upstream = upstream
        self._vault = vault
        self._on_outcome = on_outcome
        #: The injected clock; the system's when none is given (the command-line pad tools).
        self._clock: Clock = clock if clock is not None else SystemClock()

    # ------------------------------------------------------------ operations
    async def pin_change(self, body: OperationRequest, terminal: Terminal) -> Outcome:
        """VERIFY the old PIN, then CHANGE PIN; the holder in person only."""
        self._check(Operation.PIN_CHANGE, body, terminal)
        window, pad = self._window(terminal)
        async with self._card(window, body) as (application, card, before):
            if before == 0:
                await self._locked(Operation.PIN_CHANGE, terminal, card)
            old = await self._read(lambda: pad.read_pin(
                account=card.account, prompt=Prompt.ENTER_OLD, timeout=self._timeout
            ))  # fmt: skip
            verify = self._keystore.card_verify_command(old, card.account)
            try:
                await self._transmit(application, verify.command(), "verify")
            except ConditionsNotSatisfiedError:
                pass  # still the initial PIN: right, CHANGE PIN checks it again itself
            except (WrongPinError, PinBlockedError) as exc:
                await self._wrong_pin(Operation.PIN_CHANGE, terminal, card, exc, pad)
            del verify
            new = await self._new_pin(pad, card)
            change = self._keystore.card_change_pin_command(old, new, card.account)
            try:
                await self._transmit(application, change.command(), "change_pin")
            except (WrongPinError, PinBlockedError) as exc:
                await self._wrong_pin(Operation.PIN_CHANGE, terminal, card, exc, pad)
            del change
            after = await application.pin_tries_left()
        await _show(pad, Prompt.SUCCESS)
        await self._report(card, "pin-changed", after)
        return await self._done(
            Operation.PIN_CHANGE, terminal, body, card, before, after,
            "The PIN was changed on the card.", "密码已修改。",
        )  # fmt: skip

    async def pin_reset(self, body: OperationRequest, terminal: Terminal) -> Outcome:
        """A new PIN from the pad, set by the issuing province's MAC-ed reset command."""
        self._check(Operation.PIN_RESET, body, terminal)
        self._require_live_platform()
        window, pad = self._window(terminal)
        async with self._card(window, body) as (application, card, before):
            new = await self._new_pin(pad, card)
            zone = self._keystore.translate_pin_block(
                new, new.key_id, self._settings.zone_pin_key, card.account, PinBlockFormat.ISO_0
            )
            challenge = await self._card_call(application.get_challenge)
            apdu = await self._key_service(
                card.province,
                lambda: self._platform.authorize_pin_reset(
                    self._context(terminal, card), zone, challenge
                ),
            )
            await self._transmit(application, _command(apdu), "pin_reset")
            after = await application.pin_tries_left()
        await _show(pad, Prompt.SUCCESS)
        await self._sync_local(card, ApplicationEvent.UNLOCK, report=("pin-reset", after))
        return await self._done(
            Operation.PIN_RESET, terminal, body, card, before, after,
            f"The PIN was reset with the authorization of province {card.province}.",
            f"密码已重置（发卡地 {card.province} 平台授权）。",
        )  # fmt: skip

    async def unlock(self, body: OperationRequest, terminal: Terminal) -> Outcome:
        """Refill a locked PIN's retry counter with the issuing province's MAC-ed command."""
        self._check(Operation.UNLOCK, body, terminal)
        self._require_live_platform()
        window, _pad = self._window(terminal)
        async with self._card(window, body) as (application, card, before):
            if before:
                await self._audit_outcome(Operation.UNLOCK, terminal, card, "not-locked", before)
                raise CardServiceRefusal(
                    CardServiceReason.PIN_NOT_LOCKED,
                    f"The PIN has {before} tries left; it is not locked.",
                    f"密码尚余 {before} 次尝试机会，未锁定。",
                    tries_left=before,
                )
            challenge = await self._card_call(application.get_challenge)
            apdu = await self._key_service(
                card.province,
                lambda: self._platform.authorize_unlock(self._context(terminal, card), challenge),
            )
            await self._transmit(application, _command(apdu), "pin_unlock")
            after = await application.pin_tries_left()
        await self._sync_local(card, ApplicationEvent.UNLOCK, report=("unlocked", after))
        return await self._done(
            Operation.UNLOCK, terminal, body, card, before, after,
            f"Unlocked with the authorization of province {card.province}; the PIN is unchanged.",
            f"已解锁（发卡地 {card.province} 平台授权），密码不变。",
        )  # fmt: skip

    async def status_from_card(self, body: OperationRequest, terminal: Terminal) -> Outcome:
        """The application state of the card in the reader, from its issuing province.

        A card the platform or this branch knows as formally lost or cancelled (an
        old card after a reissue, say) has its application blocked on the chip with
        the issuing province's MAC-ed APPLICATION BLOCK, and the teller is told so.
        """
        self._check(Operation.STATUS_QUERY, body, terminal)
        window = self._window_of(terminal)
        blocked, failure = False, ""
        async with self._card(window, body) as (application, card, tries):
            state = await self._query(CardRef(card.card_number, card.card_id_code), card.province)
            local = await self._local_states(card.card_number)
            if _invalidated(state.value, local):
                try:
                    await self._block_application(application, terminal, card)
                    blocked = True
                except CardServiceRefusal as exc:
                    failure = exc.reason.value
        if blocked:
            await self._report(card, "application-blocked", tries)
        outcome = "application-blocked" if blocked else "completed"
        await self._audit_outcome(Operation.STATUS_QUERY, terminal, card, outcome, tries)
        en = f"Application state {state.value} (province {card.province})."
        zh = f"应用状态 {state.value}（发卡地 {card.province}）。"
        if blocked:
            en += " The card is no longer valid: its application was blocked on the chip; keep it."
            zh += "该卡已失效，已在芯片上锁定社保应用，请收回卡片。"
        elif failure:
            en += f" The card is no longer valid, but blocking it on the chip failed ({failure})."
            zh += f"该卡已失效，但芯片应用锁定未成功（{failure}）。"
        return self._outcome(
            Operation.STATUS_QUERY, card, tries, tries, en, zh,
            application_state=state.value, local_state=local, chip_blocked=blocked,
        )  # fmt: skip

    async def _block_application(
        self, application: SocialSecurityApplication, terminal: Terminal, card: ChipCard
    ) -> None:
        """APPLICATION BLOCK with the issuing province's MAC (its key service)."""
        challenge = await self._card_call(application.get_challenge)
        apdu = await self._key_service(
            card.province,
            lambda: self._platform.protect_command(
                self._context(terminal, card), APPLICATION_BLOCK, challenge
            ),
        )
        await self._transmit(application, _command(apdu), "application_block")
        log.info("card_application_blocked", card_number=card.card_number)

    async def status_by_identity(self, body: OperationRequest, terminal: Terminal) -> Outcome:
        """The application state of the applicant's card, by the identity number.

        A card this branch knows is asked of its issuing province; for any other
        the platform is asked by the holder's number and the national hub finds
        the province that issued the person's live card (cross-region).

        Raises:
            CardServiceRefusal: ``CARD_NOT_FOUND`` when neither this branch nor
                the platform knows a live card of the person.
        """
        self._check(Operation.STATUS_QUERY, body, terminal)
        ssn = body.applicant.id_number.upper()
        async with self._sessions() as session:
            rows = await _cards_of(session, self._index(ssn))
        live = [r for r in rows if r.card_number and body.card_number in {None, r.card_number}]
        local: dict[str, str] | None = None
        if live:
            row = live[-1]
            assert row.card_number is not None  # noqa: S101 - filtered above
            number, region, local = row.card_number, (row.card_code or "")[:_REGION], _states(row)
            region = region or row.region
            state = await self._query(CardRef(number, row.card_code), province_of(region))
            source = "identity"
        else:
            found = await self._find(ssn)
            number, region, state = found.card.card_number, found.region, found.state
            source = "identity-platform"
        holder = mask_personal_numbers(ssn)
        province = province_of(region)
        await self._audit.append(
            terminal.id, f"card.{Operation.STATUS_QUERY.value}", f"card:{number}",
            {"holder": holder, "outcome": "completed", "source": source,
             "issuer_province": province},
        )  # fmt: skip
        if self._on_outcome is not None:
            self._on_outcome(Operation.STATUS_QUERY.value, "completed")
        return Outcome(
            operation=Operation.STATUS_QUERY,
            card_number=number,
            holder=holder,
            issuer_region=region,
            issuer_province=province,
            cross_region=province != province_of(self._region),
            tries_left_before=None,
            tries_left_after=None,
            message_en=f"Application state {state.value} (province {province}).",
            message_zh=f"应用状态 {state.value}（发卡地 {province}）。",
            application_state=state.value,
            local_state=local,
        )

    async def _find(self, ssn: str) -> FoundCard:
        """Ask the platform (the hub's national index) for the person's live card."""
        try:
            return await self._key_service(
                province_of(self._region), lambda: self._platform.find_card(ssn)
            )
        except CardServiceRefusal as exc:
            if exc.members.get("platform_status") != Status.NOT_FOUND.value:
                raise
        raise CardServiceRefusal(
            CardServiceReason.CARD_NOT_FOUND,
            "Neither this branch nor the platform knows a live card of this person.",
            "本网点及社保卡平台均无此人的有效社保卡。",
        )

    # ------------------------------------------------------------ steps
    @property
    def _timeout(self) -> float:
        return self._settings.pad_timeout

    def _check(self, operation: Operation, body: OperationRequest, terminal: Terminal) -> None:
        spec = CATALOGUE[operation]
        require_role(terminal, spec.roles, spec.title_en.lower())
        kiosk = terminal.role is Role.KIOSK
        found: list[Deficiency] = []
        if kiosk != (body.channel is Channel.KIOSK) or body.channel is Channel.ONLINE:
            found.append(
                Deficiency(
                    "case-not-allowed",
                    "该业务须在本网点窗口或自助机办理",
                    "This service needs the card at this branch's window or kiosk",
                )
            )
        found.extend(check_completeness(spec, body.case, body.channel, set(body.materials), None))
        for role, person in (("applicant", body.applicant), ("agent", body.agent)):
            if person is not None and not ric.is_valid(person.id_number):
                found.append(
                    Deficiency(
                        f"invalid:{role}-id-number",
                        f"{'申办人' if role == 'applicant' else '代办人'}身份证号码校验不通过",
                        f"The {role}'s identity number fails its check digit",
                    )
                )
        if found:
            raise CardServiceRefusal.one_time_notice(CardServiceReason.INCOMPLETE, found)

    def _window_of(self, terminal: Terminal) -> _Window:
        for window in self._settings.windows:
            if window.terminal == terminal.id and window.encoder in self._encoders:
                encoder, reader = self._encoders[window.encoder]
                return _Window(terminal.id, encoder, reader, window.pinpad)
        raise CardServiceRefusal(
            CardServiceReason.WINDOW_NOT_EQUIPPED,
            f"Terminal {terminal.id} has no card encoder assigned in [pin] windows.",
            f"终端 {terminal.id} 未在 [pin] windows 中配置读卡器。",
        )

    def _window(self, terminal: Terminal) -> tuple[_Window, PinPad]:
        window = self._window_of(terminal)
        pad = self.pads.get(window.pad_id)
        if pad is None:
            raise CardServiceRefusal(
                CardServiceReason.WINDOW_NOT_EQUIPPED,
                f"PIN pad {window.pad_id} of terminal {terminal.id} is not connected.",
                f"终端 {terminal.id} 的密码键盘 {window.pad_id} 未连接。",
            )
        return window, pad

    def _require_live_platform(self) -> None:
        if self._breaker is None or self._breaker.closed:
            return
        raise CardServiceRefusal(
            CardServiceReason.UPSTREAM_UNAVAILABLE,
            "The key service cannot be reached: PIN reset and unlock wait until the "
            "provincial platform is back. Nothing was queued.",
            "密钥服务暂时无法连接：密码重置和解锁暂停办理，待省级平台恢复后再试。本次请求未排队。",
            retry_after=round(self._breaker.retry_after(), 1),
        )

    @contextlib.asynccontextmanager
    async def _card(self, window: _Window, body: OperationRequest) -> Any:  # noqa: ANN401
        """One request at a time at a window: its card, read, with its tries left."""
        if window.reader in self._busy:  # a double click, a second teller system tab
            raise CardServiceRefusal(
                CardServiceReason.WINDOW_BUSY,
                "This window's reader and PIN pad serve another request now; nothing was done.",
                "本窗口的读卡器和密码键盘正在办理另一笔业务，本次未做任何操作。",
            )
        self._busy.add(window.reader)
        try:
            async with self._read_card(window, body) as found:
                yield found
        finally:
            self._busy.discard(window.reader)

    @contextlib.asynccontextmanager
    async def _read_card(self, window: _Window, body: OperationRequest) -> Any:  # noqa: ANN401
        """Connect, select, read the card and its tries left; check the holder."""
        try:
            channel = await window.encoder.connect(window.reader)
        except EncoderError as exc:
            raise _unreadable(window.reader, exc) from None
        try:
            application = SocialSecurityApplication(channel)
            try:
                await application.select()
                issuer = await application.read_issuer()
                holder = await application.read_holder()
                tries = await application.pin_tries_left()
            except ApplicationBlockedError:
                raise CardServiceRefusal(
                    CardServiceReason.CARD_APPLICATION_BLOCKED,
                    "The card's application is blocked; the issuing province must unblock it.",
                    "社保卡应用已被锁定，须由发卡地平台解除应用锁定。",
                ) from None
            except (EncoderError, SscardError) as exc:
                raise _unreadable(window.reader, exc) from None
            card = ChipCard(
                card_number=issuer.card_number,
                card_id_code=issuer.card_id_code,
                ssn=holder.ssn.upper(),
                atr=channel.atr.hex().upper(),
                generation=issuer.generation,
            )
            if card.ssn != body.applicant.id_number.upper():
                raise CardServiceRefusal(
                    CardServiceReason.CARD_HOLDER_MISMATCH,
                    "The card in the reader is not the applicant's; nothing was changed.",
                    "读卡器中的社保卡不是申办人的卡，未做任何更改。",
                    card_holder=card.holder_masked,
                )
            log.info(
                "card_read",
                reader=window.reader,
                card_number=card.card_number,
                issuer_region=card.region,
                tries_left=tries,
            )
            yield application, card, tries
        finally:
            with contextlib.suppress(EncoderError):
                await channel.close()

    async def _read(self, entry: Callable[[], Awaitable[EncryptedPinBlock]]) -> EncryptedPinBlock:
        try:
            return await entry()
        except PAD_ERRORS as exc:
            code = str(getattr(exc, "code", "pinpad-error"))
            raise CardServiceRefusal(
                CardServiceReason.PIN_PAD_FAILED,
                f"The PIN pad gave no PIN ({code}); nothing was changed.",
                f"密码键盘未完成输入（{code}），未做任何更改。",
                pad_code=code,
            ) from None

    async def _new_pin(self, pad: PinPad, card: ChipCard) -> EncryptedPinBlock:
        """The new PIN (entered twice); the initial PIN is refused before anything else."""
        new = await self._read(
            lambda: pad.read_new_pin(account=card.account, timeout=self._timeout)
        )
        try:
            default = self._keystore.verify_pin_block(new, card.account, sscard.DEFAULT_PIN)
        except (PinBlockError, KeyStoreError):
            raise CardServiceRefusal(
                CardServiceReason.PIN_PAD_FAILED,
                "The PIN pad's block does not open under its key; nothing was changed.",
                "密码键盘的密码块无法解开，未做任何更改。",
                pad_code="pinpad-block-invalid",
            ) from None
        if default:
            await _show(pad, Prompt.FAILED)
            raise CardServiceRefusal(
                CardServiceReason.PIN_DEFAULT_REFUSED,
                "The new PIN is the initial PIN 123456, which cards refuse; choose another.",
                "新密码不能为初始密码，请重新设置。",
            )
        return new

    async def _card_call(self, call: Callable[[], Awaitable[bytes]]) -> bytes:
        try:
            return await call()
        except (EncoderError, SscardError) as exc:
            raise _unreadable("", exc) from None

    async def _transmit(
        self, application: SocialSecurityApplication, command: CommandApdu, name: str
    ) -> None:
        """Send one command: a wrong PIN propagates, other refusals are CARD_REFUSED."""
        try:
            answer = await application.channel.transmit(command)
        except EncoderError as exc:
            raise _unreadable(application.channel.reader, exc) from None
        try:
            sscard.check(answer, name)
        except (WrongPinError, PinBlockedError, ConditionsNotSatisfiedError):
            if name in {"verify", "change_pin"}:
                raise
            raise _card_refused(name, answer.sw) from None
        except CardStatusError:
            raise _card_refused(name, answer.sw) from None

    async def _key_service(self, province: str, call: Callable[[], Awaitable[T]]) -> T:
        """A live platform call; failures explained with the province that should answer."""
        cross = province != province_of(self._region)
        try:
            return await call()
        except UpstreamUnavailableError as exc:
            raise CardServiceRefusal(
                CardServiceReason.UPSTREAM_UNAVAILABLE,
                exc.message_en,
                exc.message_zh,
                retry_after=round(exc.retry_after, 1) if exc.retry_after is not None else None,
            ) from None
        except UpstreamRejectedError as exc:
            via = " through the national hub" if cross else ""
            raise CardServiceRefusal(
                CardServiceReason.ISSUER_REFUSED,
                f"Province {province}{via} refused: {exc.status} ({exc.remote_message}). "
                "Nothing was changed on the card.",
                f"发卡地 {province} 平台拒绝办理：{exc.remote_message}。卡片未做任何更改。",
                province=province,
                cross_region=cross,
                platform_status=exc.status,
                platform_message=exc.remote_message,
            ) from None
        except UpstreamError as exc:
            raise CardServiceRefusal(
                CardServiceReason.ISSUER_UNREACHABLE,
                f"The answer for province {province} could not be used ({type(exc).__name__})"
                "; nothing was changed on the card. Try again later.",
                f"发卡地 {province} 平台应答异常，卡片未做任何更改，请稍后再试。",
                province=province,
                cross_region=cross,
            ) from None

    async def _query(self, ref: CardRef, province: str) -> AppState:
        return await self._key_service(province, lambda: self._platform.query_status(ref))

    def _context(self, terminal: Terminal, card: ChipCard) -> KeyServiceContext:
        return KeyServiceContext(
            terminal_id=terminal.id,
            region=self._region,
            social_security_number=card.ssn,
            card_number=card.card_number,
            card_id_code=card.card_id_code,
            atr=card.atr,
            algorithm="SM4" if card.generation >= 3 else "3DES",  # noqa: PLR2004 - generation
        )

    async def _wrong_pin(
        self,
        operation: Operation,
        terminal: Terminal,
        card: ChipCard,
        exc: WrongPinError | PinBlockedError,
        pad: PinPad,
    ) -> NoReturn:
        await _show(pad, Prompt.FAILED)
        if isinstance(exc, WrongPinError):
            left = exc.tries_left
            await self._audit_outcome(operation, terminal, card, "wrong-pin", left)
            raise CardServiceRefusal(
                CardServiceReason.PIN_WRONG,
                f"Wrong PIN; {left} tries left before the PIN locks. Nothing was changed.",
                f"密码错误，还可尝试 {left} 次，之后密码将被锁定。未做任何更改。",
                tries_left=left,
            )
        await self._sync_local(card, ApplicationEvent.LOCK, report=("pin-locked", 0))
        await self._locked(operation, terminal, card)

    async def _locked(self, operation: Operation, terminal: Terminal, card: ChipCard) -> NoReturn:
        await self._audit_outcome(operation, terminal, card, "locked", 0)
        raise CardServiceRefusal(
            CardServiceReason.PIN_LOCKED,
            "The PIN is locked (no tries left): unlock it, or reset the PIN, first.",
            "密码已锁定（无剩余尝试次数），请先办理解锁或密码重置。",
            tries_left=0,
        )

    async def _done(  # noqa: PLR0913, PLR0917 - one outcome's parts
        self,
        operation: Operation,
        terminal: Terminal,
        body: OperationRequest,
        card: ChipCard,
        before: int,
        after: int,
        message_en: str,
        message_zh: str,
    ) -> Outcome:
        receipt = await self._receipt(operation, terminal, body, card)
        await self._audit_outcome(operation, terminal, card, "completed", after, before)
        local = await self._local_states(card.card_number)
        outcome = self._outcome(
            operation, card, before, after, message_en, message_zh, local_state=local
        )
        return replace(outcome, receipt_number=receipt)

    async def _receipt(
        self, operation: Operation, terminal: Terminal, body: OperationRequest, card: ChipCard
    ) -> str | None:
        """The window operation's receipt (受理编号), to archive its images against.

        The holder is this branch's person record, made now for a card of another
        branch or province (found by the blind index, never overwritten).
        """
        if self._vault is None:
            return None
        now = self._clock.now()
        today = local_day(now)
        async with self._sessions.begin() as session:
            person = await hold_person(
                session, self._vault, card.ssn, now=now,
                new={"name": body.applicant.name, "phone": None, "address": None},
            )  # fmt: skip
            assert person is not None  # noqa: S101 - made when missing
            card_id = await session.scalar(
                select(CardRow.id).where(CardRow.card_number == card.card_number)
            )
            receipt = await next_receipt(session, self._region, today)
            session.add(
                ApplicationRow(
                    receipt_number=receipt, operation=operation.value, case=body.case.value,
                    channel=body.channel.value, status="completed", person_id=person.id,
                    card_id=card_id, terminal_id=terminal.id, fee_yuan=0, fee_waived=False,
                    accepted_at=now, deadline=today, completed_at=now,
                    archive_status=CATALOGUE[operation].archive_status(body.channel),
                )
            )  # fmt: skip
        return receipt

    def _outcome(  # noqa: PLR0913, PLR0917 - one outcome's parts
        self,
        operation: Operation,
        card: ChipCard,
        before: int | None,
        after: int | None,
        message_en: str,
        message_zh: str,
        *,
        application_state: str | None = None,
        local_state: dict[str, str] | None = None,
        chip_blocked: bool = False,
    ) -> Outcome:
        return Outcome(
            operation=operation,
            card_number=card.card_number,
            holder=card.holder_masked,
            issuer_region=card.region,
            issuer_province=card.province,
            cross_region=card.province != province_of(self._region),
            tries_left_before=before,
            tries_left_after=after,
            message_en=message_en,
            message_zh=message_zh,
            application_state=application_state,
            local_state=local_state,
            chip_blocked=chip_blocked,
        )

    async def _audit_outcome(  # noqa: PLR0913, PLR0917 - one outcome's parts
        self,
        operation: Operation,
        terminal: Terminal,
        card: ChipCard,
        outcome: str,
        tries_left: int | None,
        tries_before: int | None = None,
    ) -> None:
        details: dict[str, Any] = {
            "holder": card.holder_masked,
            "outcome": outcome,
            "tries_left": tries_left,
            "issuer_province": card.province,
            "cross_region": card.province != province_of(self._region),
        }
        if tries_before is not None:
            details["tries_left_before"] = tries_before
        await self._audit.append(
            terminal.id, f"card.{operation.value}", f"card:{card.card_number}", details
        )
        if self._on_outcome is not None:
            self._on_outcome(operation.value, outcome)
        log.info(
            "card_service",
            operation=operation.value,
            card_number=card.card_number,
            outcome=outcome,
            tries_left=tries_left,
            issuer_province=card.province,
        )

    async def _local_states(self, card_number: str) -> dict[str, str] | None:
        async with self._sessions() as session:
            row = (
                await session.scalars(select(CardRow).where(CardRow.card_number == card_number))
            ).first()
        return _states(row) if row is not None else None

    async def _sync_local(
        self,
        card: ChipCard,
        event: ApplicationEvent,
        *,
        report: tuple[str, int | None] | None = None,
    ) -> None:
        """Follow a lock or unlock in this branch's record of the card, if it has one.

        ``report`` (event, tries left) is queued for the issuing province in the
        same transaction: the outcome report may be retried, the PIN command never.
        """
        async with self._sessions.begin() as session:
            row = (
                await session.scalars(
                    select(CardRow).where(CardRow.card_number == card.card_number)
                )
            ).first()
            if row is not None and lifecycle.allowed(row, event):
                lifecycle.step(row, event)
            if report is not None:
                await self._enqueue_event(session, card, *report)
        if report is not None:
            self._wake()

    # -- outcome reports to the platform --
    async def _report(self, card: ChipCard, event: str, tries_left: int | None) -> None:
        """Queue a card event for the issuing province (its own transaction)."""
        if self._upstream is None:
            return
        async with self._sessions.begin() as session:
            await self._enqueue_event(session, card, event, tries_left)
        self._wake()

    async def _enqueue_event(
        self, session: AsyncSession, card: ChipCard, event: str, tries_left: int | None
    ) -> None:
        if self._upstream is None:
            return
        command = ReportCardEvent(
            CardRef(card.card_number, card.card_id_code),
            event,
            self._clock_now().isoformat(),
            tries_left,
        )
        await self._upstream.outbox.enqueue(session, command)
        log.info("card_event_queued", card_number=card.card_number, card_event=event)

    def _wake(self) -> None:
        if self._upstream is not None:
            self._upstream.relay.wake()

    def _clock_now(self) -> datetime:
        return self._clock.now()

    # -- end of outcome reports --


async def _cards_of(session: AsyncSession, index: str) -> list[CardRow]:
    person = (await session.scalars(select(PersonRow).where(PersonRow.id_index == index))).first()
    if person is None:
        return []
    statement = select(CardRow).where(CardRow.person_id == person.id).order_by(CardRow.id)
    return list((await session.scalars(statement)).all())


def _invalidated(platform_state: str, local: dict[str, str] | None) -> bool:
    """A formally lost or cancelled card (by the platform or this branch's records)."""
    if platform_state in INVALID_APPLICATION_STATES:
        return True
    return local is not None and local["card_state"] in INVALID_CARD_STATES


def _states(row: CardRow) -> dict[str, str]:
    return {
        "application_state": row.application_state,
        "card_state": row.card_state,
        "bank_state": row.bank_state,
    }


def _command(apdu: bytes) -> CommandApdu:
    try:
        return CommandApdu.from_bytes(apdu)
    except ApduError:
        raise CardServiceRefusal(
            CardServiceReason.ISSUER_UNREACHABLE,
            "The key service's command is not a valid APDU; nothing was sent to the card.",
            "密钥服务返回的指令格式错误，未发送至卡片。",
        ) from None


def _unreadable(reader: str, exc: Exception) -> CardServiceRefusal:
    return CardServiceRefusal(
        CardServiceReason.CARD_UNREADABLE,
        f"The card in reader {reader!r} cannot be read ({type(exc).__name__}); "
        "put the card in the reader and try again.",
        "无法读取读卡器中的社保卡，请插卡后重试。",
        reader=reader,
    )


def _card_refused(name: str, sw: int) -> CardServiceRefusal:
    return CardServiceRefusal(
        CardServiceReason.CARD_REFUSED,
        f"The card refused {name} (status {sw:04X}); nothing else was done.",
        f"社保卡拒绝执行 {name}（状态字 {sw:04X}），未做其他操作。",
        command=name,
        sw=f"{sw:04X}",
    )


async def _show(pad: PinPad, prompt: Prompt) -> None:
    """Tell the holder on the pad; a pad that cannot show it changes nothing."""
    with contextlib.suppress(*PAD_ERRORS):
        await pad.show(prompt)
