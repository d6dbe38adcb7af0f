"""Instant issuance and the blank-card stock in the teller API.

- ``POST /v1/production/jobs``: make the card of an accepted application now.
- ``GET /v1/production/jobs/{job}``: where the job stands (no personal data).
- ``GET /v1/production/queue``: stations, unfinished jobs, cards waiting for QC.
- ``POST /v1/production/jobs/{job}/quality-check``: the teller's verdict.
- ``POST /v1/production/stations/{name}/pause`` and ``/resume``.
- ``GET /v1/stock``; ``POST /v1/stock/loads``, ``/destructions``,
  ``/reconciliations``; ``POST /v1/stock/approvals`` (a supervisor approves one
  exact adjustment) then ``POST /v1/stock/adjustments`` with ``X-Approval-ID``.

Every POST takes an ``Idempotency-Key``; every change is in the audit log.

Stock counts are JSON integers, never booleans, strings or fractions: a load
or destruction moves 1 to 10,000 cards, a counted feeder holds 0 or more. A
feeder is one of the configured stations' (``[production] stations``, their
``feeder`` or name); destructions, adjustments and counts may also name a
feeder the ledger already holds (a station since removed). Any other name is
refused with ``stock-unknown-feeder`` and nothing is written.

Why one module of this size: it is the production and stock part of the API,
one section with one context; its handlers are thin and share the request
models and the stock checks (feeders, counts, approvals).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from gateway.approvals.service import Approvals, Required
from gateway.issuance.rows import ProductionJobRow
from gateway.issuance.service import IssueRefusedError
from gateway.operations.catalogue import Role
from gateway.runtime.http.auth import require_role
from gateway.runtime.http.idempotency import request_digest
from gateway.runtime.http.kit import (
    APPROVAL_HEADER,
    ID_SCHEMA,
    ApiSection,
    TellerContext,
    approval_header,
    json_response,
    parse_body,
    path_id,
    post_once,
)
from gateway.runtime.problems import NOT_FOUND, ProblemError, register
from production import (
    ApprovalRequiredError,
    DeviceOfflineError,
    NoBlanksError,
    NoEncoderError,
    NoStationError,
    PreconditionError,
    Priority,
    QcVerdict,
    StockError,
    UnknownJobError,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from gateway.issuance.service import ProductionService
    from gateway.runtime.http.auth import Terminal
    from gateway.runtime.http.kit import OpenApiKit
    from production import JobRecord, Reconciliation, StockBalance

__all__ = ["SECTION"]

# 404: the branch has no such service (not a passing outage worth a retry).
PRODUCTION_OFF: Final = register(
    "production-not-configured",
    404,
    "Instant issuance is not configured at this branch",
    "本网点未配置即时制卡",
)
NOT_PRODUCIBLE: Final = register(
    "production-not-producible",
    409,
    "This application does not make a card, or its card cannot be made now",
    "该受理业务无需制卡，或卡片当前状态不能制卡",
)
FEE_DUE: Final = register(
    "production-fee-due",
    409,
    "The application owes its fee; the card is made once it is settled",
    "该业务尚未缴纳工本费，缴费后方可制卡",
)
NO_STATION: Final = register(
    "production-no-station",
    503,
    "No issuance station is configured",
    "未配置制卡工位",
    retryable=False,
)
NO_ENCODER: Final = register(
    "production-no-encoder",
    503,
    "No station has a chip encoder configured",
    "没有配置读写卡器的制卡工位",
    retryable=False,
)
DEVICE_OFFLINE: Final = register(
    "production-device-offline",
    503,
    "No station with an encoder is online",
    "带读写卡器的制卡工位均不在线",
)
NO_BLANKS: Final = register(
    "production-no-blanks", 409, "No blank cards left in the feeders", "进卡器中没有空白卡"
)
QC_NOT_WAITING: Final = register(
    "production-qc-not-waiting",
    409,
    "This job's card is not waiting for a quality check",
    "该任务的卡片当前不在等待质检",
)
STOCK_REFUSED: Final = register(
    "stock-refused", 422, "The stock movement is not possible", "库存操作不成立"
)
UNKNOWN_FEEDER: Final = register(
    "stock-unknown-feeder", 422, "No such feeder at this branch", "本网点无此进卡器"
)
STOCK_APPROVAL: Final = "stock-adjustment"
#: How a refusal for want of an approval tells the teller to get one. The approvals'
#: refusals are answered by the operations' section (its table maps their reasons).
STOCK_APPROVAL_REQUIRED: Final = Required(
    "A stock adjustment needs a supervisor's approval of this exact request "
    "(POST /v1/stock/approvals, then send X-Approval-ID).",
    "库存调整需主管对本次请求授权（POST /v1/stock/approvals 后携带 X-Approval-ID）。",
)
#: Where the stock approvals' ids are drawn from.
_APPROVAL_IDS: Final = random.SystemRandom()
_PRECONDITIONS: Final = {
    NoStationError: NO_STATION,
    NoEncoderError: NO_ENCODER,
    DeviceOfflineError: DEVICE_OFFLINE,
    NoBlanksError: NO_BLANKS,
}
_PRECONDITION_ZH: Final = {
    NoStationError: "未配置制卡工位；未做任何更改。",
    NoEncoderError: "没有配置读写卡器的制卡工位；未做任何更改。",
    DeviceOfflineError: "制卡设备不在线；未做任何更改。",
    NoBlanksError: "进卡器中没有空白卡，请先装卡；未做任何更改。",
}
_STRICT = ConfigDict(extra="forbid", frozen=True)
_MAKERS: Final = frozenset({Role.TELLER, Role.SUPERVISOR})
_WATCHERS: Final = frozenset({Role.TELLER, Role.SUPERVISOR, Role.OPS})
_NAME_PATTERN: Final = r"^[A-Za-z0-9._-]{1,64}$"  # a feeder's name, as in the configuration
_Name = Field(pattern=_NAME_PATTERN)
MAX_MOVE: Final = 10_000  # cards one load, destruction or adjustment may move
MAX_COUNT: Final = 1_000_000  # blanks an operator may count in one feeder
#: A feeder's name as a key of ``counted``.
FeederName = Annotated[str, Field(pattern=_NAME_PATTERN)]
#: Blanks counted in a feeder: a JSON integer (not ``true``, ``"3"`` or ``3.0``), 0 or more.
Count = Annotated[int, Field(strict=True, ge=0, le=MAX_COUNT)]


# ---------------------------------------------------------------------------- models


class JobIn(BaseModel):
    """Make the card of an accepted application."""

    model_config = _STRICT

    receipt_number: str = Field(min_length=1, max_length=32, description="受理编号")
    ethnicity: str = Field(default="01", pattern=r"^[0-9]{2}$", description="民族 (GB 3304)")
    priority: Literal["window", "batch"] = "window"


class JobOut(BaseModel):
    """A production job as the teller sees it (no personal data)."""

    model_config = _STRICT

    job_id: str
    receipt_number: str
    status: str = Field(description="queued, running, issued or failed")
    step: str | None
    phase: str | None
    card_seq: int = Field(description="Which blank the job is on (1, then one more per spoiled)")
    station: str | None
    card_number: str | None
    waiting_for_quality_check: bool
    failure: str | None
    created_at: dt.datetime


class QcIn(BaseModel):
    """The teller's verdict on a made card."""

    model_config = _STRICT

    passed: bool = Field(strict=True)
    reason: str = Field(default="", max_length=64, pattern=r"^[a-z0-9_-]*$")


