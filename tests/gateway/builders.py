"""Helpers for tests that run the daemon."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from gateway.config import Config, parse_config

if TYPE_CHECKING:
    from pathlib import Path

#: The bearer token of each test terminal (``<role>-01``).
TOKENS = {role: f"{role}-token-" + "x" * 32 for role in ("teller", "supervisor", "kiosk", "ops")}


def daemon_config(
    database_url: str, data_dir: Path, port: int = 0, **server: float | str | dict[str, str]
) -> Config:
    """A daemon configuration on ``database_url`` listening on 127.0.0.1:``port``."""
    return parse_config(
        {
            "data_dir": str(data_dir),
            "branch": {"id": "T-652300-01", "name": "测试网点", "region": "652300"},
            "server": {"host": "127.0.0.1", "port": port, **server},
            "database": {"url": database_url},
        },
        environ={},
    )


def branch_config(
    database_url: str,
    data_dir: Path,
    **sections: Any,  # noqa: ANN401 - config sections
) -> Config:
    """A branch on 127.0.0.1 (any port) with a key store and a terminal per role.

    ``sections`` are added to (or replace) the configuration's top-level sections:
    ``upstream``, ``business``, ``logging`` ...
    """
    return parse_config(
        {
            "data_dir": str(data_dir),
            "branch": {"id": "T-652300-01", "region": "652300"},
            "server": {"host": "127.0.0.1", "port": 0},
            "database": {"url": database_url},
            "keystore": {"master_key": {"file": str(master_key_file(data_dir))}},
            "terminals": [
                {"id": f"{role}-01", "role": role, "token": token} for role, token in TOKENS.items()
            ],
            **sections,
        }
    )


def config_toml(
    database_url: str, data_dir: Path, port: int, master_key: Path | None = None
) -> str:
    """The same configuration as TOML text, for the command-line tests."""
    text = (
        f'data_dir = "{data_dir}"\n'
        '[branch]\nid = "T-652300-01"\nregion = "652300"\n'
        f'[server]\nhost = "127.0.0.1"\nport = {port}\nshutdown_timeout = 10\n'
        f'[database]\nurl = "{database_url}"\n'
        '[logging]\nformat = "json"\n'
    )
    if master_key is not None:
        text += f'[keystore]\nmaster_key = {{ file = "{master_key}" }}\n'
    return text


def master_key_file(directory: Path) -> Path:
    """A fresh random master key (hex) in an owner-only file."""
    path = directory / "master.key"
    path.write_text(secrets.token_hex(32), encoding="ascii")
    path.chmod(0o600)
    return path
