"""A scenario with PINs, PIN blocks, keys and identity numbers, then a scan for them.

Everything the daemon writes (JSON logs at debug level, every column of every
table, the key store file) is searched for the clear PIN, the clear and the
encrypted PIN blocks, the imported key bytes and the full identity number.
Nothing may be found. Later flows (PIN reset, telemetry) join this scenario.
"""

import asyncio
import contextlib
import io
import logging
import os
import signal
from pathlib import Path

import aiomqtt
import pytest
import structlog
from sqlalchemy import MetaData, select

from gateway.assembly import open_keystore
from gateway.config import parse_config
from gateway.daemon import serve
from gateway.runtime.db import create_engine
from gateway.runtime.logs import configure_logging
from security.keystore import Algorithm, KeyUsage, PinBlockFormat
from tests.devices.agent.conftest import Mosquitto
from tests.fakes import FakeClock
from tests.gateway.builders import master_key_file

pytestmark = pytest.mark.integration

PIN = "135790"
PAN = "6222021234567890123"
ID_NUMBER = "11010519491231002X"
ZONE_KEY = bytes.fromhex("0123456789abcdeffedcba98765432100f1e2d3c4b5a6978")


def clear_format0(pin: str, pan: str) -> bytes:
    """The clear ISO 9564 format 0 block, computed here independently of the key store."""
    pin_field = bytes.fromhex(f"0{len(pin):X}{pin}".ljust(16, "F"))
    pan_field = bytes.fromhex("0000" + pan[-13:-1])
    return bytes(a ^ b for a, b in zip(pin_field, pan_field, strict=True))


def needles(*blocks: bytes) -> dict[str, list[bytes]]:
    """Every form in which a secret could leak: text, hex (both cases), raw bytes."""
    found: dict[str, list[bytes]] = {
        "pin": [PIN.encode()],
        "identity number": [ID_NUMBER.encode(), ID_NUMBER.lower().encode()],
        "zone key": [ZONE_KEY, ZONE_KEY.hex().encode(), ZONE_KEY.hex().upper().encode()],
    }
    for n, block in enumerate(blocks):
        found[f"pin block {n}"] = [block, block.hex().encode(), block.hex().upper().encode()]
    return found


def read_key_files(directory: Path) -> bytes:
    """The raw bytes of every key store file under ``directory``."""
    return b"".join(path.read_bytes() for path in directory.rglob("keystore.bin"))


async def database_dump(url: str) -> bytes:
    """Every value of every table, as text."""
    engine = create_engine(url)
    dump = io.StringIO()
    try:
        async with engine.connect() as conn:
            metadata = MetaData()
            await conn.run_sync(metadata.reflect)
            for table in metadata.sorted_tables:
                for row in (await conn.execute(select(table))).all():
                    dump.write(f"{table.name}: {tuple(row)!r}\n")
    finally:
        await engine.dispose()
    return dump.getvalue().encode()


async def test_no_secret_anywhere_after_the_scenario(
    database_url: str, tmp_path: Path, broker: Mosquitto
) -> None:
    """PIN, PIN blocks, keys and full identity numbers: in no log, row, file or message."""
    logs = io.StringIO()
    configure_logging("debug", "json", stream=logs)
    config = parse_config(
        {
            "data_dir": str(tmp_path),
            "branch": {"id": "T-652300-01", "region": "652300"},
            "server": {"host": "127.0.0.1", "port": 0},
            "database": {"url": database_url},
            "keystore": {"master_key": {"file": str(master_key_file(tmp_path))}},
            "devices": {
                "province": "650000",
                "branch": "T-652300-01",
                "broker": {"host": "127.0.0.1", "port": broker.port},
                "printers": [{"id": "printer-1", "agent": "agent-01"}],
            },
        }
    )
    payloads: list[bytes] = []

    async def listen() -> None:
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="scanner") as client:
            await client.subscribe("#", qos=1)
            # Kept one by one: the loop only ends by cancellation.
            async for message in client.messages:
                payloads.append(bytes(message.payload))  # noqa: PERF401

    listener = asyncio.create_task(listen())
    started: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    clock = FakeClock(autojump=False)
    task = asyncio.create_task(
        serve(config, migrate=True, clock=clock, on_started=started.set_result)
    )
    daemon = await asyncio.wait_for(started, 30)
    try:
        store = open_keystore(
            config.model_copy(update={"data_dir": tmp_path / "pinpad"}), create=True
        )
        assert store is not None
        store.generate_key("tpk", Algorithm.AES_256, KeyUsage.PIN)
        store.import_key("zpk", Algorithm.TDES_3KEY, KeyUsage.PIN, ZONE_KEY)
        from_pad = store.encrypt_pin_block("tpk", PIN, PAN, PinBlockFormat.ISO_4)
        to_zone = store.translate_pin_block(from_pad, "tpk", "zpk", PAN, PinBlockFormat.ISO_0)
        assert store.verify_pin_block(to_zone, PAN, PIN)

        log = structlog.get_logger("scenario")
        log.info("pin_reset_requested", holder=ID_NUMBER, pin_block=from_pad, pan=PAN)
        log.debug("translated", block=to_zone, repr_=repr(to_zone), text=f"{to_zone}")
        log.info("pad_input", new_pin=PIN, details={"old_pin": PIN, "key": ZONE_KEY.hex()})
        logging.getLogger("thirdparty").info("holder %s asked", ID_NUMBER)
        try:
            raise ValueError(f"no card for {ID_NUMBER}")  # noqa: TRY301 - the point of the test
        except ValueError:
            log.exception("lookup_failed")
        audit = getattr(daemon, "audit")  # noqa: B009 - typed as object by the future
        await audit.append(
            "teller-01", "pin.reset", f"holder:{ID_NUMBER}",
            {"aac002": ID_NUMBER, "pin_block": repr(from_pad), "new_pin": PIN},
        )  # fmt: skip
    finally:
        os.kill(os.getpid(), signal.SIGTERM)
        assert await asyncio.wait_for(task, 20) == 0
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()

    listener.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await listener
    assert payloads, "the broker carried no telemetry"
    places = {
        "MQTT payloads": b"\n".join(payloads),
        "logs": logs.getvalue().encode(),
        "database": await database_dump(database_url),
        "key store files": await asyncio.to_thread(read_key_files, tmp_path),
    }
    assert b"110105********002X" in places["logs"]  # masked forms are there ...
    assert b"pin.reset" in places["database"]  # ... and the scenario did write
    hits = [
        f"{what} in {where}"
        for where, haystack in places.items()
        for what, forms in needles(
            clear_format0(PIN, PAN), from_pad.ciphertext_bytes(), to_zone.ciphertext_bytes()
        ).items()
        if any(form in haystack for form in forms)
    ]
    assert hits == []
