"""The daemon: assemble the parts, serve, and shut down gracefully.

Start-up order: database engine (optionally migrate) -> HTTP site -> background
tasks under the supervisor. Shutdown on SIGTERM or SIGINT, in reverse: stop
accepting connections and let in-flight requests finish (at most
``server.shutdown_timeout`` seconds), cancel and await the background tasks,
record the clean stop, close the database. The process then exits 0.

Clock and random source are parameters; only :func:`serve` picks the real ones.

Why one module of this size: it is the process's lifecycle, start-up and its
reverse, around the parts :mod:`gateway.assembly` builds; the production and
upstream builders stay here because their order against migrations, the key
store and the devices is the start-up order itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
from typing import TYPE_CHECKING

import structlog
from aiohttp import web
from sqlalchemy import select, update

from devices.backoff import BackoffPolicy, backoff_delays
from devices.clock import Clock, SystemClock
from devices.registry.errors import PublishError
from gateway import __version__
from gateway.app import Services, create_app
from gateway.assembly import (
    SECTIONS,
    TellerApi,
    build_card_services,
    build_teller_api,
    open_keystore,
)
from gateway.audit.anchors import AnchorService
from gateway.audit.log import AuditLog, AuditQueue
from gateway.issuance.journal import SqlJournal
from gateway.issuance.render_pool import SurfacePool
from gateway.issuance.service import (
    BankProduction,
    PlatformKeyService,
    PlatformProduction,
    ProductionService,
    TellerQualityCheck,
)
from gateway.issuance.settings import LOW_STOCK
from gateway.people.vault import PersonalDataVault
from gateway.runtime.dashboard import add_branch_page
from gateway.runtime.db import create_engine, session_factory
from gateway.runtime.devices import BranchDevices
from gateway.runtime.http.ops import OpsGate
from gateway.runtime.keys import KeyStoreSigner
from gateway.runtime.metrics import Metrics
from gateway.runtime.migrate import current_revision, head_revision
from gateway.runtime.migrate import upgrade as upgrade_schema
from gateway.runtime.rows import DaemonRun
from gateway.runtime.supervisor import Supervisor
from gateway.telemetry.reports import BranchReports
from gateway.upstream.assembly import Upstream, build_upstream
from gateway.upstream.identity import load_or_create_identity
from gateway.upstream.outbox import KeyStorePayloadProtector
from gateway.upstream.peers import PeerKeysFile, publish_identity
from production import (
    CardLayout,
    ProductionController,
    ProductionSettings,
    Station,
    StockLedger,
)
from security.keystore import Algorithm, KeyNotFoundError, KeyUsage
from security.pki import CertificateInfo, certificate_info, server_context
from security.suites import SUITES

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable, Iterable, Mapping
    from pathlib import Path

    from pydantic import SecretStr

    from gateway.cardservices import CardServices
    from gateway.config import Config
    from production import EncoderPort, JobRecord, Reconciliation
    from security.keystore import KeyStore

__all__ = ["Daemon", "serve"]

log = structlog.get_logger(__name__)

CERTIFICATE_INTERVAL = 6 * 3600.0  # seconds between certificate expiry reports
REPORT_INTERVAL = 60.0  # seconds between branch reports (telemetry and /ops)


class Daemon:
    """One running branch daemon; :meth:`start` and :meth:`stop` bracket its life."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock,
        rng: random.Random,
        extra_routes: Iterable[web.RouteDef] = (),
        encoder_overrides: Mapping[str, tuple[EncoderPort, str]] | None = None,
    ) -> None:
        """Keep the configuration and the injected clock and random source.

        ``encoder_overrides`` maps an encoder's ``[devices]`` id to an encoder and
        reader name to use instead (the demo's in-process readers).
        """
        self.config = config
        self.clock = clock
        self.rng = rng
        self._extra_routes = list(extra_routes)
        self._encoder_overrides = dict(encoder_overrides or {})
        #: Instant issuance (with ``[production]``).
        self.production: ProductionService | None = None
        self._render_pool: SurfacePool | None = None
        #: The branch reports (telemetry and the /ops page).
        self.reports: BranchReports | None = None
        self.metrics = Metrics()
        sup = config.supervisor
        self.supervisor = Supervisor(
            clock=clock,
            rng=rng,
            policy=BackoffPolicy(initial=sup.backoff_initial, maximum=sup.backoff_max),
            reset_after=sup.reset_after,
            on_restart=lambda name: self.metrics.task_restarts.labels(name).inc(),
        )
        self.engine = create_engine(
            config.database_url,
            busy_timeout_ms=config.database.busy_timeout_ms,
            pool_size=config.database.pool_size,
            connect_timeout=config.database.connect_timeout,
            sqlite_synchronous=config.database.sqlite_synchronous,
        )
        self._sessions = session_factory(self.engine)
        self.audit = AuditLog(self._sessions, SUITES[config.security.suite], clock)
        self.audit_reads = AuditQueue(self.audit, clock)
        self._signer: KeyStoreSigner | None = None
        #: Signs checkpoint periods and sends them to the monitor (with a key store).
        self.anchors: AnchorService | None = None
        #: Each feature's context of the teller API (with a key store).
        self.teller: TellerApi | None = None
        #: PIN change, reset, unlock and status at the windows (``[pin]``); pads attach here.
        self.cards: CardServices | None = None
        #: The platform and bank clients, outbox and relay (with ``[upstream]`` and a key store).
        self.upstream: Upstream | None = None
        self._certificates: tuple[CertificateInfo, ...] = ()
        self.devices = (
            BranchDevices(
                config.devices,
                clock=clock,
                rng=rng,
                replaced=frozenset(self._encoder_overrides),
            )
            if config.devices
            else None
        )
        self._runner: web.AppRunner | None = None
        self._run_id: int | None = None
        self.urls: list[str] = []
        #: Set when shutdown begins (for whoever needs to know, tests included).
        self.stopping = asyncio.Event()

    async def start(self, *, migrate: bool = False) -> None:
        """Migrate if asked, start serving, start the background tasks."""
        structlog.contextvars.bind_contextvars(branch_id=self.config.branch.id)
        try:
            await asyncio.to_thread(_private_directory, self.config.data_dir)
            store = await asyncio.to_thread(open_keystore, self.config, create=True)
            if store is not None and self.config.keystore is not None:
                self._signer = KeyStoreSigner(store, self.config.keystore.signing_key, create=True)
                if self.config.upstream is not None:
                    self.upstream = await asyncio.to_thread(self._build_upstream, store)
                vault = PersonalDataVault(store, create=True)
                if self.config.production is not None:
                    self.production = self._build_production(vault)
                self.cards = build_card_services(
                    self.config, store=store, vault=vault, upstream=self.upstream,
                    devices=self.devices, sessions=self._sessions, audit=self.audit,
                    metrics=self.metrics, clock=self.clock,
                )  # fmt: skip
                self.teller = build_teller_api(
                    self.config, vault=vault, sessions=self._sessions, engine=self.engine,
                    audit=self.audit, audit_reads=self.audit_reads, clock=self.clock,
                    rng=self.rng, upstream=self.upstream, production=self.production,
                    cards=self.cards,
                )  # fmt: skip
            if migrate:
                before = await current_revision(self.engine)
                await upgrade_schema(self.engine)
                log.info("database_migrated", from_revision=before, to_revision=head_revision())
            if await current_revision(self.engine) == head_revision():
                # Recorded before serving, so a stop at any later moment finds it.
                await self._record_start()
            ssl_context, certificates = self._tls()
            self._certificates = certificates
            services = Services(
                config=self.config,
                engine=self.engine,
                supervisor=self.supervisor,
                metrics=self.metrics,
                clock=self.clock,
                rng=self.rng,
                head_revision=head_revision(),
                certificates=certificates,
                ops=OpsGate(_reveal(self.config.server.ops_token)),
            )
            teller = self.teller
            app = create_app(
                services,
                sections=SECTIONS if teller is not None else (),
                bind=teller.bind if teller is not None else None,
                extra_routes=self._extra_routes,
            )
            self.reports = BranchReports(
                branch=self.config.branch.id,
                sessions=self._sessions,
                clock=self.clock,
                devices=self.devices,
                production=self.production,
                audit_reads=self.audit_reads if self.teller is not None else None,
                low_stock=self.config.production.low_stock if self.config.production else LOW_STOCK,
            )
            add_branch_page(app, self.reports.snapshot, clock=self.clock, gate=services.ops)
            self._runner = web.AppRunner(
                app,
                handle_signals=False,
                access_log=None,
                shutdown_timeout=self.config.server.shutdown_timeout,
            )
            await self._runner.setup()
            site = web.TCPSite(
                self._runner,
                self.config.server.host,
                self.config.server.port,
                ssl_context=ssl_context,
            )
            await site.start()
        except (Exception, asyncio.CancelledError):
            await self._close()
            raise
        scheme = "https" if ssl_context is not None else "http"
        self.urls = [_url_of(scheme, address) for address in self._runner.addresses]
        self._spawn_tasks()
        if self.production is not None:
            try:
                await self.production.start()
            except (Exception, asyncio.CancelledError):
                await self._close()
                raise
            self._spawn_production_tasks()
        if await current_revision(self.engine) == head_revision():
            self.supervisor.spawn("branch-reports", self._branch_reports)
        log.info("daemon_started", version=__version__, urls=self.urls)

    def _spawn_tasks(self) -> None:
        """Start the background tasks under the supervisor."""
        self.supervisor.spawn("heartbeat", self._heartbeat)
        if self.teller is not None:
            self.supervisor.spawn("audit-reads", self.audit_reads.run)
            batches = self.teller.batches.batches
            self.supervisor.spawn("batch-auto-enable", batches.run_auto_enable)
            if batches.production is not None:
                self.supervisor.spawn("batch-production", batches.run_production)
        if self.upstream is not None:
            self.supervisor.spawn("outbox-relay", self.upstream.relay.run)
        if self.devices is not None:
            for name, task in self.devices.tasks():
                self.supervisor.spawn(name, task)
            if self.devices.publisher is not None and self._certificates:
                self.supervisor.spawn("certificate-telemetry", self._certificate_telemetry)
        if self._signer is not None:
            devices = self.devices
            self.anchors = AnchorService(
                self.audit,
                self._signer,
                branch=self.config.audit_branch(),
                period=self.config.audit.checkpoint_period,
                clock=self.clock,
                rng=self.rng,
                publisher=devices.publisher if devices is not None else None,
                province=devices.settings.province if devices is not None else None,
            )
            self.supervisor.spawn("audit-checkpoints", self._checkpoints)
            if devices is not None and devices.publisher is not None:
                self.supervisor.spawn("audit-anchors", self._send_anchors)

    def _build_production(self, vault: PersonalDataVault) -> ProductionService:
        """Stations from ``[production]`` and ``[devices]``; ports over the upstream clients."""
        settings = self.config.production
        devices, upstream = self.devices, self.upstream
        bank = upstream.bank if upstream is not None else None
        if settings is None or devices is None or upstream is None or bank is None:
            message = "[production] needs [devices] and [upstream] with [upstream.bank]"
            raise ValueError(message)
        readers = {e.id: e.reader or e.id for e in devices.settings.encoders}
        stations: list[Station] = []
        for station in settings.stations:
            encoder: EncoderPort | None = None
            reader: str | None = None
            if station.encoder is not None:
                replacement = self._encoder_overrides.get(station.encoder)
                encoder, reader = replacement or (
                    devices.encoders[station.encoder],
                    readers[station.encoder],
                )
            stations.append(
                Station(
                    name=station.name,
                    printer=devices.printers[station.printer],
                    encoder=encoder,
                    reader=reader,
                    feeder=station.feeder,
                )
            )
        journal = SqlJournal(self.engine, vault)
        ledger = StockLedger(journal, self.clock, on_alert=self._stock_alert)
        quality = TellerQualityCheck(automatic=settings.quality_check == "automatic")
        layout = CardLayout(font_path=settings.font) if settings.font else CardLayout()
        if settings.render == "process":
            self._render_pool = SurfacePool()
        controller = ProductionController(
            journal=journal,
            stations=stations,
            platform=PlatformProduction(upstream.platform),
            bank=BankProduction(bank),
            key_service=PlatformKeyService(upstream.platform, self.config.branch.id),
            quality_check=quality,
            clock=self.clock,
            rng=self.rng,
            settings=ProductionSettings(
                chip_write_attempts=settings.chip_write_attempts,
                cards_per_job=settings.cards_per_job,
                upstream_backoff=BackoffPolicy(
                    initial=settings.upstream_backoff_initial,
                    maximum=max(settings.upstream_backoff_max, settings.upstream_backoff_initial),
                ),
                layout=layout,
                renderer=self._render_pool,
            ),
            on_station_paused=self._station_paused,
        )
        return ProductionService(
            controller=controller,
            journal=journal,
            ledger=ledger,
            quality_check=quality,
            sessions=self._sessions,
            vault=vault,
            audit=self.audit,
            clock=self.clock,
            region=self.config.branch.region,
            approval_minutes=self.config.business.approval_minutes,
            on_settled=self._production_settled,
            outbox=upstream.outbox,  # an issued reissue cancels the old card upstream
        )

    def _spawn_production_tasks(self) -> None:
        """Once production has recovered: stock reconciliation, failed cards queued again."""
        assert self.config.production is not None  # noqa: S101 - production is configured
        self.supervisor.spawn("stock-reconciliation", self._reconcile_stock)
        if self.config.production.requeue_attempts:
            self.supervisor.spawn("production-requeue", self._requeue_failed)

    async def _reconcile_stock(self) -> None:
        """Reconcile the stock now and every ``reconcile_hours`` (an alert on a difference)."""
        assert self.production is not None  # noqa: S101 - spawned only with production
        assert self.config.production is not None  # noqa: S101
        while True:
            await self.production.reconcile()
            await self.clock.sleep(self.config.production.reconcile_hours * 3600)

    async def _requeue_failed(self) -> None:
        """Every ``requeue_minutes``, queue again the window cards whose job failed."""
        assert self.production is not None  # noqa: S101 - spawned only with production
        assert self.config.production is not None  # noqa: S101
        settings = self.config.production
        while True:
            await self.clock.sleep(settings.requeue_minutes * 60)
            await self.production.requeue_due(
                attempts=settings.requeue_attempts, minutes=settings.requeue_minutes
            )

    async def _branch_reports(self) -> None:
        """Count and publish the branch reports every ``REPORT_INTERVAL`` seconds."""
        assert self.reports is not None  # noqa: S101 - made at start
        while True:
            await self.reports.publish()
            await self.clock.sleep(REPORT_INTERVAL)

    def _station_paused(self, station: str, code: str) -> None:
        log.warning("station_paused", station=station, code=code)
        self.metrics.station_pauses.labels(station, code).inc()

    def _stock_alert(self, reconciliation: Reconciliation) -> None:
        log.error(
            "stock_mismatch_alert",
            day=reconciliation.day.isoformat(),
            problems=reconciliation.problems,
        )
        self.metrics.stock_mismatches.inc()

    def _production_settled(self, job: JobRecord) -> None:
        self.metrics.production_jobs.labels(job.status.value).inc()

    def _build_upstream(self, store: KeyStore) -> Upstream:
        """Load (or make) the envelope identity, publish it, and wire the upstream pieces."""
        settings = self.config.upstream
        assert settings is not None  # noqa: S101 - called only with [upstream]
        suite = self.config.security.suite
        identity = load_or_create_identity(
            self.config.data_dir, store, sender=self.config.branch.id, suite=suite
        )
        publish_identity(settings.peer_keys, identity)
        payload_key = settings.outbox.payload_key
        try:
            store.key_info(payload_key)
        except KeyNotFoundError:
            store.generate_key(payload_key, Algorithm.AES_256, KeyUsage.ENCRYPT)
        upstream = build_upstream(
            settings,
            identity=identity,
            peer_keys=PeerKeysFile(settings.peer_keys),
            suites=(suite,),
            sessions=self._sessions,
            protector=KeyStorePayloadProtector(store, payload_key),
            clock=self.clock,
            rng=self.rng,
        )
        log.info(
            "upstream_configured",
            platform=settings.platform.url,
            dialect=settings.platform.dialect,
            bank=settings.bank.url if settings.bank is not None else None,
            sender=identity.sender,
        )
        return upstream

    def _tls(self) -> tuple[ssl.SSLContext | None, tuple[CertificateInfo, ...]]:
        if self.config.server.plain_on_the_network:  # only with allow_plain_http
            log.warning(
                "teller_api_without_mutual_tls",
                host=self.config.server.host,
                reason="[server] allow_plain_http = true: tokens cross the network in clear",
            )
        tls = self.config.server.tls
        if tls is None:
            return None, ()
        context = server_context(
            tls.cert, tls.key, tls.ca, require_client_cert=tls.require_client_cert
        )
        certificates = (certificate_info(tls.cert),)
        for cert in certificates:
            if cert.expires_soon(self.clock.now()):
                log.warning(
                    "certificate_expires_soon",
                    path=str(cert.path),
                    not_after=cert.not_after.isoformat(),
                )
        return context, certificates

    async def stop(self) -> None:
        """Finish in-flight requests, stop background tasks, close the database."""
        log.info("daemon_stopping", grace_seconds=self.config.server.shutdown_timeout)
        self.stopping.set()
        await self._close()
        log.info("daemon_stopped")

    async def _close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.production is not None:
            try:
                await self.production.stop()
            except Exception:
                log.exception("production_stop_failed")
        if self._render_pool is not None:
            self._render_pool.shutdown(wait=False, cancel_futures=True)
            self._render_pool = None
        await self.supervisor.stop(self.config.supervisor.stop_timeout)
        if self.upstream is not None:
            try:
                await self.upstream.close()
            except Exception:
                log.exception("upstream_close_failed")
            self.upstream = None
        try:
            await self.audit_reads.drain()
        except Exception:
            log.exception("audit_queue_not_drained")
        if self._run_id is not None:
            try:
                await self.audit.append(
                    "system", "daemon.stop", f"branch:{self.config.branch.id}",
                    {"run_id": self._run_id},
                )  # fmt: skip
                async with self._sessions.begin() as session:
                    await session.execute(
                        update(DaemonRun)
                        .where(DaemonRun.id == self._run_id)
                        .values(stopped_at=self.clock.now(), ended_cleanly=True)
                    )
            except Exception:
                log.exception("recording_stop_failed")
            self._run_id = None
        await self.engine.dispose()

    async def _heartbeat(self) -> None:
        """Record this run, flag unfinished earlier runs, then beat until cancelled."""
        interval = self.config.supervisor.heartbeat_interval
        await self._wait_for_schema(interval)
        if self._run_id is None:
            await self._record_start()
        while True:
            await self.clock.sleep(interval)
            async with self._sessions.begin() as session:
                await session.execute(
                    update(DaemonRun)
                    .where(DaemonRun.id == self._run_id)
                    .values(heartbeat_at=self.clock.now())
                )

    async def _certificate_telemetry(self) -> None:
        """Publish the certificates' expiry (retained) now and every 6 hours."""
        assert self.devices is not None  # noqa: S101 - spawned only with devices
        assert self.devices.publisher is not None  # noqa: S101
        topic = self.devices.topics.daemon_certificates()
        retries = backoff_delays(BackoffPolicy(initial=1.0, maximum=60.0), self.rng)
        while True:
            now = self.clock.now()
            payload = {
                "v": 1,
                "at": now.isoformat(),
                "certificates": [
                    {
                        "subject": cert.subject,
                        "not_after": cert.not_after.isoformat(),
                        "days_left": round(cert.days_left(now), 1),
                        "expires_soon": cert.expires_soon(now),
                    }
                    for cert in self._certificates
                ],
            }
            try:
                await self.devices.publisher.publish(
                    topic, json.dumps(payload).encode(), retain=True
                )
            except PublishError:  # not connected yet, or the broker is away: try again soon
                await self.clock.sleep(next(retries))
                continue
            retries = backoff_delays(BackoffPolicy(initial=1.0, maximum=60.0), self.rng)
            await self.clock.sleep(CERTIFICATE_INTERVAL)

    async def _checkpoints(self) -> None:
        """Sign each finished business day and checkpoint period of the audit chain."""
        assert self.anchors is not None  # noqa: S101 - spawned only with a signer
        await self._wait_for_schema(self.config.supervisor.heartbeat_interval)
        await self.anchors.run_checkpoints()

    async def _send_anchors(self) -> None:
        """Send the signed periods to the central monitor until the broker acknowledges them."""
        assert self.anchors is not None  # noqa: S101 - spawned only with a publisher
        await self._wait_for_schema(self.config.supervisor.heartbeat_interval)
        await self.anchors.run_sender()

    async def _wait_for_schema(self, interval: float) -> None:
        warned = False
        while (current := await current_revision(self.engine)) != head_revision():
            if not warned:
                log.warning(
                    "database_schema_not_current",
                    current=current,
                    head=head_revision(),
                    hint="run `branchd db upgrade`",
                )
                warned = True
            await self.clock.sleep(interval)

    async def _record_start(self) -> None:
        """Record this run (and flag unfinished earlier ones) in the database and audit log."""
        self._run_id = await self._insert_run()
        await self.audit.append(
            "system", "daemon.start", f"branch:{self.config.branch.id}",
            {"version": __version__, "run_id": self._run_id},
        )  # fmt: skip

    async def _insert_run(self) -> int:
        now = self.clock.now()
        async with self._sessions.begin() as session:
            unfinished = (
                await session.scalars(select(DaemonRun).where(DaemonRun.stopped_at.is_(None)))
            ).all()
            for run in unfinished:
                log.warning(
                    "previous_run_ended_uncleanly",
                    run_id=run.id,
                    started_at=run.started_at.isoformat(),
                    last_heartbeat=run.heartbeat_at.isoformat(),
                )
                run.stopped_at = run.heartbeat_at
                run.ended_cleanly = False
            run = DaemonRun(
                branch_id=self.config.branch.id,
                version=__version__,
                hostname=socket.gethostname(),
                pid=os.getpid(),
                started_at=now,
                heartbeat_at=now,
            )
            session.add(run)
            await session.flush()
            return run.id


def _private_directory(path: Path) -> None:
    """The data directory, 0700: personal data, keys and the journal live under it."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def _url_of(scheme: str, address: tuple[str, int] | tuple[str, int, int, int]) -> str:
    host, port = address[0], address[1]
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


async def serve(  # noqa: PLR0913 - keyword-only injection points
    config: Config,
    *,
    migrate: bool = False,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    extra_routes: Iterable[web.RouteDef] = (),
    on_started: Callable[[Daemon], None] | None = None,
) -> int:
    """Run the daemon until SIGTERM or SIGINT; return the process exit status."""
    daemon = Daemon(
        config,
        clock=clock or SystemClock(),
        rng=rng or random.Random(),  # noqa: S311 - jitter and ids, not cryptography
        extra_routes=extra_routes,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _on_signal, stop, signum)
    try:
        await daemon.start(migrate=migrate)
        if on_started is not None:
            on_started(daemon)
        await stop.wait()
        await daemon.stop()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    return 0


def _on_signal(stop: asyncio.Event, signum: int) -> None:
    log.info("signal_received", signal=signal.Signals(signum).name)
    stop.set()