class StationOut(BaseModel):
    """One station."""

    model_config = _STRICT

    name: str
    paused: str | None
    job_id: str | None
    waiting_jobs: int


class QueueOut(BaseModel):
    """Stations, unfinished jobs and cards waiting for QC."""

    model_config = _STRICT

    stations: list[StationOut]
    jobs: list[JobOut]
    quality_checks: list[str]


class FeederOut(BaseModel):
    """One feeder's stock."""

    model_config = _STRICT

    feeder: str
    loaded: int
    adjusted: int
    taken: int
    issued: int
    spoiled: int
    destroyed: int
    in_process: int
    remaining: int


class StockOut(BaseModel):
    """Every feeder's stock."""

    model_config = _STRICT

    feeders: list[FeederOut]


class LoadIn(BaseModel):
    """Blanks put into a feeder."""

    model_config = _STRICT

    feeder: str = _Name
    quantity: int = Field(strict=True, gt=0, le=MAX_MOVE)
    box: str = Field(min_length=1, max_length=64, description="Box or batch number")


class DestroyIn(BaseModel):
    """Spoiled cards destroyed."""

    model_config = _STRICT

    feeder: str = _Name
    quantity: int = Field(strict=True, gt=0, le=MAX_MOVE)
    reason: str = Field(min_length=1, max_length=128)


