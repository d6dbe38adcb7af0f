"""The simulated provincial platforms, national hub and key service (tests and demo only).

See :mod:`simulators.platform.simulator`; docs/protocols/platform.md describes
the messages.
"""

from simulators.platform.keyservice import KeyService, SoftwareKeyService
from simulators.platform.provinces import DEFAULT_PROVINCES, Card, Hub, Province, province_of
from simulators.platform.server import Counters, EnvelopeEndpoint, Faults, LogEntry
from simulators.platform.simulator import (
    DIALECTS,
    PlatformSimulator,
    platform_name,
    run_platform_simulator,
)

__all__ = [
    "DEFAULT_PROVINCES",
    "DIALECTS",
    "Card",
    "Counters",
    "EnvelopeEndpoint",
    "Faults",
    "Hub",
    "KeyService",
    "LogEntry",
    "PlatformSimulator",
    "Province",
    "SoftwareKeyService",
    "platform_name",
    "province_of",
    "run_platform_simulator",
]
