"""The demo's world: every part the branch talks to, simulated on this machine.

:class:`DemoWorld` starts, in one process and on loopback:

- a certificate authority, the simulators' server certificate and the branch's
  client certificate (``branchd pki``'s own functions), so the platform and the
  bank are reached over real mutual TLS with sealed envelopes;
- the provincial platform simulator (provinces, national hub, key service) and
  the bank core simulator;
- an in-process MQTT broker (amqtt) for the daemon's telemetry;
- an issuance station: a printer simulator on a pty whose blanks carry chips,
  the chip at the contact station in an in-process reader;
- the daemon itself, configured for all of the above with ``[production]``.

:class:`DemoScript` then plays a morning at the branch through the teller API,
as a teller system would: blanks loaded, a window instant issuance with the
teller's quality check, a small batch, a loss report, the stock reconciled.
It checks, at the end, that the chip, the platform and the bank agree.

Why one module of this size: the simulated surroundings (platform, bank, station,
readers, broker) and the scripted morning that drives them are one scene.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import io
import json
import os
import random
import secrets
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Self

import aiohttp
from amqtt.broker import Broker
from PIL import Image
from stdnum.cn import ric

from devices.clock import SystemClock
from devices.encoder import InProcessEncoder
from gateway.config import load_config
from gateway.daemon import Daemon
from gateway.upstream.peers import PeerKeysFile, publish_identity
from security.pki import CertificateRole, init_ca, issue, server_context
from simulators.bank import BankSimulator
from simulators.card.vpcd import VPCD_PORT
from simulators.platform import PlatformSimulator, platform_name
from simulators.station import StationConfig, StationSimulator

if TYPE_CHECKING:
    from collections.abc import Callable

    from simulators.station import ReaderCard

__all__ = ["DEMO_BRANCH", "DEMO_PROVINCE", "DEMO_REGION", "DemoScript", "DemoWorld"]

DEMO_BRANCH: Final = "DEMO-652300-01"
DEMO_PROVINCE: Final = "650000"
DEMO_REGION: Final = "652300"
READER: Final = "Virtual PCD 00 00"
FEEDER: Final = "station-1"
CJK_FONTS: Final = (
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


#: The window customer's mobile number and address (made up; stored sealed, logged masked).
DEMO_PHONE: Final = "13899012345"
DEMO_ADDRESS: Final = "新疆昌吉市延安北路188号3单元"


def demo_id_number(serial: int) -> str:
    """A made-up resident identity number of a person born in 1990 in region 652301."""
    body = f"65230119900101{serial:03d}"
    return body + ric.calc_check_digit(body + "0")  # it skips the last (check) position


def demo_photo() -> str:
    """A photo that passes the photo rules (358x441, 300 DPI, white background), base64."""
    image = Image.new("RGB", (358, 441), (255, 255, 255))
    image.paste((70, 90, 120), (100, 120, 258, 441))
    image.paste((230, 200, 170), (130, 60, 228, 170))
    out = io.BytesIO()
    image.save(out, format="JPEG", dpi=(300, 300))
    return base64.b64encode(out.getvalue()).decode()


@dataclass(slots=True)
class DemoWorld:
    """The simulated surroundings and the daemon (an async context manager).

    Attributes:
        directory: Where everything lives (database, keys, certificates, cards).
        host: The daemon's listening address.
        port: The daemon's port (0: any free one).
        time_scale: The printer's mechanical timings multiplied by this.
        blanks: Blank cards in the station's feeder.
        quality_check: ``teller`` (the script answers) or ``automatic``.
        database_url: The daemon's database (default: SQLite in ``directory``).
        jam_on_feed: Blanks (1 = the first fed) that jam in the printer.
        faulty_chips: Blanks whose chip refuses every write.
        vpcd_port: Serve the chip at the contact station to pcscd's vpcd reader on
            this port; the daemon then reads it through PC/SC (default: in process).
        start_daemon: ``False``: write ``branchd.toml`` only (to run the daemon as
            a process of its own, which may die while the world goes on).
    """

    directory: Path
    host: str = "127.0.0.1"
    port: int = 8080
    time_scale: float = 0.05
    blanks: int = 30
    quality_check: str = "teller"
    database_url: str | None = None
    jam_on_feed: frozenset[int] = frozenset()
    faulty_chips: frozenset[int] = frozenset()
    vpcd_port: int | None = None
    start_daemon: bool = True
    log_level: str = "warning"
    tokens: dict[str, str] = field(default_factory=dict)
    platform: PlatformSimulator | None = None
    bank: BankSimulator | None = None
    station: StationSimulator | None = None
    daemon: Daemon | None = None
    config_path: Path | None = None
    broker_port: int = 0
    _broker: Broker | None = None
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    async def __aenter__(self) -> Self:
        """Start every part; on any failure, stop what started."""
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *_exc: object) -> None:
        """Stop everything in reverse order."""
        await self._stack.aclose()

    async def _start(self) -> None:
        d = self.directory
        d.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)
        pki = d / "pki"
        if not (pki / "ca.pem").exists():
            init_ca(pki, DEMO_BRANCH, now)
            issue(pki, "upstream-sim", CertificateRole.SERVER, now)
            issue(pki, "branchd", CertificateRole.PEER, now)
        server_tls = server_context(
            pki / "upstream-sim.pem", pki / "upstream-sim.key", pki / "ca.pem"
        )
        peers = d / "peer-keys.json"
        self.platform = PlatformSimulator(ssl_context=server_tls, trusted=PeerKeysFile(peers))
        self.bank = BankSimulator(ssl_context=server_tls, trusted=PeerKeysFile(peers))
        await self.platform.start()
        self._stack.push_async_callback(self.platform.stop)
        await self.bank.start()
        self._stack.push_async_callback(self.bank.stop)
        for identity in self.platform.identities.values():
            publish_identity(peers, identity)
        publish_identity(peers, self.bank.identity)

        self.broker_port = _free_port()
        self._broker = Broker(
            {
                "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.broker_port}"}},
                "plugins": {
                    "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
                },
            }
        )
        await self._broker.start()
        self._stack.push_async_callback(self._broker.shutdown)

        encoder = InProcessEncoder()

        def card_in(chip: ReaderCard) -> None:
            encoder.insert(READER, chip)

        def card_out() -> None:
            encoder.remove(READER)

        self.station = StationSimulator(
            StationConfig(
                blanks=self.blanks,
                region=DEMO_REGION,
                time_scale=self.time_scale,
                status=d / "station.json",
                card_dir=d / "cards",
                jam_on_feed=self.jam_on_feed,
                faulty_chips=self.faulty_chips,
                vpcd_port=self.vpcd_port,
                link=str(d / "printer-1"),
            ),
            on_card_in=None if self.vpcd_port else card_in,
            on_card_out=None if self.vpcd_port else card_out,
        )
        await self.station.start()
        self._stack.push_async_callback(self.station.stop)

        master = _secret_file(d / "master.key", secrets.token_hex(32))
        token_files = {
            role: _secret_file(
                d / "tokens" / f"{role}.token",
                f"demo-{role}-" + secrets.token_urlsafe(24),
            )
            for role in ("teller", "supervisor", "ops", "kiosk")
        }
        self.tokens = {role: path.read_text("ascii") for role, path in token_files.items()}
        self.config_path = d / "branchd.toml"
        self.config_path.write_text(
            to_toml(self._config(pki, peers, master, token_files)), encoding="utf-8"
        )
        if not self.start_daemon:
            return
        config = load_config(self.config_path)
        self.daemon = Daemon(
            config,
            clock=SystemClock(),
            rng=random.Random(),  # noqa: S311 - jitter and ids, not cryptography
            encoder_overrides={} if self.vpcd_port else {"encoder-1": (encoder, READER)},
        )
        await self.daemon.start(migrate=True)
        self._stack.push_async_callback(self.daemon.stop)

    def _config(
        self, pki: Path, peers: Path, master: Path, tokens: dict[str, Path]
    ) -> dict[str, Any]:
        assert self.platform is not None  # noqa: S101 - started just before
        assert self.bank is not None  # noqa: S101
        assert self.station is not None  # noqa: S101
        font = next((f for f in CJK_FONTS if f.exists()), None)
        production: dict[str, Any] = {
            "stations": [{"name": FEEDER, "printer": "printer-1", "encoder": "encoder-1"}],
            "quality_check": self.quality_check,
            "upstream_backoff_initial": 0.2,
            "upstream_backoff_max": 2.0,
        }
        if font is not None:
            production["font"] = str(font)
        database = {"url": self.database_url} if self.database_url else {}
        return {
            "database": database,
            "data_dir": str(self.directory),
            "branch": {"id": DEMO_BRANCH, "name": "演示网点 Demo branch", "region": DEMO_REGION},
            "server": {"host": self.host, "port": self.port, "shutdown_timeout": 5},
            "logging": {"level": self.log_level},
            "keystore": {"master_key": {"file": str(master)}},
            "terminals": [
                {"id": f"{role}-01", "role": role, "token": {"file": str(path)}}
                for role, path in tokens.items()
            ],
            "devices": {
                "province": DEMO_PROVINCE,
                "branch": DEMO_BRANCH,
                "broker": {"host": "127.0.0.1", "port": self.broker_port, "protocol": "3.1.1"},
                "printers": [
                    {
                        "id": "printer-1",
                        "url": str(self.directory / "printer-1"),
                        "status_interval": 5.0,
                    }
                ],
                "encoders": [{"id": "encoder-1", "reader": self.reader}],
            },
            "upstream": {
                "peer_keys": str(peers),
                "tls": {
                    "cert": str(pki / "branchd.pem"),
                    "key": str(pki / "branchd.key"),
                    "ca": str(pki / "ca.pem"),
                },
                "platform": {
                    "url": self.platform.url(DEMO_PROVINCE, "json"),
                    "dialect": "json",
                    "receiver": platform_name(DEMO_PROVINCE),
                },
                "bank": {"url": self.bank.url},
                "outbox": {"backoff_initial": 0.2, "backoff_max": 2.0},
            },
            "production": production,
        }

    @property
    def reader(self) -> str:
        """The PC/SC name of the station's reader."""
        if self.vpcd_port is None:
            return READER
        return f"Virtual PCD 00 {self.vpcd_port - VPCD_PORT:02d}"

    @property
    def base_url(self) -> str:
        """The daemon's URL (the running one's, or the configured address)."""
        if self.daemon is not None:
            return self.daemon.urls[0]
        return f"http://{self.host}:{self.port}"


