"""``branchd audit verify`` and ``branchd audit public-key``.

``verify`` re-computes the chain, checks the daily checkpoints and the period
anchors (one per finished ``[audit] checkpoint_period`` since the first entry),
and with ``--monitor URL`` compares the central monitor's copy
(``GET /api/branches/{branch}/audit-checkpoints``). It prints one line and exits
0 when intact, 1 naming the first finding; an unreachable monitor is said
plainly and fails only with ``--require-monitor``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

from devices.clock import SystemClock
from protocols.mqtt.anchors import AuditCheckpoint
from protocols.mqtt.errors import PayloadError
from security.audit import Anchor

if TYPE_CHECKING:
    from gateway.config import Config

__all__ = ["GRACE", "audit_public_key", "audit_verify", "fetch_monitor_copy"]

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
#: Seconds after a period's end before ``verify`` requires its checkpoint (the daemon
#: signs it within seconds of the end).
GRACE: Final = 300
MONITOR_TIMEOUT: Final = 10.0  # seconds for the monitor's answer


class MonitorUnreachableError(Exception):
    """The monitor's copy could not be read; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        """Record why."""
        super().__init__(reason)
        self.reason = reason


async def fetch_monitor_copy(url: str, branch: str) -> list[Anchor]:
    """The monitor's verified checkpoints of ``branch``, oldest first.

    Raises:
        MonitorUnreachableError: No answer, not 200, or not the expected document.
    """
    import aiohttp  # noqa: PLC0415 - only when a monitor is given

    address = f"{url.rstrip('/')}/api/branches/{branch}/audit-checkpoints"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=MONITOR_TIMEOUT)) as http,
            http.get(address) as response,
        ):
            if response.status != 200:  # noqa: PLR2004
                raise MonitorUnreachableError(f"HTTP {response.status}")
            document: Any = await response.json()
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        raise MonitorUnreachableError(type(exc).__name__) from None
    items = document.get("checkpoints") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise MonitorUnreachableError("not a list of checkpoints")
    anchors = []
    for item in items:
        if not isinstance(item, dict) or item.get("verified") is not True:
            continue
        try:
            fields: dict[str, Any] = {k: item.get(k) for k in AuditCheckpoint.__dataclass_fields__}
            message = AuditCheckpoint(**fields)
        except PayloadError:
            raise MonitorUnreachableError("a checkpoint of another form") from None
        anchors.append(
            Anchor(
                start=message.start,
                end=message.end,
                last_seq=message.last_seq,
                last_hash=bytes.fromhex(message.last_hash),
                key_id=message.key_id,
                key_version=message.key_version,
                signature=bytes.fromhex(message.signature),
            )
        )
    return anchors


async def audit_verify(config: Config, *, monitor: str | None, require_monitor: bool) -> int:
    """Verify the branch's audit log (see the module docstring); return the exit status."""
    from gateway.assembly import open_keystore  # noqa: PLC0415 - on demand
    from gateway.audit.log import AuditLog  # noqa: PLC0415
    from gateway.runtime.db import create_engine, session_factory  # noqa: PLC0415
    from gateway.runtime.keys import KeyStoreSigner  # noqa: PLC0415
    from security.suites import SUITES  # noqa: PLC0415

    branch = config.audit_branch()
    remote: list[Anchor] | None = None
    status = EXIT_OK
    if monitor is not None:
        try:
            remote = await fetch_monitor_copy(monitor, branch)
            compared = f"compared with the monitor's {len(remote)} checkpoints"
        except MonitorUnreachableError as exc:
            compared = f"monitor NOT reachable at {monitor} ({exc.reason}): not compared"
            if require_monitor:
                status = EXIT_FAILURE
    else:
        compared = "no monitor given: not compared with the copy off the box"
    store = await asyncio.to_thread(open_keystore, config)
    signer = None
    if store is not None and config.keystore is not None:
        signer = KeyStoreSigner(store, config.keystore.signing_key)
    engine = create_engine(config.database_url, busy_timeout_ms=config.database.busy_timeout_ms)
    try:
        log = AuditLog(session_factory(engine), SUITES[config.security.suite], SystemClock())
        report = await log.verify(
            signer,
            branch=branch,
            period=config.audit.checkpoint_period,
            grace=GRACE,
            remote=remote,
        )
    finally:
        await engine.dispose()
    if report.problem is not None:
        print(f"audit log NOT intact: {report.problem.describe()}; {compared}")
        return EXIT_FAILURE
    signatures = "checked" if signer is not None else "NOT checked (no key store configured)"
    anchors = (
        f"{report.anchors} period checkpoints" if report.anchors else "no period checkpoints yet"
    )
    print(
        f"audit log intact: {report.entries} entries, {report.checkpoints} checkpoints, "
        f"signatures {signatures}, {anchors}; {compared}"
    )
    return status


def audit_public_key(config: Config) -> int:
    """Print the PEM public key of the branch's checkpoint signing key."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    from gateway.assembly import open_keystore  # noqa: PLC0415 - on demand

    store = open_keystore(config)
    if store is None or config.keystore is None:
        print("branchd: no [keystore] configured")
        return EXIT_FAILURE
    der = store.public_key(config.keystore.signing_key)
    pem = serialization.load_der_public_key(der).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    print(pem.decode(), end="")
    return EXIT_OK
