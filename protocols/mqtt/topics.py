"""The MQTT topic scheme: one tree per province and branch.

::

    sscard/v1/{province}/{branch}/daemon/state                         retained, Will
    sscard/v1/{province}/{branch}/daemon/{report}                      retained (schema 2)
    sscard/v1/{province}/{branch}/devices/{device}/state               retained
    sscard/v1/{province}/{branch}/agents/{agent}/state                 retained, Will
    sscard/v1/{province}/{branch}/agents/{agent}/devices/{device}/state  retained
    sscard/v1/{province}/{branch}/agents/{agent}/devices/{device}/request
    sscard/v1/{province}/{branch}/clients/{client}/response

Every segment is 1 to 64 characters of ``A-Z a-z 0-9 _ . -``, so no name can
inject a level (``/``) or a wildcard (``+``, ``#``). ``docs/protocols/telemetry.md``
describes the same tree for people.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from protocols.mqtt.errors import TopicError

__all__ = ["REPORT_NAMES", "ROOT", "BranchTopics", "ParsedTopic", "check_segment", "parse_topic"]

ROOT: Final = "sscard/v1"
#: Dots alone ("." or "..") are refused: a URL path cannot name them (they are resolved away).
_SEGMENT_RE: Final = re.compile(r"(?!\.+\Z)[A-Za-z0-9_.\-]{1,64}")
_ROOT_LEVELS: Final = 2  # "sscard", "v1"

#: The branch reports under ``daemon/`` (``protocols.mqtt.reports`` has their codecs).
REPORT_NAMES: Final = frozenset(
    {"queues", "production", "stock", "outbox", "applications", "certificates"}
)

TopicKind = Literal[
    "daemon_state",
    "daemon_report",
    "device_state",
    "agent_state",
    "agent_device_state",
    "agent_request",
    "client_response",
]


def check_segment(name: str, what: str = "segment") -> str:
    """Return ``name`` when it is a valid topic segment.

    Raises:
        TopicError: It is empty, too long, only dots, or holds a character outside the set.
    """
    if not isinstance(name, str) or not _SEGMENT_RE.fullmatch(name):
        raise TopicError(f"{what} must be 1-64 characters of A-Z a-z 0-9 _ . -, not only dots")
    return name


@dataclass(frozen=True, slots=True)
class BranchTopics:
    """The topics of one branch.

    Attributes:
        province: The province code, e.g. ``"650000"``.
        branch: The branch identifier, e.g. ``"T-652300-01"``.
    """

    province: str
    branch: str

    def __post_init__(self) -> None:
        """Refuse names that are not valid segments."""
        check_segment(self.province, "province")
        check_segment(self.branch, "branch")

    @property
    def prefix(self) -> str:
        """``sscard/v1/{province}/{branch}``."""
        return f"{ROOT}/{self.province}/{self.branch}"

    def daemon_certificates(self) -> str:
        """Expiry of the certificates the daemon presents (retained)."""
        return f"{self.prefix}/daemon/certificates"

    def daemon_state(self) -> str:
        """The branch daemon's presence (retained; its Will says offline)."""
        return f"{self.prefix}/daemon/state"

    def daemon_report(self, report: str) -> str:
        """One of the branch reports (retained): ``queues``, ``production``, ``stock``, ..."""
        if report not in REPORT_NAMES:
            raise TopicError("not a report of the schema")
        return f"{self.prefix}/daemon/{report}"

    def device_state(self, device: str) -> str:
        """A device's state as the daemon's registry sees it (retained)."""
        return f"{self.prefix}/devices/{check_segment(device, 'device')}/state"

    def all_device_states(self) -> str:
        """Wildcard over every registry device state."""
        return f"{self.prefix}/devices/+/state"

    def agent_state(self, agent: str) -> str:
        """A device agent's presence (retained; its Will says offline)."""
        return f"{self.prefix}/agents/{check_segment(agent, 'agent')}/state"

    def all_agent_states(self) -> str:
        """Wildcard over every agent's presence."""
        return f"{self.prefix}/agents/+/state"

    def agent_device_state(self, agent: str, device: str) -> str:
        """A device's state as its agent sees it (retained)."""
        return (
            f"{self.prefix}/agents/{check_segment(agent, 'agent')}"
            f"/devices/{check_segment(device, 'device')}/state"
        )

    def all_agent_device_states(self) -> str:
        """Wildcard over every device state of every agent."""
        return f"{self.prefix}/agents/+/devices/+/state"

    def agent_request(self, agent: str, device: str) -> str:
        """Where commands for one device of one agent are published."""
        return (
            f"{self.prefix}/agents/{check_segment(agent, 'agent')}"
            f"/devices/{check_segment(device, 'device')}/request"
        )

    def agent_requests(self, agent: str) -> str:
        """Wildcard over the command topics of every device of one agent."""
        return f"{self.prefix}/agents/{check_segment(agent, 'agent')}/devices/+/request"

    def client_response(self, client: str) -> str:
        """Where one client wants its responses."""
        return f"{self.prefix}/clients/{check_segment(client, 'client')}/response"


@dataclass(frozen=True, slots=True)
class ParsedTopic:
    """What a topic of the scheme names.

    Attributes:
        kind: Which topic of the scheme it is.
        province: The province segment.
        branch: The branch segment.
        agent: The agent segment, for agent topics.
        device: The device segment, for device topics.
        client: The client segment, for response topics.
        report: The report name, for branch reports.
    """

    kind: TopicKind
    province: str
    branch: str
    agent: str | None = None
    device: str | None = None
    client: str | None = None
    report: str | None = None


def parse_topic(topic: str) -> ParsedTopic:
    """Say which topic of the scheme ``topic`` is.

    Raises:
        TopicError: It is not a topic of the scheme.
    """
    if not isinstance(topic, str):
        raise TopicError("a topic is a string")
    levels = topic.split("/")
    if "/".join(levels[:_ROOT_LEVELS]) != ROOT or len(levels) < _ROOT_LEVELS + 4:
        raise TopicError(f"not a topic under {ROOT}")
    for level in levels[_ROOT_LEVELS:]:
        check_segment(level, "topic level")
    province, branch, *rest = levels[_ROOT_LEVELS:]
    kind, names = _kind_of(rest)
    return ParsedTopic(kind, province, branch, **names)


def _kind_of(rest: list[str]) -> tuple[TopicKind, dict[str, str]]:  # noqa: PLR0911 - a case per topic
    """The kind of topic and its named levels, from the levels after the branch."""
    match rest:
        case ["daemon", "state"]:
            return "daemon_state", {}
        case ["daemon", report] if report in REPORT_NAMES:
            return "daemon_report", {"report": report}
        case ["devices", device, "state"]:
            return "device_state", {"device": device}
        case ["agents", agent, "state"]:
            return "agent_state", {"agent": agent}
        case ["agents", agent, "devices", device, "state"]:
            return "agent_device_state", {"agent": agent, "device": device}
        case ["agents", agent, "devices", device, "request"]:
            return "agent_request", {"agent": agent, "device": device}
        case ["clients", client, "response"]:
            return "client_response", {"client": client}
    raise TopicError("not a topic of the scheme")
