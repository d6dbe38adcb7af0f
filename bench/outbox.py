"""Outbox drain: a 10,000-message backlog through envelopes and mutual TLS to the simulator.

The platform simulator runs in a child process (its own core) on loopback with
mutual TLS; the branch side enqueues the backlog into a fresh SQLite database
(payloads sealed by a software key store), then one relay drains it and the
messages per second are printed. Baseline, in the same run: the same number of
bare HTTPS POSTs (same TLS contexts, same concurrency, a 200-byte body) to a
bare aiohttp handler in the same child process.

Usage: ``.venv/bin/python bench/outbox.py [--messages 10000] [--db URL]``
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from devices.backoff import BackoffPolicy
from devices.clock import SystemClock
from gateway.runtime.db import create_engine, session_factory
from gateway.runtime.migrate import upgrade
from gateway.upstream import (
    CardRef,
    ChangeInfo,
    CircuitBreaker,
    EnvelopeChannel,
    KeyStorePayloadProtector,
    Outbox,
    Relay,
    json_platform_client,
)
from security.envelope import (
    DictEnvelopeKeys,
    EnvelopeOpener,
    EnvelopeSealer,
    SenderIdentity,
)
from security.keystore import Algorithm, KeyUsage, MasterKey, SoftwareKeyStore
from security.pki import CertificateRole, client_context, init_ca, issue, server_context
from security.suites import get_suite
from simulators.platform import DEFAULT_PROVINCES, PlatformSimulator, platform_name

if TYPE_CHECKING:
    import ssl
    from multiprocessing.synchronize import Event

PROVINCE = "650000"
CARDS = 1000


@dataclass
class Variant:
    """One configuration to measure."""

    suite: str
    batch_size: int
    messages: int


def _identity(sender: str, suite: str) -> SenderIdentity:
    crypto = get_suite(suite)
    return SenderIdentity(
        sender=sender,
        key_id="bench",
        key_version=1,
        signing_key=crypto.generate_signing_key(),
        aead_key=os.urandom(crypto.aead_key_size),
    )


def _serve(  # noqa: PLR0913, PLR0917 - the child's whole configuration
    pki: Path,
    port: int,
    bare_port: int,
    branch: SenderIdentity,
    platforms: dict[str, SenderIdentity],
    ready: Event,
    stop: Event,
) -> None:
    """Child process: the simulator with CARDS active cards, and the bare handler."""

    async def main() -> None:
        context = server_context(pki / "sim.pem", pki / "sim.key", pki / "ca.pem")
        trusted = DictEnvelopeKeys()
        trusted.add(branch)
        simulator = PlatformSimulator(
            ssl_context=context, trusted=trusted, port=port, identities=platforms
        )
        province = simulator.provinces[PROVINCE]
        for i in range(CARDS):
            province.add_card(f"65010219900101{i:04d}", "持卡人", "652300").aaz502 = "1"

        async def bare(request: web.Request) -> web.Response:
            await request.read()
            return web.Response(body=b"ok")

        app = web.Application()
        app.router.add_post("/bare", bare)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", bare_port, ssl_context=context).start()
        async with simulator:
            ready.set()
            await asyncio.to_thread(stop.wait)
        await runner.cleanup()

    asyncio.run(main())


def _free_port() -> int:
    import socket  # noqa: PLC0415 - only the benchmark needs a free port

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _baseline(context: ssl.SSLContext, port: int, count: int, in_flight: int) -> float:
    body = b"x" * 200
    connector = aiohttp.TCPConnector(limit=in_flight, ssl=context)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker(share: int) -> None:
            for _ in range(share):
                async with http.post(f"https://localhost:{port}/bare", data=body) as response:
                    await response.read()

        start = time.perf_counter()
        await asyncio.gather(*(worker(count // in_flight) for _ in range(in_flight)))
        return time.perf_counter() - start


async def _drain(  # noqa: PLR0913, PLR0917 - one measurement's inputs
    variant: Variant,
    db_url: str,
    workdir: Path,
    context: ssl.SSLContext,
    port: int,
    branch: SenderIdentity,
    platforms: dict[str, SenderIdentity],
) -> float:
    clock = SystemClock()
    engine = create_engine(db_url)
    await upgrade(engine)
    sessions = session_factory(engine)
    store = SoftwareKeyStore.open(
        workdir / f"keys-{variant.suite}-{variant.batch_size}.bin",
        MasterKey(os.urandom(32), source="bench"),
        create=True,
    )
    store.generate_key("outbox-payload", Algorithm.AES_256, KeyUsage.ENCRYPT)
    outbox = Outbox(protector=KeyStorePayloadProtector(store, "outbox-payload"), now=clock.now)
    letter = DEFAULT_PROVINCES[PROVINCE][1]
    async with sessions.begin() as session:
        for seq in range(variant.messages):
            card = CardRef(f"{letter}{seq % CARDS + 1:08d}")
            await outbox.enqueue(session, ChangeInfo(card, phone=f"{seq:08d}"))
    keys = DictEnvelopeKeys()
    for identity in platforms.values():
        keys.add(identity)
    channel = EnvelopeChannel(
        target="platform",
        url=f"https://localhost:{port}{PlatformSimulator.path(PROVINCE, 'json')}",
        receiver=platform_name(PROVINCE),
        sealer=EnvelopeSealer(branch),
        opener=EnvelopeOpener(branch.sender, keys, suites=(variant.suite,)),
        ssl_context=context,
        clock=clock,
        breaker=CircuitBreaker("platform", clock),
        timeout=60,
    )
    relay = Relay(
        sessions=sessions,
        outbox=outbox,
        senders={"platform": json_platform_client(channel)},
        clock=clock,
        rng=random.Random(1),
        policy=BackoffPolicy(initial=1.0, maximum=5.0),
        batch_size=variant.batch_size,
        max_in_flight=2,
    )
    start = time.perf_counter()
    delivered = await relay.drain()
    elapsed = time.perf_counter() - start
    await channel.close()
    await engine.dispose()
    store.close()
    if delivered != variant.messages:
        raise SystemExit(f"delivered {delivered} of {variant.messages}")
    return elapsed


def _measure(variant: Variant, db_url: str | None, workdir: Path) -> tuple[float, float]:
    """Start a simulator child for the variant; return (drain s, baseline s)."""
    pki = workdir / "pki"
    branch = _identity("BENCH-652300", variant.suite)
    platforms = {code: _identity(platform_name(code), variant.suite) for code in DEFAULT_PROVINCES}
    port, bare_port = _free_port(), _free_port()
    fork = multiprocessing.get_context("fork")
    ready, stop = fork.Event(), fork.Event()
    child = fork.Process(
        target=_serve, args=(pki, port, bare_port, branch, platforms, ready, stop), daemon=True
    )
    child.start()
    try:
        if not ready.wait(60):
            raise SystemExit("the simulator did not start")
        context = client_context(pki / "branch.pem", pki / "branch.key", pki / "ca.pem")
        url = db_url or f"sqlite+aiosqlite:///{workdir}/{variant.suite}-{variant.batch_size}.db"
        drain = asyncio.run(_drain(variant, url, workdir, context, port, branch, platforms))
        baseline = asyncio.run(_baseline(context, bare_port, variant.messages, 2))
    finally:
        stop.set()
        child.join(10)
    return drain, baseline


def main() -> None:
    """Measure and print one table row per variant."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    variants = [
        Variant("gm", 100, args.messages),
        Variant("intl", 100, args.messages),
        Variant("gm", 1, min(args.messages, 2000)),
    ]
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as tmp:
        workdir = Path(tmp)
        now = datetime.now(UTC)
        init_ca(workdir / "pki", "BENCH", now)
        issue(workdir / "pki", "sim", CertificateRole.SERVER, now)
        issue(workdir / "pki", "branch", CertificateRole.PEER, now)
        print("| suite | batch | messages | drain msg/s | bare HTTPS POST/s (baseline) | ratio |")
        print("|---|---:|---:|---:|---:|---:|")
        for variant in variants:
            drain, baseline = _measure(variant, args.db, workdir)
            rate, base = variant.messages / drain, variant.messages / baseline
            print(
                f"| {variant.suite} | {variant.batch_size} | {variant.messages:,} "
                f"| {rate:,.0f} | {base:,.0f} | {rate / base:.2f} |"
            )


if __name__ == "__main__":
    main()
