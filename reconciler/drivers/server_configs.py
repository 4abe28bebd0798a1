"""Config files that local model servers read (llama-cpp-python's ``--config_file``).

The deploy step renders a server's config (pure, reconciler.core.render.llm_server) and
this module writes it under ``<root>/<endpoint>-<digest>.json``: named by its content, so
a changed config is a changed command line, which the local driver sees as a new
revision and restarts the server on; an unchanged one leaves the server alone. The file
is written to a temporary name and renamed, so a server never reads half of one. Older
files of the same endpoint are pruned only once the driver runs the new command (until
then the supervisor may restart the old server, which reads its own file again).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path


class ServerConfigs:
    """Content-addressed server config files under ``root``."""

    def __init__(self, root: Path) -> None:
        self._root = root

    @property
    def root(self) -> Path:
        return self._root

    def write(self, endpoint: str, text: str) -> Path:
        """The path of a file holding ``text`` for ``endpoint`` (written if new)."""
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        path = self._root / f"{endpoint}-{digest}.json"
        self._root.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text() != text:
            staging = path.with_suffix(f".tmp{os.getpid()}")
            staging.write_text(text)
            staging.replace(path)
        return path

    def prune(self, endpoint: str, *, keep: Path | None = None) -> None:
        """Remove ``endpoint``'s config files but ``keep`` (all of them when None)."""
        for older in self._root.glob(f"{endpoint}-*.json"):
            if older != keep and _digest_part(older, endpoint):
                with contextlib.suppress(FileNotFoundError):
                    older.unlink()


def _digest_part(path: Path, endpoint: str) -> bool:
    """Whether ``path`` is ``<endpoint>-<16 hex>.json`` (not another endpoint's whose name
    starts with this one's)."""
    rest = path.name[len(endpoint) + 1 : -len(".json")]
    return len(rest) == 16 and all(c in "0123456789abcdef" for c in rest)
