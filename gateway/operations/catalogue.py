"""The operation catalogue: one declarative table for the whole business.

Each :class:`OperationSpec` says, for one operation: which applicant cases it
accepts on which channel, the materials each case must bring, who may do it,
whether a supervisor must approve it, its fee, its time limit, what it does to
the card's state machines, what it asks of the upstream systems, and what is
archived. The completeness check, the HTTP API, the deadlines and
``docs/operations.md`` all read this table; no other code decides these rules.

Sources (``shared/seeds``): the Chongqing window procedures (001) for materials
per case and channel; the Changji standard DB 6523/T 372-2023 (002) for time
limits and the one-time notice, which wins where the two differ; the citizen
guide (000) for pickup by proxy and the photo rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from gateway.people.states import ApplicationEvent, BankEvent, CardEvent
from gateway.runtime.http.auth import Role
from protocols.documents import DocumentType

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "CATALOGUE",
    "DOCUMENT_MATERIAL",
    "ArchiveKind",
    "Case",
    "Channel",
    "Material",
    "Operation",
    "OperationSpec",
    "Requirement",
    "Role",
    "TimeLimit",
]


class Case(StrEnum):
    """Who stands at the counter for whom."""

    SELF = "self"  # 本人
    ADULT_PROXY = "adult-proxy"  # 他人代办（成年人）
    MINOR_PROXY = "minor-proxy"  # 他人代办（未成年人）/ guardian
    EMPLOYER_BATCH = "employer-batch"  # 单位经办人


class Channel(StrEnum):
    """Where the request comes from."""

    WINDOW = "window"  # 服务窗口
    KIOSK = "kiosk"  # 自助一体机
    ONLINE = "online"  # APP / web, forwarded to the branch


class Material(StrEnum):
    """Everything an applicant can bring; the values are stable codes."""

    APPLICANT_ID_CARD = "applicant-id-card"
    APPLICANT_TRAVEL_PERMIT = "applicant-travel-permit"
    APPLICANT_PASSPORT = "applicant-passport"
    APPLICANT_MILITARY_ID = "applicant-military-id"
    APPLICANT_HOUSEHOLD_REGISTER = "applicant-household-register"
    APPLICANT_RESIDENCE_PERMIT = "applicant-residence-permit"  # 港澳台居民居住证
    APPLICANT_PERMANENT_RESIDENCE = "applicant-permanent-residence"  # 外国人永久居留身份证
    APPLICANT_SS_CARD = "applicant-ss-card"
    PHOTO = "photo"
    AGENT_ID_CARD = "agent-id-card"
    AGENT_SS_CARD = "agent-ss-card"
    HANDLER_ID_CARD = "handler-id-card"
    HANDLER_SS_CARD = "handler-ss-card"
    BATCH_FILE = "batch-file"  # 制卡明细表 + photo and ID scans
    EMPLOYER_LETTER = "employer-letter"  # 单位介绍信
    AUTHORIZATION_LETTER = "authorization-letter"  # 持卡人签名的委托书
    RECEIPT = "receipt"  # 受理编号 / acceptance slip


@dataclass(frozen=True, slots=True)
class Requirement:
    """One item of a checklist: satisfied by any one of ``any_of``."""

    code: str
    any_of: frozenset[Material]
    title_zh: str
    title_en: str


def _req(code: str, materials: set[Material], zh: str, en: str) -> Requirement:
    return Requirement(code, frozenset(materials), zh, en)


_M = Material
IDENTITY_DOCS: Final = {
    _M.APPLICANT_ID_CARD,
    _M.APPLICANT_TRAVEL_PERMIT,
    _M.APPLICANT_RESIDENCE_PERMIT,
    _M.APPLICANT_PERMANENT_RESIDENCE,
    _M.APPLICANT_PASSPORT,
    _M.APPLICANT_MILITARY_ID,
}
#: The applicant's material each identity document is.
DOCUMENT_MATERIAL: Final = {
    DocumentType.PRC_ID_CARD: _M.APPLICANT_ID_CARD,
    DocumentType.HMT_TRAVEL_PERMIT: _M.APPLICANT_TRAVEL_PERMIT,
    DocumentType.HMT_RESIDENCE_PERMIT: _M.APPLICANT_RESIDENCE_PERMIT,
    DocumentType.FOREIGN_PERMANENT_RESIDENCE: _M.APPLICANT_PERMANENT_RESIDENCE,
    DocumentType.PASSPORT: _M.APPLICANT_PASSPORT,
    DocumentType.MILITARY_ID: _M.APPLICANT_MILITARY_ID,
    DocumentType.HOUSEHOLD_REGISTER: _M.APPLICANT_HOUSEHOLD_REGISTER,
}
APPLICANT_IDENTITY: Final = _req(
    "applicant-identity",
    IDENTITY_DOCS,
    "申办人身份证/港澳台居民来往内地通行证/护照/军官证原件",
    "Applicant's ID card, travel permit, passport or military ID (original)",
)
APPLICANT_IDENTITY_OR_CARD: Final = _req(
    "applicant-identity-or-card",
    IDENTITY_DOCS | {_M.APPLICANT_SS_CARD},
    "申办人身份证件或社保卡原件",
    "Applicant's identity document or social security card (original)",
)
APPLICANT_CARD_OR_ID: Final = _req(
    "applicant-card-or-id",
    {_M.APPLICANT_SS_CARD, _M.APPLICANT_ID_CARD},
    "申办人社保卡或身份证原件",
    "Applicant's social security card or ID card (original)",
)
APPLICANT_CARD: Final = _req(
    "applicant-card",
    {_M.APPLICANT_SS_CARD},
    "参保人社会保障卡原件",
    "The holder's social security card (original)",
)
MINOR_IDENTITY: Final = _req(
    "minor-identity",
    {_M.APPLICANT_ID_CARD, _M.APPLICANT_HOUSEHOLD_REGISTER},
    "申办人身份证或户口簿原件",
    "Applicant's ID card or household register (original)",
)
MINOR_IDENTITY_OR_CARD: Final = _req(
    "minor-identity-or-card",
    {_M.APPLICANT_HOUSEHOLD_REGISTER, _M.APPLICANT_SS_CARD},
    "申办人户口簿或社保卡原件",
    "Applicant's household register or social security card (original)",
)
AGENT_IDENTITY: Final = _req(
    "agent-identity",
    {_M.AGENT_ID_CARD, _M.AGENT_SS_CARD},
    "代办人身份证或社保卡原件",
    "Agent's ID card or social security card (original)",
)
PHOTO: Final = _req(
    "photo",
    {_M.PHOTO},
    "1寸白底免冠登记照（JPEG，358×441像素，不低于300DPI）",
    "Passport-style photo on white (JPEG, 358x441 px, at least 300 DPI)",
)
HANDLER_IDENTITY: Final = _req(
    "handler-identity",
    {_M.HANDLER_ID_CARD, _M.HANDLER_SS_CARD},
    "单位经办人身份证或社保卡原件",
    "Employer handler's ID card or social security card (original)",
)
BATCH_SUBMISSION: Final = _req(
    "batch-submission",
    {_M.BATCH_FILE, _M.EMPLOYER_LETTER},
    "批量报盘文件（制卡明细表及照片、证件扫描件）或单位介绍信及纸质材料",
    "Batch file (card list with photo and ID scans) or employer letter with paper materials",
)
AUTHORIZATION: Final = _req(
    "authorization-letter",
    {_M.AUTHORIZATION_LETTER},
    "持卡人签名的委托书（注明代领原因及双方关系）",
    "Authorization letter signed by the holder (reason and relationship)",
)
RECEIPT: Final = _req(
    "receipt",
    {_M.RECEIPT},
    "受理编号或受理凭证",
    "Receipt number or acceptance slip",
)
HOLDER_ID_FOR_PICKUP: Final = _req(
    "holder-id-card",
    {_M.APPLICANT_ID_CARD},
    "持卡人身份证原件（或复印件）",
    "Holder's ID card (original or copy)",
)
HOUSEHOLD_REGISTER: Final = _req(
    "household-register",
    {_M.APPLICANT_HOUSEHOLD_REGISTER},
    "户口簿（证明监护关系）",
    "Household register (proves guardianship)",
)


class ArchiveKind(StrEnum):
    """What a window operation keeps, and what an archived image shows.

    Seed 001: 留存凭证影像及办理场景影像, 签字确认. An application's archive is
    complete once an image of each kind its operation keeps is archived with it.
    """

    CREDENTIAL = "credential-image"  # 凭证影像
    SCENE = "scene-image"  # 办理场景影像
    SIGNATURE = "signature"  # 签字板签名, or the signed printed form


WINDOW_ARCHIVE: Final = frozenset(ArchiveKind)


@dataclass(frozen=True, slots=True)
class TimeLimit:
    """How long the operation may take: at once, or a number of working days."""

    workdays: int = 0  # 0: at once (即时办结)
    #: For "at once" operations that depend on devices: the most a fault may delay it.
    fault_hours: int | None = None

    @property
    def immediate(self) -> bool:
        """True for operations finished at the counter."""
        return self.workdays == 0


AT_ONCE: Final = TimeLimit()
AT_ONCE_24H: Final = TimeLimit(fault_hours=24)


class Operation(StrEnum):
    """Every business operation; the values are the API's stable names."""

    APPLY = "apply"
    BATCH_APPLY = "batch-apply"
    BATCH_TO_SINGLE = "batch-to-single"
    ACTIVATE = "activate"
    REISSUE = "reissue"
    REPLACE = "replace"
    RENEW = "renew"
    STATUS_QUERY = "status-query"
    INFO_CHANGE = "info-change"
    PIN_CHANGE = "pin-change"
    PIN_RESET = "pin-reset"
    UNLOCK = "unlock"
    REPORT_TEMPORARY_LOSS = "report-temporary-loss"
    REPORT_FORMAL_LOSS = "report-formal-loss"
    CANCEL_LOSS = "cancel-loss"
    CANCEL = "cancel"
    ROLLBACK = "rollback"
    ELECTRONIC_CARD = "electronic-card"
    PICKUP = "pickup"


