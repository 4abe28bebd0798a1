"""The disk source: a model already on the daemon's host (or a mounted volume).

The path must exist and be readable; its files are listed with their hashes (through the
hash cache) so that a change on disk shows as drift on the next resync.
"""

from __future__ import annotations

import os
from pathlib import Path

from reconciler.drivers.models.errors import DiskSourceError


def check_path(path: Path) -> Path:
    """``path`` if it is a readable file or folder; else DiskSourceError saying what is wrong."""
    if not path.is_absolute():
        raise DiskSourceError(f"disk source {path} is not an absolute path")
    if not path.exists():
        raise DiskSourceError(f"disk source {path} does not exist on this host")
    if not (path.is_dir() or path.is_file()):
        raise DiskSourceError(f"disk source {path} is neither a file nor a folder")
    wanted = os.R_OK | (os.X_OK if path.is_dir() else 0)
    if not os.access(path, wanted):
        raise DiskSourceError(f"disk source {path} is not readable by the daemon's user")
    return path
