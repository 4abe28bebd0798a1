"""The local cluster driver: each endpoint a supervised model server on this host.

The embedded default. A server is a detached process (own session, output in
``<state>/logs/<name>.log``) bound to 127.0.0.1 on a port allocated once and kept in the
registry, so ``http://127.0.0.1:PORT/v1`` stays the same across a server crash and a
daemon restart; the registry also remembers each name's port after the endpoint is
removed, and a new endpoint of that name gets it back while it is free. A supervisor
task per endpoint probes its health path, restarts it with exponential backoff when it
dies (or stays unhealthy), and on start the driver adopts
the servers a previous daemon left running, never starting a second one. A server's exit
is seen at once (a pidfd in the event loop, not the next probe): the supervisor wakes to
restart it and the exit listeners (the daemon: the Deployment is Drifted) are told. Removal stops
the whole process group (SIGTERM, then SIGKILL after a grace) and waits for the port.

One worker per endpoint: there is no load balancer in front of local servers, so other
worker counts and GPU requests are refused rather than ignored. A new revision replaces
the server in place (the port cannot be held by two servers at once), whatever the
strategy says; the observation's message says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import aiohttp

from reconciler.drivers.clusters import local_admin, local_jobs, local_registry
from reconciler.drivers.clusters import local_processes as procs
from reconciler.drivers.clusters.protocol import (
    ClusterCheck,
    ClusterError,
    EndpointNotFoundError,
    EndpointObservation,
    EndpointSpec,
    GpuCount,
    InvalidEndpointError,
    Inventory,
    JobHandle,
    JobNotFoundError,
    JobSpec,
    JobStatus,
    WorkerResources,
)

_log = logging.getLogger("reconciler.drivers.local")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
PORT_PLACEHOLDER = "{port}"
REPLACED_IN_PLACE = "the local driver replaces a server in place (one port per endpoint)"


@dataclasses.dataclass(frozen=True)
class LocalSettings:
    """Timings of supervision; the defaults suit real model servers."""

    probe_interval_s: float = 2.0
    health_timeout_s: float = 2.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    healthy_resets_backoff_s: float = 60.0
    startup_timeout_s: float = 900.0
    unhealthy_restart_s: float = 60.0
    stop_grace_s: float = 15.0
    port_free_timeout_s: float = 30.0


@dataclasses.dataclass
class _Live:
    """What the supervisor knows of one endpoint beyond the registry."""

    child: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    healthy: bool = False
    last_healthy_at: float | None = None
    failures: int = 0
    last_exit: str | None = None
    next_restart_at: float | None = None
    task: asyncio.Task[None] | None = None
    wake: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    exit_fd: int | None = None
    """A pidfd of the server, readable once it exits (None: not watched)."""


class LocalClusterDriver:
    """Endpoints as supervised processes under ``state_dir``; see the module docstring."""

    def __init__(
        self,
        *,
        state_dir: Path,
        settings: LocalSettings | None = None,
        secrets: Callable[[str], str] | None = None,
    ) -> None:
        self._state_dir = state_dir.resolve()
        self._secrets = secrets
        """Resolves an endpoint's ``secret_env`` names at each start (the daemon's store)."""
        self._settings = settings or LocalSettings()
        self._registry = local_registry.Registry(self._state_dir / "endpoints.json")
        self._live: dict[str, _Live] = {}
        self._jobs: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = asyncio.Lock()
        self._started = False
        self._session: aiohttp.ClientSession | None = None
        self._exit_listeners: list[Callable[[str, str], None]] = []

    def add_exit_listener(self, listener: Callable[[str, str], None]) -> None:
        """Tell ``listener(endpoint, why)`` when an endpoint's server exits by itself."""
        self._exit_listeners.append(listener)

    # --- life cycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Load the registry and adopt (or restart) every endpoint it names."""
        async with self._lock:
            await self._start_locked()

    async def _start_locked(self) -> None:
        if self._started:
            return
        try:
            self._registry.load()
        except local_registry.RegistryError as exc:
            raise ClusterError(str(exc)) from exc
        self._started = True
        for record in list(self._registry.endpoints.values()):
            await self._adopt(record)

    async def close(self) -> None:
        """Stop supervising; the servers keep running for the next daemon to adopt."""
        for live in self._live.values():
            self._unwatch_exit(live)
            if live.task is not None:
                live.task.cancel()
        for live in self._live.values():
            if live.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await live.task
        self._live.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._started = False

    # --- cluster ---------------------------------------------------------------------

    async def check(self) -> ClusterCheck:
        version = f"local {platform.system()} {platform.release()} ({platform.machine()})"
        return ClusterCheck(reachable=True, version=version)

    async def inventory(self) -> Inventory:
        """GPUs of this host from ``nvidia-smi``; free ones run no compute process."""
        smi = shutil.which("nvidia-smi")
        if smi is None:
            return Inventory()
        gpus = await _run_text([smi, "--query-gpu=uuid,name", "--format=csv,noheader"])
        busy = await _run_text([smi, "--query-compute-apps=gpu_uuid", "--format=csv,noheader"])
        held = {line.strip() for line in busy.splitlines() if line.strip()}
        totals: dict[str, list[int]] = {}
        for line in gpus.splitlines():
            if "," not in line:
                continue
            uuid, name = (part.strip() for part in line.split(",", 1))
            counts = totals.setdefault(name, [0, 0])
            counts[0] += 1
            counts[1] += 0 if uuid in held else 1
        return Inventory(
            gpus={name: GpuCount(name, total, free) for name, (total, free) in totals.items()}
        )

    # --- endpoints -------------------------------------------------------------------

    async def apply_endpoint(self, spec: EndpointSpec) -> EndpointObservation:
        argv = self._check_spec(spec)
        digest = _digest(argv, spec.env, spec.health_path, self._secret_digest(spec.secret_env))
        async with self._lock:
            await self._start_locked()
            record = self._registry.endpoints.get(spec.name)
            if record is not None and record.digest == digest:
                live = self._live.get(spec.name)
                if live is None or live.task is None or live.task.done():
                    await self._adopt(record)
                return await self._observe(spec.name)
            if record is not None:
                await self._stop(record)
                record.argv, record.env = argv, dict(spec.env)
                record.secret_env = dict(spec.secret_env)
                record.health_path, record.digest = spec.health_path, digest
                record.labels, record.restarts = dict(spec.owner_labels), 0
            else:
                record = local_registry.EndpointRecord(
                    name=spec.name,
                    port=self._port_for(spec.name),
                    argv=argv,
                    env=dict(spec.env),
                    health_path=spec.health_path,
                    digest=digest,
                    labels=dict(spec.owner_labels),
                    secret_env=dict(spec.secret_env),
                )
                self._registry.endpoints[spec.name] = record
            self._registry.save()
            live = _Live()
            self._live[spec.name] = live
            self._launch(record, live)
            live.task = asyncio.create_task(self._supervise(spec.name), name=f"local:{spec.name}")
            observation = await self._observe(spec.name)
        if spec.strategy == "green":
            message = f"{observation.message}; {REPLACED_IN_PLACE}".lstrip("; ")
            observation = dataclasses.replace(observation, message=message)
        return observation

    async def observe_endpoint(self, name: str) -> EndpointObservation:
        async with self._lock:
            await self._start_locked()
            return await self._observe(name)

    async def delete_endpoint(self, name: str) -> bool:
        async with self._lock:
            await self._start_locked()
            record = self._registry.endpoints.get(name)
            strays = procs.marked_leaders(self._marker(name))
            if record is None and not strays:
                return False
            if record is not None:
                await self._stop(record)
            for stray in strays:
                await procs.stop_group(stray, grace_s=self._settings.stop_grace_s)
            if record is not None:
                free = await procs.wait_port_free(
                    record.port, timeout_s=self._settings.port_free_timeout_s
                )
                if not free:
                    raise ClusterError(
                        f"endpoint {name}: its server is stopped but port {record.port} is "
                        "still taken by another process"
                    )
                del self._registry.endpoints[name]
                self._registry.save()
            self._log_path(name).unlink(missing_ok=True)
            return True

    async def scale_endpoint(self, name: str, workers: int) -> EndpointObservation:
        async with self._lock:
            await self._start_locked()
            if name not in self._registry.endpoints:
                raise EndpointNotFoundError(f"no local endpoint named {name!r}")
            if workers != 1:
                raise InvalidEndpointError(_one_worker(name, workers))
            return await self._observe(name)

    # --- jobs ------------------------------------------------------------------------

    def job_runner(self) -> local_jobs.LocalJobRunner:
        """Jobs run to their end on this host (the ``k8s_job`` step), under the state dir."""
        return local_jobs.LocalJobRunner(
            folder=self._state_dir / "job-runs", stop_grace_s=self._settings.stop_grace_s
        )

    async def run_job(self, spec: JobSpec) -> JobHandle:
        if not _NAME.fullmatch(spec.name):
            raise InvalidEndpointError(f"job name {spec.name!r} is not a valid name")
        argv = [*spec.command, *spec.args]
        if not argv:
            raise InvalidEndpointError(
                f"job {spec.name}: the local driver runs a command, and this job has only an image"
            )
        async with self._lock:
            await self._start_locked()
            old = self._registry.jobs.get(spec.name)
            if old is not None and procs.is_running(
                procs.ProcessIdentity(old.pid, old.start_ticks)
            ):
                raise ClusterError(f"job {spec.name} is still running")
            folder = self._state_dir / "jobs"
            exit_file = folder / f"{spec.name}.exit"
            exit_file.unlink(missing_ok=True)
            wrapper = [
                "/bin/sh",
                "-c",
                '"$@"; code=$?; printf %s "$code" > "$0.tmp" && mv "$0.tmp" "$0"; exit $code',
                str(exit_file),
                *argv,
            ]
            log = folder / f"{spec.name}.log"
            log.unlink(missing_ok=True)
            env = procs.child_env(spec.env, marker=f"{self._state_dir}::job::{spec.name}")
            try:
                child, identity = procs.spawn(wrapper, env=env, log_path=log, cwd=folder)
            except procs.SpawnError as exc:
                raise InvalidEndpointError(f"job {spec.name}: {exc}") from exc
            self._jobs[spec.name] = child
            self._registry.jobs[spec.name] = local_registry.JobRecord(
                spec.name, identity.pid, identity.start_ticks, str(log), str(exit_file)
            )
            self._registry.save()
            return JobHandle(name=spec.name)

    async def job_status(self, handle: JobHandle) -> JobStatus:
        record = self._job(handle)
        child = self._jobs.get(handle.name)
        if child is not None:
            child.poll()
        exit_file = Path(record.exit_file)
        if exit_file.is_file():
            code = int(exit_file.read_text().strip() or "-1")
            return JobStatus("succeeded" if code == 0 else "failed", exit_code=code)
        if procs.is_running(procs.ProcessIdentity(record.pid, record.start_ticks)):
            return JobStatus("running")
        killed = child.returncode if child is not None else None
        return JobStatus("failed", exit_code=killed, message="the job was killed before it ended")

    async def job_logs(self, handle: JobHandle, *, tail_bytes: int | None = None) -> str:
        record = self._job(handle)
        try:
            data = Path(record.log).read_bytes()
        except FileNotFoundError:
            return ""
        if tail_bytes is not None:
            data = data[-tail_bytes:]
        return data.decode(errors="replace")

    def _job(self, handle: JobHandle) -> local_registry.JobRecord:
        if not self._started:
            self._registry.load()
            self._started = True
        record = self._registry.jobs.get(handle.name)
        if record is None:
            raise JobNotFoundError(f"no local job named {handle.name!r}")
        return record

    # --- internals -------------------------------------------------------------------

    def _check_spec(self, spec: EndpointSpec) -> list[str]:
        if not _NAME.fullmatch(spec.name):
            raise InvalidEndpointError(
                f"endpoint name {spec.name!r}: use letters, digits, '.', '_' and '-'"
            )
        argv = [*spec.command, *spec.args]
        if not argv:
            raise InvalidEndpointError(
                f"endpoint {spec.name}: the local driver runs a command on this host, and the "
                "template gives only an image"
            )
        if spec.workers != 1:
            raise InvalidEndpointError(_one_worker(spec.name, spec.workers))
        if spec.resources.gpus:
            raise InvalidEndpointError(
                f"endpoint {spec.name}: asks for {spec.resources.gpus} GPU(s) per worker; the "
                "local driver runs CPU servers only (use a kubernetes cluster for GPUs)"
            )
        return argv

    def _port_for(self, name: str) -> int:
        """The port endpoint ``name`` had before, when no other endpoint holds it and it
        is free (a Deployment removed and created again keeps its URL); else a new one,
        avoiding the ports other names remember. Remembered in the registry either way."""
        taken = {r.port for r in self._registry.endpoints.values()}
        remembered = self._registry.ports.get(name)
        if remembered is not None and remembered not in taken and procs.port_is_free(remembered):
            port = remembered
        else:
            others = {p for other, p in self._registry.ports.items() if other != name}
            port = procs.allocate_port(avoid=taken | others)
        self._registry.remember_port(name, port)
        return port

    def _marker(self, name: str) -> str:
        return local_admin.endpoint_marker(self._state_dir, name)

    def _log_path(self, name: str) -> Path:
        return self._state_dir / "logs" / f"{name}.log"

    def _identity(self, record: local_registry.EndpointRecord) -> procs.ProcessIdentity | None:
        if record.pid is None or record.start_ticks is None:
            return None
        return procs.ProcessIdentity(record.pid, record.start_ticks)

    def _running(self, record: local_registry.EndpointRecord) -> bool:
        live = self._live.get(record.name)
        if live is not None and live.child is not None:
            live.child.poll()
        identity = self._identity(record)
        return identity is not None and procs.is_running(identity)

    async def _adopt(self, record: local_registry.EndpointRecord) -> None:
        """Supervise ``record``'s server: the running one if any, else start it."""
        identity = self._identity(record)
        marked = procs.marked_leaders(self._marker(record.name))
        if (identity is None or not procs.is_running(identity)) and marked:
            # The registry lost the pid (a crash between start and save): take that one.
            identity = marked[0]
            record.pid, record.start_ticks = identity.pid, identity.start_ticks
            self._registry.save()
        strays = [found for found in marked if found != identity]
        for stray in strays:
            _log.warning("endpoint %s: stopping a second server (pid %d)", record.name, stray.pid)
            await procs.stop_group(stray, grace_s=self._settings.stop_grace_s)
        live = _Live(started_at=time.monotonic())
        self._live[record.name] = live
        if identity is not None and procs.is_running(identity):
            _log.info(
                "endpoint %s: adopted pid %d on port %d", record.name, identity.pid, record.port
            )
            self._watch_exit(record.name, live, identity.pid)
        else:
            self._launch(record, live)
        live.task = asyncio.create_task(self._supervise(record.name), name=f"local:{record.name}")

    def _launch(self, record: local_registry.EndpointRecord, live: _Live) -> None:
        argv = [part.replace(PORT_PLACEHOLDER, str(record.port)) for part in record.argv]
        env = {
            key: value.replace(PORT_PLACEHOLDER, str(record.port))
            for key, value in record.env.items()
        }
        log_path = self._log_path(record.name)
        try:
            env.update(self._resolved(record.secret_env))
            child, identity = procs.spawn(
                argv,
                env=procs.child_env(env, marker=self._marker(record.name)),
                log_path=log_path,
                cwd=self._state_dir,
            )
        except (procs.SpawnError, ClusterError) as exc:
            live.child = None
            live.last_exit = str(exc)
            record.pid = record.start_ticks = None
            self._registry.save()
            return
        live.child = child
        live.started_at = time.monotonic()
        live.healthy = False
        record.pid, record.start_ticks = identity.pid, identity.start_ticks
        self._registry.save()
        self._watch_exit(record.name, live, identity.pid)
        _log.info("endpoint %s: started pid %d on port %d", record.name, identity.pid, record.port)

    def _resolved(self, names: Mapping[str, str]) -> dict[str, str]:
        """The values of an endpoint's secret variables, from the secret store now."""
        if not names:
            return {}
        if self._secrets is None:
            raise ClusterError("this local driver was given no secret store")
        found: dict[str, str] = {}
        for variable, secret in names.items():
            try:
                found[variable] = self._secrets(secret).strip()
            except Exception as exc:  # the store's own error names the secret
                raise ClusterError(f"SecretNotFound: {exc}") from None
        return found

    def _secret_digest(self, names: Mapping[str, str]) -> str:
        """A digest of the secrets' current values, so a changed secret restarts its
        server at the next apply (the values themselves are never stored)."""
        if not names:
            return ""
        values = self._resolved(names)
        return hashlib.sha256(json.dumps(sorted(values.items())).encode()).hexdigest()

    def _watch_exit(self, name: str, live: _Live, pid: int) -> None:
        """Be told at once when ``pid`` exits (Linux pidfd; elsewhere the probe sees it)."""
        self._unwatch_exit(live)
        try:
            fd = os.pidfd_open(pid)
        except (OSError, AttributeError):
            return
        live.exit_fd = fd
        asyncio.get_running_loop().add_reader(fd, self._exited, name, live)

    def _unwatch_exit(self, live: _Live) -> None:
        fd, live.exit_fd = live.exit_fd, None
        if fd is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)

    def _exited(self, name: str, live: _Live) -> None:
        """A watched server exited: wake its supervisor and tell the listeners, unless it
        was stopped on purpose (then it is no longer the live one)."""
        self._unwatch_exit(live)
        if self._live.get(name) is not live:
            return
        code = live.child.poll() if live.child is not None else None
        why = f"its server exited with {code}" if code is not None else "its server exited"
        live.wake.set()
        for listener in self._exit_listeners:
            try:
                listener(name, why)
            except Exception:
                _log.exception("endpoint %s: an exit listener failed", name)

    async def _stop(self, record: local_registry.EndpointRecord) -> None:
        live = self._live.pop(record.name, None)
        if live is not None:
            self._unwatch_exit(live)
        if live is not None and live.task is not None:
            live.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await live.task
        identity = self._identity(record)
        if identity is not None:
            await procs.stop_group(
                identity,
                grace_s=self._settings.stop_grace_s,
                child=live.child if live is not None else None,
            )
        record.pid = record.start_ticks = None

    async def _probe(self, record: local_registry.EndpointRecord) -> bool:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        url = f"http://{procs.LOOPBACK}:{record.port}{record.health_path}"
        timeout = aiohttp.ClientTimeout(total=self._settings.health_timeout_s)
        try:
            async with self._session.get(url, timeout=timeout, allow_redirects=False) as response:
                return 200 <= response.status < 400
        except (TimeoutError, aiohttp.ClientError, OSError):
            return False

    async def _observe(self, name: str) -> EndpointObservation:
        record = self._registry.endpoints.get(name)
        if record is None:
            return EndpointObservation(
                name=name,
                exists=False,
                workers_desired=0,
                workers_ready=0,
                ready=False,
                endpoint_url=None,
            )
        live = self._live.get(name) or _Live()
        running = self._running(record)
        healthy = running and await self._probe(record)
        if healthy:
            message = f"serving (pid {record.pid})"
        elif running:
            message = f"starting (pid {record.pid}): {record.health_path} does not answer yet"
        else:
            message = "not running"
            if live.last_exit:
                message += f" ({live.last_exit})"
            if live.next_restart_at is not None:
                wait = max(live.next_restart_at - time.monotonic(), 0.0)
                message += f"; restart {live.failures} in {wait:.0f}s"
        if record.restarts:
            message += f"; restarted {record.restarts} time(s)"
            if running and live.last_exit:
                message += f", last: {live.last_exit}"
        message += f"; log {self._log_path(name)}"
        return EndpointObservation(
            name=name,
            exists=True,
            workers_desired=1,
            workers_ready=1 if healthy else 0,
            ready=healthy,
            endpoint_url=f"http://{procs.LOOPBACK}:{record.port}/v1",
            resources=WorkerResources(gpus=0),
            message=message,
        )

    async def _supervise(self, name: str) -> None:
        settings = self._settings
        while True:
            live = self._live.get(name)
            if live is None:
                return
            delay = settings.probe_interval_s
            if live.next_restart_at is not None:
                delay = min(delay, max(live.next_restart_at - time.monotonic(), 0.0))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(live.wake.wait(), delay)  # an exit wakes it at once
            live.wake.clear()
            async with self._lock:
                record = self._registry.endpoints.get(name)
                live = self._live.get(name)
                if record is None or live is None:
                    return
                await self._tend(record, live)

    async def _tend(self, record: local_registry.EndpointRecord, live: _Live) -> None:
        """One supervision round: probe, or restart after backoff, or kill a hung server."""
        settings = self._settings
        now = time.monotonic()
        if self._running(record):
            if await self._probe(record):
                live.healthy, live.last_healthy_at = True, now
                if now - live.started_at >= settings.healthy_resets_backoff_s:
                    live.failures = 0
                return
            since = live.started_at
            if live.healthy and live.last_healthy_at is not None:
                since = live.last_healthy_at
            limit = settings.unhealthy_restart_s if live.healthy else settings.startup_timeout_s
            if now - since < limit:
                return
            reason = "stopped answering" if live.healthy else "never answered"
            _log.warning(
                "endpoint %s: %s on %s, restarting", record.name, reason, record.health_path
            )
            live.last_exit = f"{reason} on {record.health_path}"
            identity = self._identity(record)
            if identity is not None:
                await procs.stop_group(identity, grace_s=settings.stop_grace_s, child=live.child)
        if live.next_restart_at is None:
            if live.child is not None and live.child.returncode is not None:
                live.last_exit = f"exited with {live.child.returncode}"
            elif live.last_exit is None:
                live.last_exit = "the server is gone"
            delay = min(settings.backoff_initial_s * 2**live.failures, settings.backoff_max_s)
            live.failures += 1
            live.next_restart_at = now + delay
            live.healthy = False
            _log.warning(
                "endpoint %s: %s; restart %d in %.1fs",
                record.name,
                live.last_exit,
                live.failures,
                delay,
            )
            return
        if now < live.next_restart_at:
            return
        live.next_restart_at = None
        record.restarts += 1
        self._launch(record, live)


def _digest(argv: list[str], env: Mapping[str, str], health_path: str, secrets: str = "") -> str:
    payload = json.dumps([argv, sorted(env.items()), health_path, secrets]).encode()
    return hashlib.sha256(payload).hexdigest()


def _one_worker(name: str, workers: int) -> str:
    return (
        f"endpoint {name}: asks for {workers} workers; the local driver runs exactly one per "
        "endpoint (no load balancer in front of local servers)"
    )


async def _run_text(argv: list[str]) -> str:
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await asyncio.wait_for(process.communicate(), timeout=10.0)
    except (TimeoutError, OSError) as exc:
        raise ClusterError(f"{argv[0]} failed: {exc}") from exc
    return out.decode(errors="replace")