@dataclass(frozen=True, slots=True)
class OperationSpec:
    """Everything the rules say about one operation."""

    operation: Operation
    title_zh: str
    title_en: str
    #: The checklist per applicant case.
    requirements: Mapping[Case, tuple[Requirement, ...]]
    #: Which cases each channel accepts.
    channels: Mapping[Channel, frozenset[Case]]
    time_limit: TimeLimit = AT_ONCE
    #: Time limits that differ by channel (online applications).
    time_limits: Mapping[Channel, TimeLimit] = field(default_factory=dict)
    roles: frozenset[Role] = frozenset({Role.TELLER, Role.SUPERVISOR})
    #: Only the holder in person (PIN change, batch-to-single).
    holder_only: bool = False
    #: Makes a new card record (and the person's record when new); refused while
    #: the person has a card that is not cancelled.
    new_card: bool = False
    #: Only for the holder of a card that is not cancelled (持卡人: information
    #: change; the electronic card is linked to the physical one).
    needs_card: bool = False
    #: Needs a supervisor's approval bound to the exact request.
    needs_approval: bool = False
    #: Fee in yuan (工本费); a waiver needs a supervisor's approval.
    fee_yuan: int = 0
    application_event: ApplicationEvent | None = None
    card_event: CardEvent | None = None
    #: What the operation does to the bank account when its scope covers the bank
    #: (``None``: the operation takes no scope).
    bank_event: BankEvent | None = None
    #: The scope of a request that names none (see docs/operations.md, "Scope"):
    #: ``both`` reaches the bank only where this branch has one and the account
    #: is in a state the event applies to.
    default_scope: str = "social-security"
    #: Upstream calls, in order (names of the platform / bank client operations).
    upstream: tuple[str, ...] = ()
    #: Needs the live key service (PIN commands): never queued, never replayed.
    live_only: bool = False
    archive: frozenset[ArchiveKind] = WINDOW_ARCHIVE
    #: The checklist on site (window, kiosk) where it differs from ``requirements``:
    #: 002 §6.1.3.2 lists what is shown in person (the card for activation and the
    #: status query, c), while an online request proves identity its own way.
    on_site: Mapping[Case, tuple[Requirement, ...]] = field(default_factory=dict)
    #: Clauses of the seed documents this entry implements (for docs/operations.md).
    sources: tuple[str, ...] = ()

    def requirements_for(self, case: Case, channel: Channel) -> tuple[Requirement, ...]:
        """The checklist of ``case`` on ``channel`` (on site: ``on_site`` where given)."""
        if channel in ON_SITE and case in self.on_site:
            return self.on_site[case]
        return self.requirements.get(case, ())

    def allowed_cases(self, channel: Channel) -> frozenset[Case]:
        """Cases this operation accepts on ``channel`` (empty: not on that channel)."""
        return self.channels.get(channel, frozenset())

    @property
    def completes_at_counter(self) -> bool:
        """True when the operation is done once accepted (no card has to be made)."""
        return self.card_event not in _PRODUCTION_EVENTS

    def limit_for(self, channel: Channel) -> TimeLimit:
        """The time limit on ``channel``."""
        return self.time_limits.get(channel, self.time_limit)

    def fault_deadline(self, channel: Channel) -> int | None:
        """Hours a device or network fault may delay this "at once" operation (001 §1.1.3)."""
        return self.limit_for(channel).fault_hours

    def archive_for(self, channel: Channel) -> frozenset[ArchiveKind]:
        """The images a request on ``channel`` keeps: the window's (001), none elsewhere."""
        return self.archive if channel is Channel.WINDOW else frozenset()

    def archive_status(self, channel: Channel) -> str:
        """An accepted request's archive status: ``incomplete`` until its images come."""
        return "incomplete" if self.archive_for(channel) else "not-required"


