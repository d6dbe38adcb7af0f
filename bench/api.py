"""Teller API speed: status query by receipt number, against a bare aiohttp handler.

Run: ``.venv/bin/python bench/api.py [--seconds 5] [--rounds 3] [--applications 200]
[--database-url URL]``. The server under test (the daemon with its key store and
one teller terminal, on a fresh SQLite file or on the empty database at
``--database-url``, with ``--applications`` accepted applications; each query
asks for one of their receipt numbers at random) and the baseline (an aiohttp
application with one handler returning a small JSON body) run in this process;
the load generator runs in a separate process so that it does not share the
server's event loop. Each round measures, one after the other:

* the bare handler (baseline);
* the daemon's index page ``/``: the daemon's own middlewares (request id, log
  context, metrics, problem documents) around a constant answer, the floor any
  handler of the daemon stands on;
* the status query as shipped (answered from memory while nothing was written,
  every read audited through the audit queue);
* the status query with the answer cache switched off (every query reads the
  database): an experiment, to show what the cache buys.

Each measurement is a throughput run (16 concurrent keep-alive clients for
``--seconds``) and a latency run at a fixed 200 requests/s for ``--seconds``
(p50 and p99). The rounds interleave the variants so that a change of load on
a shared machine touches all of them; the table gives the median over the
rounds, and each round's figures are printed too. At the end the bench checks
that every status query it sent was audited.

Goal: the status query reaches at least 0.5 of the bare throughput, and its p99
at 200 requests/s is at most 10 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import multiprocessing
import os
import random
import secrets
import statistics
import tempfile
import time
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from PIL import Image
from sqlalchemy import text
from stdnum.cn import ric

from devices.clock import SystemClock
from gateway.config import parse_config
from gateway.daemon import Daemon
from gateway.operations.status_cache import StatusCache
from gateway.runtime.logs import configure_logging

if TYPE_CHECKING:
    from collections.abc import Iterator
    from multiprocessing.queues import Queue

TOKEN = "bench-teller-" + "b" * 32
CLIENTS = 16
RATE = 200.0


async def _load(
    urls: list[str], headers: dict[str, str], seconds: float, rate: float | None
) -> dict[str, Any]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    pick = random.Random(7).choice
    async with aiohttp.ClientSession(headers=headers) as http:

        async def one() -> None:
            url = pick(urls)
            started = time.perf_counter()
            async with http.get(url) as response:
                await response.read()
                if response.status != 200:  # noqa: PLR2004
                    raise RuntimeError(f"status {response.status}")
            latencies.append(time.perf_counter() - started)

        if rate is None:

            async def worker() -> None:
                while time.perf_counter() < deadline:
                    await one()

            await asyncio.gather(*(worker() for _ in range(CLIENTS)))
        else:
            tasks = []
            start = time.perf_counter()
            n = 0
            while (now := time.perf_counter()) < deadline:
                due = start + n / rate
                if due > now:
                    await asyncio.sleep(due - now)
                tasks.append(asyncio.create_task(one()))
                n += 1
            await asyncio.gather(*tasks)
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "rps": len(latencies) / seconds,
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))],
    }


def _run_load(
    urls: list[str], headers: dict[str, str], seconds: float, rate: float | None, out: Queue[Any]
) -> None:
    out.put(asyncio.run(_load(urls, headers, seconds, rate)))


async def _measure(
    urls: list[str], headers: dict[str, str], seconds: float, rate: float | None
) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_run_load, args=(urls, headers, seconds, rate, queue))
    process.start()
    await asyncio.sleep(0.5)  # the child starting up is not the server's work
    cpu = time.process_time()  # this process: the servers, the database thread, the audit
    result: dict[str, Any] = await asyncio.to_thread(queue.get)
    result["cpu_us"] = 1e6 * (time.process_time() - cpu) / max(result["requests"], 1)
    await asyncio.to_thread(process.join)
    return result


async def _hello(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "receipt_number": "SS0000000000000000000"})


def _miss(_self: StatusCache, _receipt: str, _day: date) -> bytes | None:
    return None


@contextmanager
def _cache_off(off: bool) -> Iterator[None]:  # noqa: FBT001
    """Make every status query miss the answer cache (an experiment, not a setting)."""
    if not off:
        yield
        return
    original = StatusCache.get
    StatusCache.get = _miss  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        StatusCache.get = original  # type: ignore[method-assign]


async def main(seconds: float, rounds: int, applications: int, database_url: str | None) -> None:
    """Measure baseline and status query; print the table."""
    bare = web.Application()
    bare.router.add_get("/hello", _hello)
    runner = web.AppRunner(bare, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    bare_url = f"http://{host}:{port}/hello"

    directory = Path(tempfile.mkdtemp(prefix="bench-api-"))
    master = directory / "master.key"
    master.write_text(secrets.token_hex(32), "ascii")
    master.chmod(0o600)
    settings: dict[str, Any] = {
        "data_dir": str(directory),
        "branch": {"id": "BENCH", "region": "652300"},
        "server": {"host": "127.0.0.1", "port": 0},
        "logging": {"level": "warning"},
        "keystore": {"master_key": {"file": str(master)}},
        "terminals": [{"id": "teller-01", "role": "teller", "token": TOKEN}],
    }
    if database_url:
        settings["database"] = {"url": database_url}
    configure_logging("warning", "json")  # as a service; per-request lines off
    daemon = Daemon(parse_config(settings), clock=SystemClock(), rng=random.Random())
    await daemon.start(migrate=True)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    receipts = await _applications(daemon.urls[0], headers, applications)
    status_urls = [f"{daemon.urls[0]}/v1/applications/{r}" for r in receipts]

    variants = [
        ("bare aiohttp handler (baseline)", [bare_url], {}, False),
        ("daemon GET / (its middlewares, constant answer)", [daemon.urls[0] + "/"], {}, False),
        ("status query (shipped: from memory, read audited)", status_urls, headers, False),
        ("status query, cache off (experiment)", status_urls, headers, True),
    ]
    load_before = os.getloadavg()
    results: dict[str, list[tuple[float, float, float, float]]] = {v[0]: [] for v in variants}
    queries = 0
    for n in range(rounds):
        for name, urls, hdrs, off in variants:
            with _cache_off(off):
                throughput = await _measure(urls, hdrs, seconds, None)
                paced = await _measure(urls, hdrs, seconds, RATE)
            if urls is status_urls:
                queries += throughput["requests"] + paced["requests"]
            row = (throughput["rps"], paced["p50_ms"], paced["p99_ms"], throughput["cpu_us"])
            results[name].append(row)
            print(
                f"round {n + 1}: {name:52} {row[0]:8.0f} req/s {row[1]:6.2f} {row[2]:6.2f} ms "
                f"{row[3]:6.0f} us CPU/request"
            )
    load_after = os.getloadavg()
    await daemon.audit_reads.drain()
    async with daemon.engine.connect() as conn:
        audited = await conn.scalar(
            text("SELECT count(*) FROM audit_log WHERE action = 'query.application'")
        )
    await daemon.stop()
    await runner.cleanup()

    base = statistics.median(r[0] for r in results[variants[0][0]])
    print()
    print(f"{'what (median of ' + str(rounds) + ' rounds)':52} {'req/s':>8} {'ratio':>6} "
          f"{'p50 ms @200/s':>14} {'p99 ms @200/s':>14} {'server CPU us/req':>18}")  # fmt: skip
    for name, rows in results.items():
        rps, p50, p99, cpu = (statistics.median(r[i] for r in rows) for i in range(4))
        print(f"{name:52} {rps:8.0f} {rps / base:6.2f} {p50:14.2f} {p99:14.2f} {cpu:18.0f}")
    print(f"\nstatus queries sent: {queries}; audited: {audited}")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    if audited != queries:
        raise SystemExit("some status queries were not audited")


async def _applications(base: str, headers: dict[str, str], count: int) -> list[str]:
    """Accept ``count`` applications (adults applying in person); their receipt numbers."""
    image = Image.new("RGB", (358, 441), (255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="JPEG", dpi=(300, 300))
    photo = base64.b64encode(out.getvalue()).decode()
    receipts = []
    async with aiohttp.ClientSession(headers=headers) as http:
        for n in range(count):
            head = f"110105{date(1960, 1, 1) + timedelta(days=n):%Y%m%d}123"
            body = {
                "case": "self", "channel": "window",
                "applicant": {"id_number": head + ric.calc_check_digit(head + "0"), "name": "张三"},
                "materials": ["applicant-id-card", "photo"], "photo": photo,
            }  # fmt: skip
            async with http.post(
                f"{base}/v1/operations/apply", json=body, headers={"Idempotency-Key": f"bench-{n}"}
            ) as response:
                result = await response.json()
                if response.status != 200:  # noqa: PLR2004
                    raise RuntimeError(f"could not apply: {result}")
            receipts.append(str(result["receipt_number"]))
    return receipts


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument(
        "--applications", type=int, default=200, help="receipts the queries pick from at random"
    )
    parser.add_argument(
        "--database-url", help="an empty database to use instead of a fresh SQLite file"
    )
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.rounds, args.applications, args.database_url))
