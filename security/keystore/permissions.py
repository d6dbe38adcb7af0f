"""File permission checks for key files and master key files."""

from __future__ import annotations

import stat
from typing import TYPE_CHECKING, Final

from security.keystore.errors import InsecurePermissionsError, KeyStoreConfigError

if TYPE_CHECKING:
    import os
    from pathlib import Path

__all__ = ["FORBIDDEN_MODE_BITS", "check_private_file"]

#: Any permission bit for group or others (read, write or execute) is refused.
FORBIDDEN_MODE_BITS: Final = 0o077


def check_private_file(path: Path, status: os.stat_result) -> None:
    """Refuse a file that is not a regular file or that group or others can access.

    Args:
        path: The file, for the error.
        status: Its ``fstat`` (taken on the open descriptor, so no race).

    Raises:
        InsecurePermissionsError: Group or others have any permission bit.
        KeyStoreConfigError: Not a regular file.
    """
    if not stat.S_ISREG(status.st_mode):
        msg = f"{path} is not a regular file"
        raise KeyStoreConfigError(msg)
    mode = stat.S_IMODE(status.st_mode)
    if mode & FORBIDDEN_MODE_BITS:
        raise InsecurePermissionsError(path, mode)