_PRODUCTION_EVENTS: Final = frozenset(
    {CardEvent.START_PRODUCTION, CardEvent.START_REISSUE, CardEvent.START_REPLACEMENT}
)
_C, _CH = Case, Channel
_ALL_PERSONAL: Final = frozenset({_C.SELF, _C.ADULT_PROXY, _C.MINOR_PROXY})
_SELF_ONLY: Final = frozenset({_C.SELF})
#: Channels where the materials are shown in person (002 §6.1.3.2 现场办理).
ON_SITE: Final = frozenset({_CH.WINDOW, _CH.KIOSK})
#: The card or an identity document; a proxy brings their own identity too. For
#: operations where the holder's card need not be at hand (a loss report, a rollback).
_PROXY_CHECKLIST: Final = {
    _C.SELF: (APPLICANT_CARD_OR_ID,),
    _C.ADULT_PROXY: (APPLICANT_CARD_OR_ID, AGENT_IDENTITY),
    _C.MINOR_PROXY: (APPLICANT_CARD_OR_ID, AGENT_IDENTITY),
}
#: 002 §6.1.3.2 d) (wins over 001's "card or ID"): a proxy brings the principal's
#: identity document **and** card, and their own identity document. For operations
#: done to a card that is at hand (not for a loss report or a reissue: the card is
#: lost; not for an application or pickup: there is no card yet).
_CARD_AT_HAND_CHECKLIST: Final = {
    _C.SELF: (APPLICANT_CARD_OR_ID,),
    _C.ADULT_PROXY: (APPLICANT_IDENTITY, APPLICANT_CARD, AGENT_IDENTITY),
    _C.MINOR_PROXY: (MINOR_IDENTITY, APPLICANT_CARD, AGENT_IDENTITY),
}
#: 002 §6.1.3.2 a) and c): activation and the status query in person need the
#: holder's identity document and card.
_IDENTITY_AND_CARD: Final = {_C.SELF: (APPLICANT_IDENTITY, APPLICANT_CARD)}
_REISSUE_CHECKLIST: Final = {
    _C.SELF: (APPLICANT_IDENTITY_OR_CARD,),
    _C.ADULT_PROXY: (APPLICANT_IDENTITY_OR_CARD, AGENT_IDENTITY),
    _C.MINOR_PROXY: (MINOR_IDENTITY_OR_CARD, AGENT_IDENTITY),
    _C.EMPLOYER_BATCH: (HANDLER_IDENTITY, BATCH_SUBMISSION),
}
#: Replacing a damaged or expiring card: the old card is handed in, so a proxy
#: brings it with the principal's identity document (002 §6.1.3.2 d).
_EXCHANGE_CHECKLIST: Final = {
    **_REISSUE_CHECKLIST,
    _C.ADULT_PROXY: _CARD_AT_HAND_CHECKLIST[_C.ADULT_PROXY],
    _C.MINOR_PROXY: _CARD_AT_HAND_CHECKLIST[_C.MINOR_PROXY],
}
#: An employer's batch reissue is brought to the window (001 §3.2), never to a kiosk.
_REISSUE_CHANNELS: Final = {
    _CH.WINDOW: frozenset(_REISSUE_CHECKLIST),
    _CH.KIOSK: _ALL_PERSONAL,
}
_KIOSK_TOO: Final = frozenset({Role.TELLER, Role.SUPERVISOR, Role.KIOSK})


