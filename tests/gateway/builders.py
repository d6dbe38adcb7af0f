"""Helpers for tests that run the daemon."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from gateway.config import Config, parse_config

if TYPE_CHECKING:
    from pathlib import Path


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
