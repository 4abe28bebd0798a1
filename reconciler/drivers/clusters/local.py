"""The local cluster driver: each endpoint a proxy and supervised model servers on this host.

The embedded default. An endpoint is served on a port allocated once and kept in the
registry, so ``http://127.0.0.1:PORT/v1`` stays the same across crashes, scaling,
rollouts and daemon restarts; the registry also remembers each name's port after the
endpoint is removed, and a new endpoint of that name gets it back while it is free. On
that port runs the endpoint's proxy (reconciler.drivers.clusters.local_proxy), which
spreads requests over its workers, each a detached model server on a port of its own
(own session, output in ``<state>/logs/<name>.log``). Both are supervised (restarted with
backoff, their exit seen at once through a pidfd and told to the exit listeners: the
daemon marks the Deployment Drifted); a restarted daemon adopts the processes it left
running, never starting a second one (local_endpoint).

``workers`` servers run at once, or as many as the autoscaler (local_autoscaler) says
between the policy's bounds, from the proxy's queue and time to first token; each scale
event is kept and told to the scale listeners. A new revision is rolled out beside the
serving one (``green``), measured on a share of the traffic first when the spec has a
gate, or replaces it (``recreate``): local_rollout. GPU requests are refused: the local
driver runs CPU servers only.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import platform
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import aiohttp

from reconciler.drivers.clusters import (
    local_admin,
    local_jobs,
    local_pool,
    local_registry,
    local_rollout,
    rollout_gate,
)
from reconciler.drivers.clusters import local_processes as procs
from reconciler.drivers.clusters.local_endpoint import EndpointRunner, Host, log_path
from reconciler.drivers.clusters.local_units import LocalSettings
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
    RolloutFailedError,
    ScaleListener,
)

__all__ = ["PORT_PLACEHOLDER", "LocalClusterDriver", "LocalSettings"]

_log = logging.getLogger("reconciler.drivers.local")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
PORT_PLACEHOLDER = "{port}"


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
        self._runners: dict[str, EndpointRunner] = {}
        self._jobs: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = asyncio.Lock()
        self._started = False
        self._session: aiohttp.ClientSession | None = None
        self._exit_listeners: list[Callable[[str, str], None]] = []
        self._scale_listeners: list[ScaleListener] = []
        self._host = Host(
            state_dir=self._state_dir,
            settings=self._settings,
            save=self._registry.save,
            session=self._client,
            allocate_port=self._worker_port,
            on_exit=self._tell_exit,
            on_scale=self._tell_scale,
            secrets=self._resolved,
        )

    def add_exit_listener(self, listener: Callable[[str, str], None]) -> None:
        """Tell ``listener(endpoint, why)`` when an endpoint's proxy or worker exits by itself."""
        self._exit_listeners.append(listener)

    def add_scale_listener(self, listener: ScaleListener) -> None:
        """Tell ``listener(endpoint, observation)`` when the autoscaler changes an
        endpoint's worker count (the observation's last scale event says how and why)."""
        self._scale_listeners.append(listener)

    def _tell_exit(self, name: str, why: str) -> None:
        for listener in self._exit_listeners:
            try:
                listener(name, why)
            except Exception:
                _log.exception("endpoint %s: an exit listener failed", name)

    def _tell_scale(self, name: str, seen: EndpointObservation) -> None:
        for listener in self._scale_listeners:
            try:
                listener(name, seen)
            except Exception:
                _log.exception("endpoint %s: a scale listener failed", name)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

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
            runner = EndpointRunner(record, self._host)
            self._runners[record.name] = runner
            await runner.start()

    async def close(self) -> None:
        """Stop supervising; the processes keep running for the next daemon to adopt."""
        for runner in self._runners.values():
            await runner.detach()
        self._runners.clear()
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
        """Take ``spec``: a new endpoint starts; a new revision starts rolling out (or
        replaces the serving one, ``recreate``); the worker count and policy are updated.
        Returns at once; ``rollout`` waits."""
        revision = self._check_spec(spec)
        async with self._lock:
            await self._start_locked()
            runner = self._runners.get(spec.name)
            if runner is None:
                record = local_registry.EndpointRecord(
                    name=spec.name,
                    port=self._port_for(spec.name),
                    revision=revision,
                    labels=dict(spec.owner_labels),
                    worker_concurrency=spec.worker_concurrency,
                )
                self._registry.endpoints[spec.name] = record
                runner = EndpointRunner(record, self._host)
                runner.set_policy(spec.autoscaling, workers=spec.workers)
                self._registry.save()
                self._runners[spec.name] = runner
                await runner.start()
                return runner.observation()
        async with runner.lock:
            await self._update(runner, spec, revision)
        runner.wake.set()
        if not runner.running():
            await runner.start()
        return runner.observation()

    async def _update(
        self, runner: EndpointRunner, spec: EndpointSpec, revision: local_registry.Revision
    ) -> None:
        record = runner.record
        record.labels = dict(spec.owner_labels)
        record.worker_concurrency = spec.worker_concurrency
        runner.set_policy(spec.autoscaling, workers=spec.workers)
        if revision.digest == record.revision.digest:
            local_rollout.cancel(runner)
        elif record.candidate is not None and record.candidate.revision.digest == revision.digest:
            pass  # already rolling out
        elif spec.strategy == "recreate":
            local_rollout.cancel(runner)
            for worker in list(record.workers):
                await runner.stop_worker(worker)
            record.revision = revision
        elif record.rejected != rollout_gate.rollout_key(revision.digest, spec.gate):
            local_rollout.begin(runner, revision, gate=spec.gate)
        self._registry.save()

    async def rollout(self, spec: EndpointSpec, *, timeout_s: float) -> EndpointObservation:
        """Apply ``spec`` and wait until its revision serves at the desired worker count;
        RolloutFailedError (with the gate's report) when it was rolled back. At the
        deadline, the observation as it is (not ready)."""
        digest = self._check_spec(spec).digest
        key = rollout_gate.rollout_key(digest, spec.gate)
        await self.apply_endpoint(spec)
        runner = self._runners[spec.name]
        deadline = time.monotonic() + timeout_s
        while True:
            record = runner.record
            settled = runner.confirmed >= runner.generation  # the proxy took the rollback
            late = time.monotonic() >= deadline
            if record.rejected == key and record.revision.digest != digest and (settled or late):
                report = rollout_gate.report_from(record.last_rollout or {})
                raise RolloutFailedError(
                    f"endpoint {spec.name}: revision {digest[:12]} was rolled back: "
                    f"{'; '.join(report.reasons)}; revision {record.revision.digest[:12]} "
                    "keeps serving",
                    report=report,
                )
            seen = runner.observation()
            candidate = record.candidate
            rolling = candidate is not None and candidate.revision.digest == digest
            if not rolling and record.revision.digest != digest:
                if record.last_rollout and record.last_rollout.get("revision") == digest:
                    report = rollout_gate.report_from(record.last_rollout)
                    raise RolloutFailedError(
                        f"endpoint {spec.name}: revision {digest[:12]} was rolled back: "
                        f"{'; '.join(report.reasons)}",
                        report=report,
                    )
                return seen  # superseded by another apply
            if seen.ready and record.revision.digest == digest:
                return seen
            if time.monotonic() >= deadline:
                return seen
            await asyncio.sleep(min(self._settings.probe_interval_s, 0.5))

    async def observe_endpoint(self, name: str) -> EndpointObservation:
        async with self._lock:
            await self._start_locked()
            runner = self._runners.get(name)
        if runner is None:
            return EndpointObservation(
                name=name,
                exists=False,
                workers_desired=0,
                workers_ready=0,
                ready=False,
                endpoint_url=None,
            )
        return runner.observation()

    async def delete_endpoint(self, name: str) -> bool:
        async with self._lock:
            await self._start_locked()
            runner = self._runners.pop(name, None)
            marker = self._marker(name)
            strays = procs.marked_with_prefix(marker)
            if runner is None and not strays:
                return False
            if runner is not None:
                async with runner.lock:
                    await runner.remove()
            for stray, _ in procs.marked_with_prefix(marker):
                await procs.stop_group(stray, grace_s=self._settings.stop_grace_s)
            record = self._registry.endpoints.get(name)
            if record is not None:
                free = await procs.wait_port_free(
                    record.port, timeout_s=self._settings.port_free_timeout_s
                )
                if not free:
                    raise ClusterError(
                        f"endpoint {name}: its processes are stopped but port {record.port} "
                        "is still taken by another process"
                    )
                del self._registry.endpoints[name]
                self._registry.save()
            local_pool.config_path(self._state_dir, name).unlink(missing_ok=True)
            self._log_path(name).unlink(missing_ok=True)
            return True

    async def scale_endpoint(self, name: str, workers: int) -> EndpointObservation:
        if workers < 1:
            raise InvalidEndpointError(f"endpoint {name}: workers must be 1 or more, not {workers}")
        async with self._lock:
            await self._start_locked()
            runner = self._runners.get(name)
        if runner is None:
            raise EndpointNotFoundError(f"no local endpoint named {name!r}")
        async with runner.lock:
            policy = runner.autoscaler.policy if runner.autoscaler is not None else None
            runner.set_policy(policy, workers=workers)
            self._registry.save()
        runner.wake.set()
        return runner.observation()

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

    def _check_spec(self, spec: EndpointSpec) -> local_registry.Revision:
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
        if spec.workers < 1:
            raise InvalidEndpointError(
                f"endpoint {spec.name}: workers must be 1 or more, not {spec.workers}"
            )
        if spec.resources.gpus:
            raise InvalidEndpointError(
                f"endpoint {spec.name}: asks for {spec.resources.gpus} GPU(s) per worker; the "
                "local driver runs CPU servers only (use a kubernetes cluster for GPUs)"
            )
        if spec.autoscaling is not None and spec.autoscaling.kv_cache_usage is not None:
            raise InvalidEndpointError(
                f"endpoint {spec.name}: the local driver's proxy does not see KV cache use; "
                "autoscale on queue_depth or ttft_ms"
            )
        env = dict(spec.env)
        secrets = self._secret_digest(spec.secret_env)
        return local_registry.Revision(
            digest=_digest(argv, env, spec.health_path, secrets),
            argv=argv,
            env=env,
            health_path=spec.health_path,
            secret_env=dict(spec.secret_env),
        )

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
        """A digest of the secrets' current values, so a changed secret rolls out a new
        revision at the next apply (the values themselves are never stored)."""
        if not names:
            return ""
        values = self._resolved(names)
        return hashlib.sha256(json.dumps(sorted(values.items())).encode()).hexdigest()

    def _port_for(self, name: str) -> int:
        """The port endpoint ``name`` had before, when no other endpoint holds it and it
        is free (a Deployment removed and created again keeps its URL); else a new one,
        avoiding the ports other names remember. Remembered in the registry either way."""
        taken = self._registry.ports_in_use()
        remembered = self._registry.ports.get(name)
        if remembered is not None and remembered not in taken and procs.port_is_free(remembered):
            port = remembered
        else:
            others = {p for other, p in self._registry.ports.items() if other != name}
            port = procs.allocate_port(avoid=taken | others)
        self._registry.remember_port(name, port)
        return port

    def _worker_port(self) -> int:
        """A free port for a worker, held by no endpoint and remembered by no name."""
        avoid = self._registry.ports_in_use() | set(self._registry.ports.values())
        return procs.allocate_port(avoid=avoid)

    def _marker(self, name: str) -> str:
        return local_admin.endpoint_marker(self._state_dir, name)

    def _log_path(self, name: str) -> Path:
        return log_path(self._state_dir, name)


def _digest(argv: list[str], env: Mapping[str, str], health_path: str, secrets: str = "") -> str:
    payload = json.dumps([argv, sorted(env.items()), health_path, secrets]).encode()
    return hashlib.sha256(payload).hexdigest()


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
