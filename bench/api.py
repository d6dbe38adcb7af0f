"""Teller API speed: status query by receipt number, against a bare aiohttp handler.

Run: ``.venv/bin/python bench/api.py [--seconds 5]``. The server under test (the
daemon on SQLite with its key store, one teller terminal) and the baseline (an
aiohttp application with one handler returning a small JSON body) run in this
process; the load generator runs in a separate process so that it does not
share the server's event loop. Two measurements each:

* throughput: 16 concurrent keep-alive clients for ``--seconds``;
* latency at a fixed 200 requests/s for ``--seconds`` (p50 and p99).

Goal: the status query reaches at least 0.5 of the bare throughput, and its p99
at 200 requests/s is at most 10 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from devices.clock import SystemClock
from gateway.config import parse_config
from gateway.daemon import Daemon
from gateway.logs import configure_logging

if TYPE_CHECKING:
    from multiprocessing.queues import Queue

TOKEN = "bench-teller-" + "b" * 32
APPLICANT = {"id_number": "11010519491231002X", "name": "张三"}


async def _load(
    url: str, headers: dict[str, str], seconds: float, rate: float | None
) -> dict[str, Any]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession(headers=headers) as http:

        async def one() -> None:
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

            await asyncio.gather(*(worker() for _ in range(16)))
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
        "rps": len(latencies) / seconds,
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))],
    }


def _run_load(
    url: str, headers: dict[str, str], seconds: float, rate: float | None, out: Queue[Any]
) -> None:
    out.put(asyncio.run(_load(url, headers, seconds, rate)))


async def _measure(
    url: str, headers: dict[str, str], seconds: float, rate: float | None
) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_run_load, args=(url, headers, seconds, rate, queue))
    process.start()
    result: dict[str, Any] = await asyncio.to_thread(queue.get)
    await asyncio.to_thread(process.join)
    return result


async def _hello(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "receipt_number": "SS0000000000000000000"})


async def main(seconds: float) -> None:
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
    config = parse_config(
        {
            "data_dir": str(directory),
            "branch": {"id": "BENCH", "region": "652300"},
            "server": {"host": "127.0.0.1", "port": 0},
            "logging": {"level": "warning"},
            "keystore": {"master_key": {"file": str(master)}},
            "terminals": [{"id": "teller-01", "role": "teller", "token": TOKEN}],
        }
    )
    configure_logging("warning", "json")  # as a service; per-request lines off
    daemon = Daemon(config, clock=SystemClock(), rng=random.Random())
    await daemon.start(migrate=True)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    receipt = await _first_receipt(daemon.urls[0], headers)
    status_url = f"{daemon.urls[0]}/v1/applications/{receipt}"

    rows = []
    for name, url, hdrs in (("bare aiohttp handler (baseline)", bare_url, {}),
                            ("status query by receipt number", status_url, headers)):  # fmt: skip
        throughput = await _measure(url, hdrs, seconds, None)
        paced = await _measure(url, hdrs, seconds, 200.0)
        rows.append((name, throughput["rps"], paced["p50_ms"], paced["p99_ms"]))
    await daemon.stop()
    await runner.cleanup()

    base = rows[0][1]
    print(f"{'what':34} {'req/s':>8} {'ratio':>6} {'p50 ms @200/s':>14} {'p99 ms @200/s':>14}")
    for name, rps, p50, p99 in rows:
        print(f"{name:34} {rps:8.0f} {rps / base:6.2f} {p50:14.2f} {p99:14.2f}")


async def _first_receipt(base: str, headers: dict[str, str]) -> str:
    """Accept one application (an adult applying in person) and return its receipt number."""
    import base64  # noqa: PLC0415
    import io  # noqa: PLC0415

    from PIL import Image  # noqa: PLC0415

    image = Image.new("RGB", (358, 441), (255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="JPEG", dpi=(300, 300))
    body = {
        "case": "self", "channel": "window", "applicant": APPLICANT,
        "materials": ["applicant-id-card", "photo"],
        "photo": base64.b64encode(out.getvalue()).decode(),
    }  # fmt: skip
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.post(
            f"{base}/v1/operations/apply", json=body, headers={"Idempotency-Key": "bench-apply"}
        ) as response,
    ):
        result = await response.json()
    return str(result["receipt_number"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    asyncio.run(main(parser.parse_args().seconds))
