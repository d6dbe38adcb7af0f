"""Sans-I/O protocol cores: bytes or dicts in, events and bytes out.

Nothing in this package touches a socket, a serial port, a card reader or the
clock. Callers pass received bytes and the current time in, and write what the
codecs return. The rule is enforced by an import-linter contract and by
``protocols/ruff.toml``.
"""