class AdjustmentIn(BaseModel):
    """A correction of a feeder's remaining count (needs a supervisor's approval)."""

    model_config = _STRICT

    feeder: str = _Name
    delta: int = Field(strict=True, ge=-MAX_MOVE, le=MAX_MOVE)
    reason: str = Field(min_length=1, max_length=128)


class StockApprovalIn(BaseModel):
    """A supervisor approves one exact adjustment."""

    model_config = _STRICT

    adjustment: AdjustmentIn
    reason: str = Field(default="", max_length=256)


class StockApprovalOut(BaseModel):
    """The approval to send as ``X-Approval-ID``."""

    model_config = _STRICT

    id: str
    expires_at: dt.datetime


class ReconcileIn(BaseModel):
    """The operator's count of the blanks in each feeder."""

    model_config = _STRICT

    counted: dict[FeederName, Count] = Field(default_factory=dict, max_length=64)


class ReconciliationOut(BaseModel):
    """The day's reconciliation.

    Per feeder, ``loaded + adjusted = issued + spoiled + in process + remaining``.
    """

    model_config = _STRICT

    day: dt.date
    ok: bool
    problems: list[str]
    feeders: list[FeederOut]


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuanceContext(TellerContext):
    """What the production and stock handlers need (built by the daemon)."""

    #: ``None`` without ``[production]``: every handler answers ``production-not-configured``.
    production: ProductionService | None
    sessions: async_sessionmaker[AsyncSession]
    #: The configured stations' feeders (a station's ``feeder``, else its name).
    feeders: frozenset[str]


ISSUANCE: Final = web.AppKey("issuance", IssuanceContext)

# ---------------------------------------------------------------------------- helpers


def _service(request: web.Request) -> tuple[IssuanceContext, ProductionService]:
    api = request.app[ISSUANCE]
    return api, _production(api)


def _production(api: IssuanceContext) -> ProductionService:
    """The production service, or 404 when this daemon makes no cards."""
    if api.production is None:
        raise ProblemError(
            PRODUCTION_OFF,
            "This daemon has no [production] section: no card can be made here.",
            "本网点未配置 [production]，不能即时制卡。",
        )
    return api.production


def _job_out(service: ProductionService, job: JobRecord) -> JobOut:
    status = job.status.value
    return JobOut(
        job_id=job.job_id,
        receipt_number=job.order.application_id.partition("#")[0],
        status=status,
        step=job.step.value if job.step else None,
        phase=job.phase.value if job.phase else None,
        card_seq=job.card_seq,
        station=job.station,
        card_number=job.order.card_number,
        waiting_for_quality_check=job.job_id in service.quality_check.waiting(),
        failure=job.failure,
        created_at=job.created_at,
    )


def _feeder_out(balance: StockBalance) -> FeederOut:
    return FeederOut(
        feeder=balance.feeder,
        loaded=balance.loaded,
        adjusted=balance.adjusted,
        taken=balance.taken,
        issued=balance.issued,
        spoiled=balance.spoiled,
        destroyed=balance.destroyed,
        in_process=balance.in_process,
        remaining=balance.remaining,
    )


def _stock_refused(exc: StockError) -> ProblemError:
    return ProblemError(STOCK_REFUSED, str(exc), "库存操作不成立，请核对数量和原因。")


async def _find_job(api: IssuanceContext, service: ProductionService, job_id: str) -> JobRecord:
    try:
        return service.controller.job(job_id)
    except UnknownJobError:
        pass
    async with api.sessions() as session:
        known = await session.scalar(
            select(ProductionJobRow.job_id).where(ProductionJobRow.job_id == job_id)
        )
    record = await service.journal.load_job(job_id) if known else None
    if record is None:
        raise ProblemError(NOT_FOUND, "No production job with this id.", "未找到该制卡任务。")
    return record


