"""One supervised process of a local endpoint (its proxy, or one of its workers).

A unit starts its process detached (own session, output appended to its log), adopts one
a previous daemon left running, probes its health URL, and restarts it with exponential
backoff when it dies or stops answering; its exit is seen at once through a pidfd in the
event loop, which wakes the endpoint's supervisor and tells the driver's exit listeners.
What a unit remembers across daemon restarts (pid, start time, restarts) lives in its
registry ``Process``, saved by the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import aiohttp

from reconciler.drivers.clusters import local_processes as procs
from reconciler.drivers.clusters import local_registry
from reconciler.drivers.clusters.protocol import ClusterError

_log = logging.getLogger("reconciler.drivers.local")
MISSED_PROBES_UNHEALTHY = 3


@dataclasses.dataclass(frozen=True)
class LocalSettings:
    """Timings of supervision, scaling and draining; the defaults suit real model servers."""

    probe_interval_s: float = 2.0
    health_timeout_s: float = 2.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    healthy_resets_backoff_s: float = 60.0
    startup_timeout_s: float = 900.0
    unhealthy_restart_s: float = 60.0
    stop_grace_s: float = 15.0
    port_free_timeout_s: float = 30.0
    autoscale_interval_s: float = 5.0
    signal_window_s: float = 30.0
    """The window over which the autoscaler reads time to first token."""
    queue_timeout_s: float = 600.0
    """How long a request waits in the proxy for a worker's slot before a 503."""
    drain_timeout_s: float = 600.0
    """How long a retiring worker may take to answer its last requests."""
    max_scale_events: int = 20