_SPECS: Final = [
    OperationSpec(
        Operation.APPLY,
        "社保卡申领",
        "Apply for a card",
        requirements={
            _C.SELF: (APPLICANT_IDENTITY, PHOTO),
            _C.ADULT_PROXY: (APPLICANT_IDENTITY, PHOTO, AGENT_IDENTITY),
            # A minor's photo is optional (凭本人意愿).
            _C.MINOR_PROXY: (MINOR_IDENTITY, AGENT_IDENTITY),
        },
        channels={
            _CH.WINDOW: _ALL_PERSONAL,
            _CH.KIOSK: _ALL_PERSONAL,
            # Online new cards are never made by proxy for an adult (001 §1.1.2).
            _CH.ONLINE: frozenset({_C.SELF, _C.MINOR_PROXY}),
        },
        time_limit=AT_ONCE_24H,
        # DB 6523/T 372-2023 §6.3.1: online applications 30-40 working days.
        time_limits={_CH.ONLINE: TimeLimit(workdays=30)},
        roles=_KIOSK_TOO,
        new_card=True,
        card_event=CardEvent.START_PRODUCTION,
        # The bank account is opened and bound when the card is issued (production).
        upstream=("apply",),
        sources=("001 §1.1", "000 线上申请", "002 §6.3.1"),
    ),
    OperationSpec(
        Operation.BATCH_APPLY,
        "批量申领",
        "Batch application by an employer",
        requirements={_C.EMPLOYER_BATCH: (HANDLER_IDENTITY, BATCH_SUBMISSION)},
        channels={
            _CH.WINDOW: frozenset({_C.EMPLOYER_BATCH}),
            _CH.KIOSK: frozenset({_C.EMPLOYER_BATCH}),
        },
        time_limit=TimeLimit(workdays=10),
        roles=_KIOSK_TOO,
        new_card=True,
        card_event=CardEvent.START_PRODUCTION,
        upstream=("apply",),
        sources=("001 §1.2",),
    ),
    OperationSpec(
        Operation.BATCH_TO_SINGLE,
        "批量转零星",
        "Batch to single (made at once)",
        requirements={_C.SELF: (APPLICANT_IDENTITY,)},
        channels={_CH.WINDOW: _SELF_ONLY},
        time_limit=AT_ONCE_24H,
        holder_only=True,
        needs_approval=True,
        card_event=CardEvent.START_PRODUCTION,
        upstream=("get_card_data",),
        sources=("001 §1.3",),
    ),
    OperationSpec(
        Operation.ACTIVATE,
        "社保卡启用（激活）",
        "Activate the social-security function",
        requirements={
            _C.SELF: (APPLICANT_CARD_OR_ID,),
            _C.EMPLOYER_BATCH: (HANDLER_IDENTITY,),
        },
        on_site=_IDENTITY_AND_CARD,
        channels={
            _CH.WINDOW: frozenset({_C.SELF, _C.EMPLOYER_BATCH}),
            _CH.KIOSK: _SELF_ONLY,
            _CH.ONLINE: _SELF_ONLY,
        },
        roles=_KIOSK_TOO,
        application_event=ApplicationEvent.ENABLE,
        card_event=CardEvent.ACTIVATE,
        # 000: 社保账户和银行账户两个功能, 需分别激活; the bank's at its counter on request.
        bank_event=BankEvent.ACTIVATE,
        upstream=("enable", "bank.activate_financial"),
        sources=("001 §2", "000 领卡激活"),
    ),
    *(
        OperationSpec(
            operation,
            zh,
            en,
            requirements=checklist,
            channels=_REISSUE_CHANNELS,
            time_limit=AT_ONCE_24H,
            time_limits={_CH.ONLINE: TimeLimit(workdays=30)},
            roles=_KIOSK_TOO,
            fee_yuan=20,
            card_event=event,
            upstream=("apply", "bank.debit_fee"),
            sources=("001 §3", "000 费用问题"),
        )
        for operation, zh, en, event, checklist in (
            (
                Operation.REISSUE,
                "补领",
                "Reissue after loss",
                CardEvent.START_REISSUE,
                _REISSUE_CHECKLIST,
            ),
            (
                Operation.REPLACE,
                "换领",
                "Replace a damaged card",
                CardEvent.START_REPLACEMENT,
                _EXCHANGE_CHECKLIST,
            ),
            (
                Operation.RENEW,
                "换发",
                "Renew an expiring card",
                CardEvent.START_REPLACEMENT,
                _EXCHANGE_CHECKLIST,
            ),
        )
    ),
    OperationSpec(
        Operation.STATUS_QUERY,
        "应用状态查询",
        "Status query",
        requirements=_CARD_AT_HAND_CHECKLIST,
        on_site=_IDENTITY_AND_CARD,
        channels={_CH.WINDOW: _ALL_PERSONAL, _CH.KIOSK: _ALL_PERSONAL, _CH.ONLINE: _SELF_ONLY},
        roles=_KIOSK_TOO | {Role.ARCHIVE},
        upstream=("status_query",),
        # Read the card or the identity document, tell the result, return the originals.
        archive=frozenset(),
        sources=("001 §8",),
    ),
    OperationSpec(
        Operation.INFO_CHANGE,
        "信息变更（非关键信息）",
        "Change address or phone",
        requirements={_C.SELF: (APPLICANT_CARD_OR_ID,)},
        channels={_CH.WINDOW: _SELF_ONLY},
        needs_card=True,
        upstream=("change_info", "bank.update_contact"),
        sources=("001 §4",),
    ),
    OperationSpec(
        Operation.PIN_CHANGE,
        "密码修改",
        "Change the PIN",
        requirements={_C.SELF: (APPLICANT_CARD_OR_ID,)},
        channels={_CH.WINDOW: _SELF_ONLY, _CH.KIOSK: _SELF_ONLY},
        roles=_KIOSK_TOO,
        holder_only=True,
        live_only=True,
        sources=("001 §5", "002 §3 跨省服务"),
    ),
    OperationSpec(
        Operation.PIN_RESET,
        "密码重置",
        "Reset the PIN",
        requirements=_CARD_AT_HAND_CHECKLIST,
        channels={_CH.WINDOW: _ALL_PERSONAL, _CH.KIOSK: _ALL_PERSONAL},
        roles=_KIOSK_TOO,
        live_only=True,
        upstream=("pin_reset_authorization",),
        sources=("001 §5", "002 §3 跨省服务"),
    ),
    OperationSpec(
        Operation.UNLOCK,
        "解锁",
        "Unlock the application",
        requirements=_CARD_AT_HAND_CHECKLIST,
        channels={_CH.WINDOW: _ALL_PERSONAL},
        live_only=True,
        application_event=ApplicationEvent.UNLOCK,
        upstream=("unlock_authorization",),
        sources=("001 §7", "002 §3 跨省服务"),
    ),
    *(
        OperationSpec(
            operation,
            zh,
            en,
            requirements=checklist,
            channels={
                _CH.WINDOW: _ALL_PERSONAL,
                _CH.KIOSK: _ALL_PERSONAL,
                _CH.ONLINE: _SELF_ONLY,
            },
            roles=_KIOSK_TOO,
            application_event=app_event,
            card_event=card_event,
            bank_event=bank_event,
            # A lost card exposes both functions (000: 丢失后需立即挂失): by default a
            # loss freezes the bank account too, where the branch has the bank.
            default_scope="both",
            upstream=upstream,
            sources=("001 §6", "000 安全保护"),
        )
        for operation, zh, en, app_event, card_event, bank_event, upstream, checklist in (
            (
                Operation.REPORT_TEMPORARY_LOSS,
                "临时挂失",
                "Report a temporary loss",
                ApplicationEvent.REPORT_TEMPORARY_LOSS,
                CardEvent.REPORT_TEMPORARY_LOSS,
                BankEvent.FREEZE,
                ("report_loss", "bank.freeze"),
                _PROXY_CHECKLIST,  # the card is lost
            ),
            (
                Operation.REPORT_FORMAL_LOSS,
                "正式挂失",
                "Report a formal loss",
                ApplicationEvent.REPORT_FORMAL_LOSS,
                CardEvent.REPORT_FORMAL_LOSS,
                BankEvent.FREEZE,
                ("report_loss", "bank.freeze"),
                _PROXY_CHECKLIST,  # the card is lost
            ),
            (
                Operation.CANCEL_LOSS,
                "解挂",
                "Cancel a temporary loss",
                ApplicationEvent.CANCEL_LOSS,
                CardEvent.CANCEL_LOSS,
                BankEvent.UNFREEZE,
                ("cancel_loss", "bank.unfreeze"),
                _CARD_AT_HAND_CHECKLIST,  # the card was found
            ),
        )
    ),
    *(
        OperationSpec(
            operation,
            zh,
            en,
            requirements=checklist,
            channels={_CH.WINDOW: _ALL_PERSONAL},
            needs_approval=True,
            application_event=app_event,
            card_event=card_event,
            bank_event=bank_event,
            upstream=upstream,
            sources=("001 §9",),
        )
        # Cancellation closes the bank account only when asked (scope bank / both):
        # an account with a balance is the bank's to settle. Rollback restores what
        # the cancellation undid, whatever its scope was (the card's histories).
        for operation, zh, en, app_event, card_event, bank_event, upstream, checklist in (
            (
                Operation.CANCEL,
                "注销",
                "Cancel the card",
                ApplicationEvent.CANCEL,
                CardEvent.CANCEL,
                BankEvent.CLOSE,
                ("cancel_card", "bank.close_account"),
                _CARD_AT_HAND_CHECKLIST,  # the card is handed in
            ),
            (
                Operation.ROLLBACK,
                "注销回退",
                "Roll back a cancellation",
                ApplicationEvent.ROLLBACK,
                CardEvent.ROLLBACK,
                BankEvent.REOPEN,
                ("rollback_cancel", "bank.reopen_account"),
                _PROXY_CHECKLIST,  # the card was handed in at the cancellation
            ),
        )
    ),
    OperationSpec(
        Operation.ELECTRONIC_CARD,
        "电子社保卡申领",
        "Electronic card",
        requirements={_C.SELF: (APPLICANT_CARD_OR_ID,)},
        channels={_CH.WINDOW: _SELF_ONLY, _CH.KIOSK: _SELF_ONLY, _CH.ONLINE: _SELF_ONLY},
        roles=_KIOSK_TOO,
        holder_only=True,
        needs_card=True,
        upstream=("electronic_card",),
        sources=("DESIGN 电子社保卡",),
    ),
    OperationSpec(
        Operation.PICKUP,
        "领卡",
        "Pick up a card",
        requirements={
            _C.SELF: (APPLICANT_IDENTITY_OR_CARD, RECEIPT),
            _C.ADULT_PROXY: (AGENT_IDENTITY, HOLDER_ID_FOR_PICKUP, AUTHORIZATION),
            _C.MINOR_PROXY: (AGENT_IDENTITY, HOUSEHOLD_REGISTER, MINOR_IDENTITY),
            # A new handler also brings the employer's letter (001 §1.2.3).
            _C.EMPLOYER_BATCH: (HANDLER_IDENTITY,),
        },
        channels={_CH.WINDOW: _ALL_PERSONAL | {_C.EMPLOYER_BATCH}},
        card_event=CardEvent.PICK_UP,
        sources=("000 问题2", "001 §1.1.3", "001 §1.2.3"),
    ),
]

#: The catalogue, by operation.
CATALOGUE: Final[Mapping[Operation, OperationSpec]] = {s.operation: s for s in _SPECS}
