"""Fixtures shared by the integration tests."""

from tests.devices.agent.conftest import broker
from tests.gateway.branch import branch

__all__ = ["branch", "broker"]
