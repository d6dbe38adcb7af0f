"""The JSON shapes the dashboard draws, shared by the monitor and the branch page.

A *branch view* is what ``/api/branches/{id}`` (monitor) and ``/ops/api/branch``
(the daemon's own page) answer, so one page script draws both::

    {"branch": str, "presence": "online" | "offline" | "unknown",
     "presence_reason": str | null, "presence_since": str | null,
     "devices": [device view, ...], "reports": {name: report JSON, ...},
     "counts": {"online": n, "busy": n, "error": n, "offline": n},
     "alerts": [alert JSON, ...]}
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from protocols.mqtt.reports import Report
    from protocols.mqtt.state import DeviceState

__all__ = ["branch_view", "device_view", "report_view"]


def device_view(state: DeviceState) -> dict[str, Any]:
    """One device as JSON."""
    return {
        "device": state.device,
        "kind": state.kind.value,
        "state": state.state.value,
        "reason": state.reason,
        "since": state.since,
        "levels": state.levels.to_json(),
        "counters": dict(state.counters),
    }


def report_view(report: Report) -> dict[str, Any]:
    """One branch report as JSON (its dataclass fields; a number beyond a float is null).

    JSON has no infinity: a browser refuses the whole document for one ``Infinity``.
    """
    shown: dict[str, Any] = _finite(asdict(report))
    return shown


def _finite(value: Any) -> Any:  # noqa: ANN401 - any JSON value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def branch_view(  # noqa: PLR0913 - the parts of one branch, keyword-only
    branch: str,
    *,
    presence: str,
    presence_reason: str | None,
    presence_since: str | None,
    devices: Iterable[DeviceState],
    reports: Mapping[str, Report],
    alerts: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """One branch as JSON (see the module docstring)."""
    shown = [device_view(d) for d in sorted(devices, key=lambda d: d.device)]
    counts = {"online": 0, "busy": 0, "error": 0, "offline": 0}
    for device in shown:
        counts[device["state"]] += 1
    return {
        "branch": branch,
        "presence": presence,
        "presence_reason": presence_reason,
        "presence_since": presence_since,
        "devices": shown,
        "reports": {name: report_view(r) for name, r in sorted(reports.items())},
        "counts": counts,
        "alerts": [dict(a) for a in alerts],
    }
