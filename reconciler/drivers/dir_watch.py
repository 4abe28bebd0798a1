"""Watching a folder of files the daemon reads (the secrets directory) for changes.

A secret created or replaced after start-up should count at once, not at the next resync
minutes later. Yields once per batch of changes; the caller re-checks what depends on
those files. Uses watchfiles (inotify), whose own periodic debug chatter is kept out of
the daemon's log by the logging setup.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import watchfiles


class _StopEvent(Protocol):
    def is_set(self) -> bool: ...

    async def wait(self) -> object: ...


async def watch_dir(path: Path, *, stop_event: _StopEvent) -> AsyncIterator[set[str]]:
    """Yield the names of files changed under ``path`` until ``stop_event`` is set.

    A folder that does not exist yet is waited for by watching its nearest existing
    parent; nothing is yielded for changes outside ``path``.
    """
    target = path.resolve()
    watched = target
    while not watched.exists() and watched != watched.parent:
        watched = watched.parent
    async for changes in watchfiles.awatch(
        watched, stop_event=stop_event, recursive=watched != target, debounce=50, step=20
    ):
        names = {
            Path(changed).name
            for _change, changed in changes
            if Path(changed).resolve().is_relative_to(target) and Path(changed) != target
        }
        if target.exists() and watched != target:
            return  # the folder appeared: the caller starts a watch on it
        if names:
            yield names