def configured_feeders(request: web.Request) -> list[str]:
    """The feeders of the configured stations (a station's ``feeder``, else its name)."""
    return sorted(request.app[ISSUANCE].feeders)


async def _known_feeder(
    request: web.Request, service: ProductionService, feeders: Iterable[str], *, ledger: bool
) -> None:
    """Refuse (``stock-unknown-feeder``) unless every one of ``feeders`` is known.

    Known: a configured station's feeder, and with ``ledger`` one the ledger holds.
    """
    known = set(configured_feeders(request))
    if ledger:
        known |= set(await service.ledger.balances())
    unknown = sorted(set(feeders) - known)
    if unknown:
        raise ProblemError(
            UNKNOWN_FEEDER,
            f"No feeder {', '.join(unknown)} at this branch; nothing was changed.",
            f"本网点无此进卡器：{'、'.join(unknown)}；未做任何更改。",
            feeder=unknown[0],
            unknown=unknown,
            feeders=sorted(known),
        )


def _job_id(request: web.Request) -> str:
    not_found = ProblemError(NOT_FOUND, "No production job with this id.", "未找到该制卡任务。")
    return path_id(request, "job", not_found)


def _identify(request: web.Request, roles: frozenset[Role], what: str) -> Terminal:
    terminal = request.app[ISSUANCE].terminals.identify(request)
    require_role(terminal, roles, what)
    return terminal


# ---------------------------------------------------------------------------- handlers


@post_once(ISSUANCE)
async def submit_job(
    _request: web.Request, api: IssuanceContext, terminal: Terminal, body: bytes
) -> web.Response:
    """Start (or find) the application's production job."""
    require_role(terminal, _MAKERS, "start production")
    service = _production(api)
    parsed = parse_body(JobIn, body)
    priority = Priority.WINDOW if parsed.priority == "window" else Priority.BATCH
    try:
        job = await service.issue(
            parsed.receipt_number, terminal.id, ethnicity=parsed.ethnicity, priority=priority
        )
    except IssueRefusedError as exc:
        if exc.code == "not-found":
            raise ProblemError(NOT_FOUND, exc.detail, "未找到该受理编号的业务。") from None
        if exc.code == "fee-due":
            raise ProblemError(
                FEE_DUE, exc.detail, "请先在窗口缴纳工本费（或经审批减免）后再制卡。",
                fee_status=exc.state,
            ) from None  # fmt: skip
        raise ProblemError(
            NOT_PRODUCIBLE,
            exc.detail,
            "该受理业务无需制卡，或卡片当前状态不能制卡。",
            reason=exc.code,
            card_state=exc.state,
        ) from None
    except PreconditionError as exc:
        problem = _PRECONDITIONS.get(type(exc), DEVICE_OFFLINE)
        raise ProblemError(
            problem, f"{exc}; nothing was changed.", _PRECONDITION_ZH.get(type(exc), "")
        ) from None
    return json_response(_job_out(service, job), status=202)


async def get_job(request: web.Request) -> web.Response:
    """One job."""
    terminal = _identify(request, _WATCHERS, "look at production")
    api, service = _service(request)
    job_id = _job_id(request)
    job = await _find_job(api, service, job_id)
    await api.audit_reads.put(terminal.id, "query.production-job", f"job:{job_id}")
    return json_response(_job_out(service, job))


async def queue(request: web.Request) -> web.Response:
    """Stations, unfinished jobs, cards waiting for QC."""
    _identify(request, _WATCHERS, "look at production")
    _api, service = _service(request)
    controller = service.controller
    unfinished = [j for j in controller.jobs() if not j.status.finished]
    return json_response(
        QueueOut(
            stations=[
                StationOut(
                    name=s.name, paused=s.paused, job_id=s.job_id, waiting_jobs=s.waiting_jobs
                )
                for s in controller.stations()
            ],
            jobs=[_job_out(service, j) for j in unfinished],
            quality_checks=service.quality_check.waiting(),
        )
    )


