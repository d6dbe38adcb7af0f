"""Alert rules and the alert book: raise once, keep while true, clear when it ends.

:func:`conditions` looks at one branch and returns every condition that holds
now (a pure function of the branch, the time and the thresholds).
:class:`AlertBook` compares them with the alerts it keeps: a new condition
raises an alert, a condition that holds again raises nothing (de-duplication by
key ``rule:branch:device``), an alert whose condition is gone is cleared. An
acknowledged alert stays listed until it clears. The book is in memory; the
monitor stores each raise, clear and acknowledgement (``store.py``).

Rules (thresholds in ``[alerts]``):

============================  ========  ==========================================
rule                          severity  holds while
============================  ========  ==========================================
``daemon_offline``            critical  the daemon's presence is offline for
                                        ``daemon_offline_after`` seconds (Last Will)
``device_offline``            critical  a device is offline for ``device_offline_after``
                                        seconds (not checked while the daemon is offline)
``feeder_low``                warning   a printer's feeder is near empty or empty
``ribbon_low``                warning   ribbon with at most ``ribbon_low`` cards left
``reject_box_full``           warning   the reject box is full
``outbox_backlog``            warning   at least ``outbox_backlog`` upstream messages wait
``dead_letters``              critical  upstream messages expired undelivered
``overdue_applications``      warning   applications past their time limit
``stock_mismatch``            critical  the last stock reconciliation found a difference
``certificate_expiring``      warning   a certificate expires within ``certificate_days``
============================  ========  ==========================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from protocols.mqtt.reports import (
    ApplicationsReport,
    CertificatesReport,
    OutboxReport,
    StockReport,
)
from protocols.mqtt.state import DeviceStatus, FeederLevel, Presence

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    from gateway.monitor.settings import AlertSettings
    from gateway.monitor.state import BranchEntry

__all__ = ["RULES", "Alert", "AlertBook", "Condition", "conditions", "needs_timer", "printable"]

#: Every rule and its severity.
RULES: dict[str, str] = {
    "daemon_offline": "critical",
    "device_offline": "critical",
    "feeder_low": "warning",
    "ribbon_low": "warning",
    "reject_box_full": "warning",
    "outbox_backlog": "warning",
    "dead_letters": "critical",
    "overdue_applications": "warning",
    "stock_mismatch": "critical",
    "certificate_expiring": "warning",
}


@dataclass(frozen=True, slots=True)
class Condition:
    """A rule that holds for a branch (or one of its devices) now.

    Attributes:
        rule: The rule.
        branch: The branch.
        device: The device, for device rules.
        detail: What was seen (codes and counts only, never personal data).
    """

    rule: str
    branch: str
    device: str | None
    detail: str

    @property
    def key(self) -> str:
        """The de-duplication key."""
        return f"{self.rule}:{self.branch}:{self.device or ''}"


@dataclass(slots=True)
class Alert:
    """One alert, from raise to clear.

    Attributes:
        key: ``rule:branch:device``.
        rule: The rule.
        branch: The branch.
        device: The device, for device rules.
        severity: ``critical`` or ``warning``.
        detail: What was seen when it was raised.
        raised_at: When it was raised.
        id: Its row in the store (``None`` until stored).
        cleared_at: When its condition ended.
        acked_by: Who acknowledged it.
        acked_at: When.
    """

    key: str
    rule: str
    branch: str
    device: str | None
    severity: str
    detail: str
    raised_at: datetime
    id: int | None = None
    cleared_at: datetime | None = None
    acked_by: str | None = None
    acked_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """As JSON for the dashboard."""
        return {
            "id": self.id,
            "key": self.key,
            "rule": self.rule,
            "branch": self.branch,
            "device": self.device,
            "severity": self.severity,
            "detail": self.detail,
            "raised_at": _iso(self.raised_at),
            "cleared_at": _iso(self.cleared_at),
            "acked_by": self.acked_by,
            "acked_at": _iso(self.acked_at),
        }


def printable(text: str) -> str:
    """``text`` as it may be stored and shown: NUL and undecodable characters escaped.

    Reasons come from branch payloads; JSON lets them hold NUL and lone
    surrogates (as escapes), which no database column and no UTF-8 page take.
    """
    cleaned = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return cleaned.replace("\x00", "\\x00")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds")


def needs_timer(entry: BranchEntry) -> bool:
    """Whether a condition of ``entry`` may start to hold just by time passing."""
    if entry.presence is Presence.OFFLINE:
        return True
    return any(d.state.state is DeviceStatus.OFFLINE for d in entry.devices.values())


def conditions(entry: BranchEntry, now: datetime, limits: AlertSettings) -> list[Condition]:
    """Every condition that holds for ``entry`` at ``now``."""
    found: list[Condition] = []
    branch = entry.branch
    offline = entry.presence is Presence.OFFLINE
    if offline and entry.presence_since is not None:
        waited = (now - entry.presence_since).total_seconds()
        if waited >= limits.daemon_offline_after:
            found.append(
                Condition(
                    "daemon_offline", branch, None, printable(entry.presence_reason or "offline")
                )
            )
    for name, device in entry.devices.items():
        state = device.state
        waited = (now - device.since).total_seconds()
        if state.state is DeviceStatus.OFFLINE and not offline:  # noqa: SIM102 - two reasons
            if waited >= limits.device_offline_after:
                detail = printable(state.reason or "offline")
                found.append(Condition("device_offline", branch, name, detail))
        levels = state.levels
        if levels.feeder in {FeederLevel.NEAR_EMPTY, FeederLevel.EMPTY}:
            found.append(Condition("feeder_low", branch, name, str(levels.feeder)))
        remaining = levels.ribbon_remaining
        if remaining is not None and remaining <= limits.ribbon_low:
            found.append(Condition("ribbon_low", branch, name, f"{remaining} cards left"))
        if levels.reject_box_full:
            found.append(Condition("reject_box_full", branch, name, "reject box full"))
    found.extend(_report_conditions(entry, limits))
    return found


def _report_conditions(entry: BranchEntry, limits: AlertSettings) -> list[Condition]:
    found: list[Condition] = []
    branch, reports = entry.branch, entry.reports
    outbox = reports.get("outbox")
    if isinstance(outbox, OutboxReport):
        if outbox.pending >= limits.outbox_backlog:
            found.append(Condition("outbox_backlog", branch, None, f"{outbox.pending} waiting"))
        if outbox.dead_letters:
            found.append(
                Condition("dead_letters", branch, None, f"{outbox.dead_letters} dead letters")
            )
    applications = reports.get("applications")
    if isinstance(applications, ApplicationsReport) and applications.overdue:
        found.append(
            Condition("overdue_applications", branch, None, f"{applications.overdue} overdue")
        )
    stock = reports.get("stock")
    if isinstance(stock, StockReport) and stock.reconciled is False:
        found.append(Condition("stock_mismatch", branch, None, f"{stock.problems} difference(s)"))
    certificates = reports.get("certificates")
    if isinstance(certificates, CertificatesReport):
        soon = [c for c in certificates.certificates if c.days_left <= limits.certificate_days]
        if soon:
            least = min(c.days_left for c in soon)
            found.append(Condition("certificate_expiring", branch, None, f"{least:.0f} days left"))
    return found


class AlertBook:
    """The alerts that are active now, by branch (see the module docstring)."""

    def __init__(self) -> None:
        """Start with none."""
        self._active: dict[str, dict[str, Alert]] = {}

    def active(self, branch: str | None = None) -> list[Alert]:
        """Active alerts, of one branch or of all, oldest first."""
        if branch is not None:
            alerts = list(self._active.get(branch, {}).values())
        else:
            alerts = [a for by_key in self._active.values() for a in by_key.values()]
        return sorted(alerts, key=lambda a: (a.raised_at, a.key))

    def count(self, branch: str) -> int:
        """How many alerts of ``branch`` are active."""
        return len(self._active.get(branch, {}))

    def total(self) -> int:
        """How many alerts are active."""
        return sum(len(by_key) for by_key in self._active.values())

    def find(self, key: str) -> Alert | None:
        """The active alert with ``key``."""
        branch = key.split(":", 2)[1] if key.count(":") >= 2 else ""  # noqa: PLR2004
        return self._active.get(branch, {}).get(key)

    def adopt(self, alert: Alert) -> None:
        """Take over an active alert (loaded from the store at start)."""
        self._active.setdefault(alert.branch, {})[alert.key] = alert

    def update(
        self, branch: str, holding: Iterable[Condition], now: datetime
    ) -> tuple[list[Alert], list[Alert]]:
        """Compare ``holding`` with the branch's alerts; return (raised, cleared)."""
        current = self._active.setdefault(branch, {})
        wanted = {c.key: c for c in holding}
        raised = []
        for key, condition in wanted.items():
            if key not in current:
                alert = Alert(
                    key,
                    condition.rule,
                    branch,
                    condition.device,
                    RULES[condition.rule],
                    condition.detail,
                    now,
                )
                current[key] = alert
                raised.append(alert)
        cleared = []
        for key in [k for k in current if k not in wanted]:
            alert = current.pop(key)
            alert.cleared_at = now
            cleared.append(alert)
        if not current:
            del self._active[branch]
        return raised, cleared