def _secret_file(path: Path, value: str) -> Path:
    """``path``, created readable by its owner only with ``value`` when missing."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(value)
    return path


def _toml_value(value: Any) -> str:  # noqa: ANN401 - any TOML value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(type(value).__name__)


def _is_table(value: Any) -> bool:  # noqa: ANN401 - any TOML value
    """A table or an array of tables (a secret reference stays an inline table)."""
    if isinstance(value, dict):
        return set(value) != {"file"}
    return isinstance(value, list) and bool(value) and isinstance(value[0], dict)


def to_toml(data: dict[str, Any]) -> str:
    """The demo's configuration as TOML (tables and arrays of tables; a small subset)."""
    lines = ["# Written by `branchd demo`; see docs/branchd.example.toml for every key."]

    def table(prefix: str, values: dict[str, Any], header: str | None) -> None:
        scalars = {k: v for k, v in values.items() if not _is_table(v)}
        if header is not None:
            lines.extend(["", header])
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in scalars.items())
        for key, value in values.items():
            name = f"{prefix}{key}"
            if not _is_table(value):
                continue
            if isinstance(value, dict):
                table(f"{name}.", value, f"[{name}]")
            else:
                for item in value:
                    table(f"{name}.", item, f"[[{name}]]")

    table("", data, None)
    return "\n".join(lines) + "\n"