@post_once(ISSUANCE, checks=(_job_id,))
async def quality_check(
    request: web.Request, api: IssuanceContext, terminal: Terminal, body: bytes
) -> web.Response:
    """The teller's verdict on a made card."""
    job_id = _job_id(request)
    require_role(terminal, _MAKERS, "check a made card")
    service = _production(api)
    parsed = parse_body(QcIn, body)
    verdict = QcVerdict(passed=parsed.passed, operator=terminal.id, reason=parsed.reason)
    if not service.quality_check.decide(job_id, verdict):
        raise ProblemError(
            QC_NOT_WAITING,
            "This job's card is not waiting for a quality check.",
            "该任务的卡片当前不在等待质检。",
        )
    await service.audit.append(
        terminal.id, "production.quality-check", f"job:{job_id}",
        {"passed": parsed.passed, "reason": parsed.reason},
    )  # fmt: skip
    return json_response(_job_out(service, await _find_job(api, service, job_id)))


def _station_action(action: Literal["pause", "resume"]) -> Any:  # noqa: ANN401 - a handler
    async def handle(
        request: web.Request, api: IssuanceContext, terminal: Terminal, body: bytes
    ) -> web.Response:
        del api, body  # the station's name is in the path
        name = request.match_info["name"]
        require_role(terminal, _WATCHERS, f"{action} a station")
        _, service = _service(request)
        controller = service.controller
        if name not in {s.name for s in controller.stations()}:
            raise ProblemError(NOT_FOUND, "No station with this name.", "未找到该制卡工位。")
        if action == "pause":
            await controller.pause_station(name, f"operator:{terminal.id}")
        else:
            await controller.resume_station(name)
        await service.audit.append(terminal.id, f"production.station-{action}", f"station:{name}")
        view = next(s for s in controller.stations() if s.name == name)
        return json_response(
            StationOut(
                name=view.name,
                paused=view.paused,
                job_id=view.job_id,
                waiting_jobs=view.waiting_jobs,
            )
        )

    handle.__name__ = f"station_{action}"
    return post_once(ISSUANCE)(handle)


async def stock(request: web.Request) -> web.Response:
    """Every feeder's balance."""
    _identify(request, _WATCHERS, "look at the stock")
    _api, service = _service(request)
    balances = await service.ledger.balances()
    return json_response(StockOut(feeders=[_feeder_out(b) for b in balances.values()]))


@post_once(ISSUANCE)
async def load(
    request: web.Request, api: IssuanceContext, terminal: Terminal, body: bytes
) -> web.Response:
    """Blanks loaded into a feeder."""
    require_role(terminal, _MAKERS, "load blank cards")
    service = _production(api)
    parsed = parse_body(LoadIn, body)
    await _known_feeder(request, service, [parsed.feeder], ledger=False)
    try:
        await service.ledger.load(
            parsed.feeder, parsed.quantity, box=parsed.box, operator=terminal.id
        )
    except StockError as exc:
        raise _stock_refused(exc) from None
    await service.audit.append(
        terminal.id, "stock.load", f"feeder:{parsed.feeder}",
        {"quantity": parsed.quantity, "box": parsed.box},
    )  # fmt: skip
    return json_response(_feeder_out(await service.ledger.balance(parsed.feeder)), status=201)


@post_once(ISSUANCE)
async def destroy(
    request: web.Request, api: IssuanceContext, terminal: Terminal, body: bytes
) -> web.Response:
    """Spoiled cards destroyed."""
    require_role(terminal, _MAKERS, "record destroyed cards")
    service = _production(api)
    parsed = parse_body(DestroyIn, body)
    await _known_feeder(request, service, [parsed.feeder], ledger=True)
    try:
        await service.ledger.destroy(
            parsed.feeder, parsed.quantity, operator=terminal.id, reason=parsed.reason
        )
    except StockError as exc:
        raise _stock_refused(exc) from None
    await service.audit.append(
        terminal.id, "stock.destroy", f"feeder:{parsed.feeder}",
        {"quantity": parsed.quantity, "reason": parsed.reason},
    )  # fmt: skip
    return json_response(_feeder_out(await service.ledger.balance(parsed.feeder)), status=201)


def _adjustment_digest(adjustment: AdjustmentIn) -> str:
    return request_digest("APPROVE", STOCK_APPROVAL, adjustment.model_dump_json().encode())


