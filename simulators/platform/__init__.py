"""The simulated provincial platforms, national hub and key service (tests and demo only).

See :mod:`simulators.platform.simulator`; docs/protocols/platform.md describes
the messages; :mod:`simulators.platform.cli` is ``branchd sim platform``.
"""

from simulators.platform.keyservice import (
    DEMO_ZONE_PIN_KEY,
    CardKeyRef,
    KeyService,
    KeyServiceError,
    SoftwareKeyService,
    pin_block_account,
)
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
    "DEMO_ZONE_PIN_KEY",
    "DIALECTS",
    "Card",
    "CardKeyRef",
    "Counters",
    "EnvelopeEndpoint",
    "Faults",
    "Hub",
    "KeyService",
    "KeyServiceError",
    "LogEntry",
    "PlatformSimulator",
    "Province",
    "SoftwareKeyService",
    "pin_block_account",
    "platform_name",
    "province_of",
    "run_platform_simulator",
]