class DemoError(Exception):
    """A step of the demo did not end as it should (the message says how)."""


@dataclass(slots=True)
class Holder:
    """One made-up applicant."""

    id_number: str
    name: str
    phone: str | None = None
    address: str | None = None
    receipt: str = ""
    job: str = ""
    card_number: str = ""


@dataclass(slots=True)
class DemoScript:
    """A morning at the branch, through the teller API.

    Attributes:
        world: The running world.
        say: Prints one line of the story.
        timeout: Longest wait for any one card, seconds.
    """

    world: DemoWorld
    say: Callable[[str], None]
    timeout: float = 120.0
    http: aiohttp.ClientSession | None = None
    holders: list[Holder] = field(default_factory=list)

    async def run(self) -> None:
        """The whole script; raises :class:`DemoError` when something is off."""
        async with aiohttp.ClientSession() as http:
            self.http = http
            await self.load_stock()
            first = await self.window_issuance()
            await self.small_batch(3)
            await self.loss_report(first)
            await self.reconcile()
            self.check_agreement(first)

    async def call(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        role: str = "teller",
    ) -> tuple[int, Any]:
        """One API call as the terminal of ``role``."""
        assert self.http is not None  # noqa: S101 - inside run()
        headers = {"Authorization": f"Bearer {self.world.tokens[role]}"}
        if method == "POST":
            headers["Idempotency-Key"] = uuid.uuid4().hex
        async with self.http.request(
            method, self.world.base_url + path, json=body, headers=headers
        ) as response:
            return response.status, await response.json(content_type=None)

    async def expect(
        self,
        status: int,
        method: str,
        path: str,
        body: object = None,
        *,
        role: str = "teller",
    ) -> Any:  # noqa: ANN401 - JSON
        """A call that must answer ``status``."""
        got, answer = await self.call(method, path, body, role=role)
        if got != status:
            code = answer.get("code") if isinstance(answer, dict) else None
            detail = answer.get("detail") if isinstance(answer, dict) else answer
            raise DemoError(f"{method} {path}: {got} {code}: {detail}")
        return answer

    async def load_stock(self) -> None:
        """The morning's box of blanks goes into the feeder."""
        balance = await self.expect(
            201, "POST", "/v1/stock/loads",
            {"feeder": FEEDER, "quantity": self.world.blanks, "box": "BOX-2026-1123-01"},
        )  # fmt: skip
        self.say(f"装卡 Loaded {balance['loaded']} blanks into {FEEDER} (box BOX-2026-1123-01)")

    async def apply(self, holder: Holder) -> None:
        """The holder applies for a card at the window, in person."""
        applicant = {"id_number": holder.id_number, "name": holder.name}
        if holder.phone is not None:
            applicant["phone"] = holder.phone
        if holder.address is not None:
            applicant["address"] = holder.address
        body = {
            "case": "self",
            "channel": "window",
            "applicant": applicant,
            "materials": ["applicant-id-card", "photo"],
            "photo": demo_photo(),
        }
        result = await self.expect(200, "POST", "/v1/operations/apply", body)
        holder.receipt = result["receipt_number"]

    async def produce(self, holder: Holder, priority: str) -> None:
        """Start the holder's production job."""
        job = await self.expect(
            202, "POST", "/v1/production/jobs",
            {"receipt_number": holder.receipt, "priority": priority},
        )  # fmt: skip
        holder.job = job["job_id"]

    async def follow(self, holders: list[Holder], *, narrate: bool) -> None:
        """Watch the jobs, pass each made card at the quality check, until all are issued."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout * len(holders)
        seen: dict[str, tuple[str | None, str | None]] = {}
        pending = {h.job: h for h in holders}
        while pending:
            if loop.time() > deadline:
                raise DemoError(f"jobs not finished in time: {sorted(pending)}")
            for job_id, holder in list(pending.items()):
                job = await self.expect(200, "GET", f"/v1/production/jobs/{job_id}")
                position = (job["step"], job["phase"])
                if narrate and seen.get(job_id) != position:
                    self.say(f"  制卡 {holder.receipt}: {job['step']} {job['phase']}")
                seen[job_id] = position
                if job["waiting_for_quality_check"]:
                    await self.expect(
                        200, "POST", f"/v1/production/jobs/{job_id}/quality-check", {"passed": True}
                    )
                    self.say(f"  质检 {holder.receipt}: the teller passes the card")
                if job["status"] == "issued":
                    holder.card_number = job["card_number"]
                    del pending[job_id]
                    self.say(f"发卡 Issued card {holder.card_number} for {holder.receipt}")
                elif job["status"] == "failed":
                    raise DemoError(f"job {job_id} failed: {job['failure']}")
            await asyncio.sleep(0.1)

    async def window_issuance(self) -> Holder:
        """One customer: apply, make the card now, hand it over."""
        holder = Holder(demo_id_number(1), "张晓明", DEMO_PHONE, DEMO_ADDRESS)
        self.holders.append(holder)
        self.say("窗口即时制卡 Window instant issuance")
        await self.apply(holder)
        self.say(f"受理 Application accepted: receipt {holder.receipt}")
        await self.produce(holder, "window")
        await self.follow([holder], narrate=True)
        application = await self.expect(200, "GET", f"/v1/applications/{holder.receipt}")
        self.say(f"  application {holder.receipt} is {application['status']}")
        return holder

    async def small_batch(self, size: int) -> None:
        """A few employees' cards, produced after window work."""
        self.say(f"批量制卡 A small batch of {size} cards")
        batch = [
            Holder(demo_id_number(10 + n), name)
            for n, name in zip(range(size), ("李娜", "王伟", "刘洋", "陈静"), strict=False)
        ]
        self.holders.extend(batch)
        for holder in batch:
            await self.apply(holder)
            await self.produce(holder, "batch")
        await self.follow(batch, narrate=False)

    async def loss_report(self, holder: Holder) -> None:
        """The first customer reports the card lost (temporary loss)."""
        body = {
            "case": "self",
            "channel": "window",
            "applicant": {"id_number": holder.id_number, "name": holder.name},
            "materials": ["applicant-id-card"],
        }
        result = await self.expect(200, "POST", "/v1/operations/report-temporary-loss", body)
        self.say(
            f"挂失 Temporary loss of {holder.card_number}: {result['status']}, "
            f"application state {result['application_state']}"
        )
        platform = self.world.platform
        assert platform is not None  # noqa: S101 - the world runs
        card = platform.provinces[DEMO_PROVINCE].cards.get(holder.card_number)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while card is None or card.aaz502 != "4":
            if loop.time() > deadline:
                raise DemoError("the platform did not receive the loss report")
            await asyncio.sleep(0.1)
        self.say("  the outbox delivered it: the platform shows temporary loss (AAZ502 4)")

    async def reconcile(self) -> None:
        """Count the feeder and reconcile the stock."""
        station = self.world.station
        assert station is not None  # noqa: S101 - the world runs
        counted = station.snapshot()["feeder"]
        result = await self.expect(
            200, "POST", "/v1/stock/reconciliations", {"counted": {FEEDER: counted}}
        )
        feeder = result["feeders"][0]
        self.say(
            f"对账 Stock: loaded {feeder['loaded']} = issued {feeder['issued']} + spoiled "
            f"{feeder['spoiled']} + in process {feeder['in_process']} + remaining "
            f"{feeder['remaining']}: {'reconciled' if result['ok'] else result['problems']}"
        )
        if not result["ok"]:
            raise DemoError(f"the stock does not reconcile: {result['problems']}")

    def check_agreement(self, holder: Holder) -> None:
        """The chip in the output tray, the platform and the bank say the same."""
        station, platform, bank = self.world.station, self.world.platform, self.world.bank
        assert station is not None  # noqa: S101 - the world runs
        assert platform is not None  # noqa: S101
        assert bank is not None  # noqa: S101
        made = [
            c
            for c in station.snapshot()["output_tray"]
            if c.get("card_number") == holder.card_number
        ]
        if len(made) != 1:
            raise DemoError(f"{len(made)} cards with number {holder.card_number} in the tray")
        chip = made[0]
        card = platform.provinces[DEMO_PROVINCE].cards[holder.card_number]
        problems = []
        if chip.get("ssn") != holder.id_number:
            problems.append("the chip's holder is not the applicant")
        if card.aaz501 != chip.get("card_id_code"):
            problems.append("the platform's card identification code is not the chip's")
        if card.aac002 != holder.id_number:
            problems.append("the platform's holder is not the applicant")
        if holder.card_number not in bank.accounts:
            problems.append("the bank has no account for the card")
        if problems:
            raise DemoError("; ".join(problems))
        self.say(
            f"核对 Card {holder.card_number}: chip, platform and bank agree "
            f"(chip {chip['card_id_code'][:6]}…, platform AAZ502 {card.aaz502})"
        )