def _approvals(api: IssuanceContext, service: ProductionService) -> Approvals:
    """The approvals a stock adjustment grants and uses (the ones the operations take).

    Their ids are drawn from the system's random source, as ``uuid4`` draws them.
    """
    return Approvals(sessions=api.sessions, audit=service.audit, clock=api.clock, rng=_APPROVAL_IDS)


@post_once(ISSUANCE)
async def approve_adjustment(
    request: web.Request, api: IssuanceContext, terminal: Terminal, body: bytes
) -> web.Response:
    """A supervisor approves one exact stock adjustment."""
    require_role(terminal, frozenset({Role.SUPERVISOR}), "approve a stock adjustment")
    service = _production(api)
    parsed = parse_body(StockApprovalIn, body)
    await _known_feeder(request, service, [parsed.adjustment.feeder], ledger=True)
    granted = await _approvals(api, service).grant(
        STOCK_APPROVAL, _adjustment_digest(parsed.adjustment),
        supervisor=terminal.id, reason=parsed.reason,
        lifetime=timedelta(minutes=service.approval_minutes),
        details={"feeder": parsed.adjustment.feeder, "delta": parsed.adjustment.delta},
    )  # fmt: skip
    return json_response(StockApprovalOut(id=granted.id, expires_at=granted.expires_at), 201)


@post_once(ISSUANCE, checks=(approval_header,))
async def adjust(
    request: web.Request, api: IssuanceContext, terminal: Terminal, body: bytes
) -> web.Response:
    """A stock correction, with the supervisor's approval of exactly this request."""
    approval_id = approval_header(request)
    require_role(terminal, _MAKERS, "adjust the stock")
    service = _production(api)
    parsed = parse_body(AdjustmentIn, body)
    await _known_feeder(request, service, [parsed.feeder], ledger=True)
    # The approval is used and committed first; the ledger moves in its own transaction.
    async with api.sessions.begin() as session:
        supervisor = await _approvals(api, service).use(
            session, STOCK_APPROVAL, _adjustment_digest(parsed), approval_id,
            user=terminal.id, required=STOCK_APPROVAL_REQUIRED,
        )  # fmt: skip
    try:
        await service.ledger.adjust(
            parsed.feeder,
            parsed.delta,
            operator=terminal.id,
            approver=supervisor,
            reason=parsed.reason,
        )
    except (ApprovalRequiredError, StockError) as exc:
        raise _stock_refused(exc) from None
    await service.audit.append(
        terminal.id, "stock.adjust", f"feeder:{parsed.feeder}",
        {"delta": parsed.delta, "reason": parsed.reason, "approver": supervisor},
    )  # fmt: skip
    return json_response(_feeder_out(await service.ledger.balance(parsed.feeder)), status=201)


def reconciliation_out(result: Reconciliation) -> ReconciliationOut:
    """The API's view of a reconciliation."""
    return ReconciliationOut(
        day=result.day,
        ok=result.ok,
        problems=list(result.problems),
        feeders=[_feeder_out(b) for b in result.balances.values()],
    )


@post_once(ISSUANCE)
async def reconcile(
    request: web.Request, api: IssuanceContext, terminal: Terminal, body: bytes
) -> web.Response:
    """Reconcile the stock with the operator's count and the jobs' cards."""
    require_role(terminal, _WATCHERS, "reconcile the stock")
    service = _production(api)
    parsed = parse_body(ReconcileIn, body)
    await _known_feeder(request, service, parsed.counted, ledger=True)
    result = await service.reconcile(parsed.counted or None)
    await service.audit.append(
        terminal.id, "stock.reconcile", f"day:{result.day.isoformat()}",
        {"ok": result.ok, "problems": result.problems},
    )  # fmt: skip
    return json_response(reconciliation_out(result))


def _add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/production/jobs", submit_job)
    app.router.add_get("/v1/production/queue", queue)
    app.router.add_get("/v1/production/jobs/{job}", get_job)
    app.router.add_post("/v1/production/jobs/{job}/quality-check", quality_check)
    app.router.add_post("/v1/production/stations/{name}/pause", _station_action("pause"))
    app.router.add_post("/v1/production/stations/{name}/resume", _station_action("resume"))
    app.router.add_get("/v1/stock", stock)
    app.router.add_post("/v1/stock/loads", load)
    app.router.add_post("/v1/stock/destructions", destroy)
    app.router.add_post("/v1/stock/approvals", approve_adjustment)
    app.router.add_post("/v1/stock/adjustments", adjust)
    app.router.add_post("/v1/stock/reconciliations", reconcile)


