"""A real daemon run in the test's event loop, with a clock the test moves.

Schedules need time to pass; no test waits a real minute, so the daemon reads the time
from a :class:`ManualClock` and the test pokes the scheduler after moving it. Everything
else is real: a bare Git remote on disk, the status branch, the SQLite store.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from reconciler.daemon.config import load_config
from reconciler.daemon.schedules import WorkflowScheduler
from reconciler.daemon.service import Daemon
from reconciler.drivers.sd_notify import SystemdNotifier
from tests.daemon.harness import write_config

T = TypeVar("T")


@dataclasses.dataclass
class ManualClock:
    """An aware UTC time that only moves when the test says."""

    now: datetime.datetime

    def __call__(self) -> datetime.datetime:
        return self.now

    @classmethod
    def at(cls, text: str) -> ManualClock:
        return cls(datetime.datetime.fromisoformat(text.replace("Z", "+00:00")))

    def set(self, text: str) -> None:
        self.now = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


async def wait_until(
    what: str, probe: Callable[[], T | Awaitable[T | None] | None], *, timeout: float = 60.0
) -> T:
    """Await ``probe`` being truthy, failing with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        result = probe()
        last = await result if asyncio.iscoroutine(result) else result
        if last:
            return last  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@dataclasses.dataclass
class RunningDaemon:
    daemon: Daemon
    task: asyncio.Task[int]

    def status(self, key: str) -> dict[str, Any]:
        reconciler = self.daemon.reconciler
        assert reconciler is not None
        return dict(reconciler.status_of(key) or {})

    def executions(self, name: str) -> list[Any]:
        """A Workflow's executions, newest first."""
        assert self.daemon.store is not None
        return self.daemon.store.list_executions(kind="Workflow", name=name)

    def scheduler(self) -> WorkflowScheduler:
        reconciler = self.daemon.reconciler
        assert reconciler is not None and reconciler.workflow_hooks is not None
        return reconciler.workflow_hooks.scheduler

    def poke(self) -> None:
        self.scheduler().poke()

    async def stop(self) -> None:
        self.daemon.request_stop()
        await asyncio.wait_for(self.task, timeout=30)


async def start_daemon(
    tmp_path: Path, remote: Path, clock: ManualClock, *, owns_process: bool = False, **config: Any
) -> RunningDaemon:
    """A daemon on ``remote`` whose state lives in ``tmp_path/state`` (kept across
    restarts), started and past its first load."""
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    path = write_config(
        tmp_path / "reconciler.yaml",
        remote=remote,
        state_dir=tmp_path / "state",
        secrets_dir=secrets,
        poll="200ms",
    )
    if config:
        data = yaml.safe_load(path.read_text())
        data.update(config)
        path.write_text(yaml.safe_dump(data))
    daemon = Daemon(
        load_config(path),
        notifier=SystemdNotifier(environ={}),
        clock=clock,
        owns_process=owns_process,
    )
    task = asyncio.create_task(daemon.run())

    def ready() -> bool:
        if task.done():
            task.result()
        return daemon.ready

    await wait_until("the daemon's first load", ready)
    return RunningDaemon(daemon, task)
