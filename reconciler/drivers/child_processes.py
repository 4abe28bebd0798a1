"""Stopping a child process the way an interrupted step must: SIGTERM, a grace, SIGKILL.

A step that runs a subprocess (a runtime's pip install, a local job) and is cancelled
(a cancel through the API, a newer chain of its object) stops that process here before
the cancellation goes on: the process gets SIGTERM and :data:`GRACE_S` seconds to exit
by itself, then SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib

GRACE_S = 10.0
"""How long a child process has after SIGTERM before it is killed."""


async def stop_child(process: asyncio.subprocess.Process, *, grace_s: float = GRACE_S) -> None:
    """Terminate ``process``, kill it if it is still there after ``grace_s``; reap it."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(asyncio.shield(process.wait()), grace_s)
        return
    except TimeoutError:
        pass
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    await process.wait()