# ---------------------------------------------------------------------------- OpenAPI


def _paths(kit: OpenApiKit) -> dict[str, Any]:
    def answer(status: str, model: str) -> dict[str, Any]:
        return {
            status: {
                "description": "OK",
                "content": {"application/json": {"schema": kit.ref(model)}},
            },
            **kit.errors,
        }

    def post(op_id: str, summary: str, body: str, status: str, out: str, **extra: Any) -> Any:  # noqa: ANN401
        parameters = [kit.idempotency_header, *extra.get("parameters", [])]
        return {
            "post": {
                "operationId": op_id,
                "summary": summary,
                "parameters": parameters,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": kit.ref(body)}},
                },
                "responses": answer(status, out),
            }
        }

    def get(op_id: str, summary: str, out: str, parameters: list[Any] | None = None) -> Any:  # noqa: ANN401
        return {
            "get": {
                "operationId": op_id,
                "summary": summary,
                "parameters": parameters or [],
                "responses": answer("200", out),
            }
        }

    job = {"name": "job", "in": "path", "required": True, "schema": ID_SCHEMA}
    station = {
        "name": "name",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": _NAME_PATTERN},
    }
    approval = APPROVAL_HEADER
    station_post = {
        "parameters": [kit.idempotency_header, station],
        "responses": answer("200", "StationOut"),
    }
    return {
        "/v1/production/jobs": post(
            "submitProductionJob", "即时制卡 / Make the card of an application now",
            "JobIn", "202", "JobOut",
        ),
        "/v1/production/queue": get(
            "productionQueue", "制卡队列 / Stations, jobs and cards waiting for QC", "QueueOut"
        ),
        "/v1/production/jobs/{job}": get(
            "getProductionJob", "制卡任务 / One production job", "JobOut", [job]
        ),
        "/v1/production/jobs/{job}/quality-check": post(
            "qualityCheck", "质检 / The teller's verdict on a made card",
            "QcIn", "200", "JobOut", parameters=[job],
        ),
        "/v1/production/stations/{name}/pause": {
            "post": {"operationId": "pauseStation", "summary": "暂停工位 / Pause a station",
                     **station_post}
        },
        "/v1/production/stations/{name}/resume": {
            "post": {"operationId": "resumeStation", "summary": "恢复工位 / Resume a station",
                     **station_post}
        },
        "/v1/stock": get("getStock", "卡库存 / Blank-card stock per feeder", "StockOut"),
        "/v1/stock/loads": post(
            "loadStock", "装卡 / Blanks loaded into a feeder", "LoadIn", "201", "FeederOut"
        ),
        "/v1/stock/destructions": post(
            "destroyStock", "废卡销毁 / Spoiled cards destroyed", "DestroyIn", "201", "FeederOut"
        ),
        "/v1/stock/approvals": post(
            "approveStockAdjustment", "主管授权库存调整 / Approve one exact stock adjustment",
            "StockApprovalIn", "201", "StockApprovalOut",
        ),
        "/v1/stock/adjustments": post(
            "adjustStock", "库存调整 / Correct a feeder's count (with approval)",
            "AdjustmentIn", "201", "FeederOut", parameters=[approval],
        ),
        "/v1/stock/reconciliations": post(
            "reconcileStock", "库存核对 / Reconcile the stock",
            "ReconcileIn", "200", "ReconciliationOut",
        ),
    }  # fmt: skip


SECTION: Final = ApiSection(
    name="production",
    models=(
        JobIn,
        JobOut,
        QcIn,
        StationOut,
        QueueOut,
        FeederOut,
        StockOut,
        LoadIn,
        DestroyIn,
        AdjustmentIn,
        StockApprovalIn,
        StockApprovalOut,
        ReconcileIn,
        ReconciliationOut,
    ),
    add_routes=_add_routes,
    paths=_paths,
)
