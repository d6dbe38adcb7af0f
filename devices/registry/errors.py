"""Errors of the device registry and its publishers."""

from __future__ import annotations

from typing import ClassVar

__all__ = ["PublishError", "RegistryError", "UnknownDeviceError"]


class RegistryError(Exception):
    """Root of the registry errors.

    Attributes:
        code: Stable machine-readable code.
    """

    code: ClassVar[str] = "registry.error"


class PublishError(RegistryError):
    """A publisher could not deliver a message (no broker session).

    Attributes:
        reason: Why.
    """

    code: ClassVar[str] = "registry.publish"

    def __init__(self, reason: str) -> None:
        """Record the reason."""
        super().__init__(f"publish failed: {reason}")
        self.reason = reason


class UnknownDeviceError(RegistryError, LookupError):
    """No device of that identifier is registered.

    Attributes:
        device: The identifier asked for.
    """

    code: ClassVar[str] = "registry.unknown_device"

    def __init__(self, device: str) -> None:
        """Record the identifier."""
        super().__init__(f"unknown device {device}")
        self.device = device
