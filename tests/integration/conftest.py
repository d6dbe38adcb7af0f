"""Fixtures shared by the integration tests."""

from tests.integration.api_branch import branch

__all__ = ["branch"]
