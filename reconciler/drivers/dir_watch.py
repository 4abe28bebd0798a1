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
    """Yield the names of files changed in ``path`` until ``stop_event`` is set.

    A folder that does not exist yet is waited for by watching its nearest existing
    parent, one level only (a recursive watch of a parent such as the daemon's home would
    see every write of its state store and Git work trees); the generator ends when the
    folder appears, so the caller re-checks and starts a watch on it.
    """
    target = path.resolve()
    while not stop_event.is_set():
        watched = target
        while not watched.exists() and watched != watched.parent:
            watched = watched.parent
        if watched == target:
            break
        async for _changes in watchfiles.awatch(
            watched, stop_event=stop_event, recursive=False, debounce=50, step=20
        ):
            if target.exists():
                return  # the folder appeared
            nearer = target
            while not nearer.exists() and nearer != watched:
                nearer = nearer.parent
            if nearer != watched:
                break  # a folder on the way appeared: watch that one instead
    if stop_event.is_set():
        return
    async for changes in watchfiles.awatch(
        target, stop_event=stop_event, recursive=False, debounce=50, step=20
    ):
        names = {Path(changed).name for _change, changed in changes if Path(changed) != target}
        if names:
            yield names
