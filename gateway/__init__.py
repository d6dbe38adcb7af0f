"""Composition root: configuration, daemon assembly, CLI, HTTP API, persistence."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sscard-branchd")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = ["__version__"]