@dataclasses.dataclass(frozen=True)
class UnitSpec:
    """How to run one process: ``argv`` and ``env`` with its port filled in."""

    key: str
    """``NAME`` for an endpoint's proxy, ``NAME/ID`` for a worker (logs and messages)."""
    argv: tuple[str, ...]
    env: dict[str, str]
    health_url: str
    log_path: Path
    marker: str
    cwd: Path
    secret_env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Variable -> secret name, resolved (``SecretResolver``) at each start."""


SecretResolver = Callable[[Mapping[str, str]], dict[str, str]]
"""The values of secret variables by name, now; ClusterError when one is missing."""


ExitHook = Callable[["Unit", str], None]


class Unit:
    """One process under supervision; ``tend`` runs one round of it."""

    def __init__(
        self,
        spec: UnitSpec,
        process: local_registry.Process,
        *,
        settings: LocalSettings,
        on_exit: ExitHook,
        save: Callable[[], None],
        secrets: SecretResolver | None = None,
    ) -> None:
        self.spec = spec
        self._secrets = secrets
        self.process = process
        self._settings = settings
        self._on_exit = on_exit
        self._save = save
        self.child: subprocess.Popen[bytes] | None = None
        self.started_at = time.monotonic()
        self.healthy = False
        self.last_healthy_at: float | None = None
        self.failures = 0
        self.last_exit: str | None = None
        self.next_restart_at: float | None = None
        self.exit_fd: int | None = None
        self.stopped = False
        self.missed_probes = 0

    # --- state -----------------------------------------------------------------------

    def identity(self) -> procs.ProcessIdentity | None:
        if self.process.pid is None or self.process.start_ticks is None:
            return None
        return procs.ProcessIdentity(self.process.pid, self.process.start_ticks)

    def running(self) -> bool:
        if self.child is not None:
            self.child.poll()
        identity = self.identity()
        return identity is not None and procs.is_running(identity)

    def answered_since_start(self) -> bool:
        """Whether its health URL answered since the process (re)started."""
        return self.last_healthy_at is not None and self.last_healthy_at >= self.started_at

    def describe(self) -> str:
        """What a person should know of it: serving, starting, or why not running."""
        if self.running():
            state = "serving" if self.healthy else "starting"
            text = f"{state} (pid {self.process.pid})"
        else:
            text = "not running"
            if self.last_exit:
                text += f" ({self.last_exit})"
            if self.next_restart_at is not None:
                wait = max(self.next_restart_at - time.monotonic(), 0.0)
                text += f"; restart {self.failures} in {wait:.0f}s"
        if self.process.restarts:
            text += f"; restarted {self.process.restarts} time(s)"
            if self.running() and self.last_exit:
                text += f", last: {self.last_exit}"
        return text

    # --- life cycle ------------------------------------------------------------------

    def adopt_or_launch(self, *, adopted: procs.ProcessIdentity | None = None) -> None:
        """Watch the process the registry (or ``adopted``) names if it runs, else start one."""
        if adopted is not None and not self.running():
            self.process.pid, self.process.start_ticks = adopted.pid, adopted.start_ticks
            self._save()
        identity = self.identity()
        if identity is not None and procs.is_running(identity):
            _log.info("endpoint %s: adopted pid %d", self.spec.key, identity.pid)
            self.started_at = time.monotonic()
            self._watch_exit(identity.pid)
        else:
            self.launch()

    def launch(self) -> None:
        try:
            env = {**self.spec.env, **self._secret_values()}
            child, identity = procs.spawn(
                self.spec.argv,
                env=procs.child_env(env, marker=self.spec.marker),
                log_path=self.spec.log_path,
                cwd=self.spec.cwd,
            )
        except (procs.SpawnError, ClusterError) as exc:
            self.child = None
            self.last_exit = str(exc)
            self.process.pid = self.process.start_ticks = None
            self._save()
            return
        self.child = child
        self.started_at = time.monotonic()
        self.healthy = False
        self.missed_probes = 0
        self.process.pid, self.process.start_ticks = identity.pid, identity.start_ticks
        self._save()
        self._watch_exit(identity.pid)
        _log.info("endpoint %s: started pid %d", self.spec.key, identity.pid)

    def _secret_values(self) -> dict[str, str]:
        if not self.spec.secret_env:
            return {}
        if self._secrets is None:
            raise ClusterError(f"endpoint {self.spec.key}: no secret store to read its secrets")
        return self._secrets(self.spec.secret_env)

    async def stop(self, *, grace_s: float) -> None:
        """Stop its process group for good (no restart, no exit report)."""
        self.stopped = True
        self._unwatch_exit()
        identity = self.identity()
        if identity is not None:
            await procs.stop_group(identity, grace_s=grace_s, child=self.child)
        self.process.pid = self.process.start_ticks = None
        self.healthy = False

    def detach(self) -> None:
        """Stop watching; the process keeps running (a daemon that closes)."""
        self.stopped = True
        self._unwatch_exit()

    # --- exits -----------------------------------------------------------------------

    def _watch_exit(self, pid: int) -> None:
        """Be told at once when ``pid`` exits (Linux pidfd; elsewhere the probe sees it)."""
        self._unwatch_exit()
        try:
            fd = os.pidfd_open(pid)
        except (OSError, AttributeError):
            return
        self.exit_fd = fd
        asyncio.get_running_loop().add_reader(fd, self._exited)

    def _unwatch_exit(self) -> None:
        fd, self.exit_fd = self.exit_fd, None
        if fd is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)

    def _exited(self) -> None:
        self._unwatch_exit()
        if self.stopped:
            return
        code = self.child.poll() if self.child is not None else None
        self.healthy = False
        why = f"exited with {code}" if code is not None else "exited"
        self._on_exit(self, why)

    # --- supervision -----------------------------------------------------------------

    async def probe(self, session: aiohttp.ClientSession) -> bool:
        timeout = aiohttp.ClientTimeout(total=self._settings.health_timeout_s)
        try:
            async with session.get(
                self.spec.health_url, timeout=timeout, allow_redirects=False
            ) as response:
                return 200 <= response.status < 400
        except (TimeoutError, aiohttp.ClientError, OSError):
            return False

    async def tend(self, session: aiohttp.ClientSession) -> None:
        """One round: probe, or restart after backoff, or kill a hung process."""
        if self.stopped:
            return
        settings = self._settings
        now = time.monotonic()
        if self.running():
            if await self.probe(session):
                self.healthy, self.last_healthy_at, self.missed_probes = True, now, 0
                if now - self.started_at >= settings.healthy_resets_backoff_s:
                    self.failures = 0
                return
            self.missed_probes += 1
            if self.missed_probes >= MISSED_PROBES_UNHEALTHY:
                self.healthy = False  # a busy server may miss one probe; three, it is out
            was_healthy = self.answered_since_start()
            since = (
                self.last_healthy_at if was_healthy and self.last_healthy_at else self.started_at
            )
            limit = settings.unhealthy_restart_s if was_healthy else settings.startup_timeout_s
            if now - since < limit:
                return
            reason = "stopped answering" if was_healthy else "never answered"
            _log.warning(
                "endpoint %s: %s on %s, restarting", self.spec.key, reason, self.spec.health_url
            )
            self.last_exit = f"{reason} on {self.spec.health_url}"
            identity = self.identity()
            if identity is not None:
                self._unwatch_exit()
                await procs.stop_group(identity, grace_s=settings.stop_grace_s, child=self.child)
        self.healthy = False
        if self.next_restart_at is None:
            identity = self.identity()
            if identity is not None and procs.group_members(identity.pid):
                # The leader is gone but what it started is not (a model server's workers):
                # it goes with it, as systemd stops a unit's whole cgroup, or it would keep
                # the port, the memory or the GPU that the restart needs.
                await procs.stop_group(identity, grace_s=settings.stop_grace_s, child=self.child)
            if self.child is not None and self.child.returncode is not None:
                self.last_exit = f"exited with {self.child.returncode}"
            elif self.last_exit is None:
                self.last_exit = "the process is gone"
            delay = min(settings.backoff_initial_s * 2**self.failures, settings.backoff_max_s)
            self.failures += 1
            self.next_restart_at = now + delay
            _log.warning(
                "endpoint %s: %s; restart %d in %.1fs",
                self.spec.key,
                self.last_exit,
                self.failures,
                delay,
            )
            return
        if now < self.next_restart_at:
            return
        self.next_restart_at = None
        self.process.restarts += 1
        self.launch()

    def restart_due_in(self) -> float | None:
        if self.next_restart_at is None:
            return None
        return max(self.next_restart_at - time.monotonic(), 0.0)
