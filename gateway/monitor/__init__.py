"""``branchd monitor``: the central operations monitor of a province.

See ``docs/monitor.md``. Parts: :mod:`~gateway.monitor.state` (current state
from MQTT), :mod:`~gateway.monitor.alerts` (rules, de-duplication, clearing),
:mod:`~gateway.monitor.store` (its own database: alerts, downsampled history),
:mod:`~gateway.monitor.service` (the tasks), :mod:`~gateway.monitor.http` (the
dashboard, SSE, ``/healthz``, ``/metrics``), :mod:`~gateway.monitor.run` (the
process).
"""

from gateway.monitor.settings import MonitorSettings

__all__ = ["MonitorSettings"]
