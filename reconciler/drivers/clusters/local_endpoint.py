"""One local endpoint: its proxy, its workers, and the loop that keeps them as asked.

An endpoint is a proxy process on the endpoint's stable port (reconciler.drivers.
clusters.local_proxy) and N workers, each a model server on a port of its own; all are
supervised units (local_units). One task per endpoint runs a round every probe interval,
or at once when a unit exits:

1. tend every unit (probe; restart with backoff);
2. read the proxy's stats when something needs them (the autoscaler, a draining worker);
3. the autoscaler (when the endpoint has a policy) moves the desired worker count;
4. a rollout in progress moves on (local_rollout);
5. workers are started or retired to match the desired counts of each revision;
6. the proxy's configuration is rewritten when the set of workers taking requests
   changed (only workers that answer their health path take requests);
7. retired workers whose last request was answered are stopped.

Scale-downs and rollouts retire workers rather than kill them: a retired worker gets no
new request and is stopped once the proxy has no request of it left, so neither cuts a
request short. Everything that must survive a daemon restart is in the registry record.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from reconciler.drivers.clusters import local_admin, local_pool, local_registry, local_rollout
from reconciler.drivers.clusters import local_processes as procs
from reconciler.drivers.clusters.local_autoscaler import Autoscaler, Signals
from reconciler.drivers.clusters.local_units import LocalSettings, SecretResolver, Unit, UnitSpec
from reconciler.drivers.clusters.protocol import (
    EndpointObservation,
    GateReport,
    ScaleEvent,
    ScalingPolicy,
    WorkerResources,
)
from reconciler.drivers.clusters.rollout_gate import now_iso

_log = logging.getLogger("reconciler.drivers.local")
PORT_PLACEHOLDER = "{port}"
PROXY_MODULE = "reconciler.drivers.clusters.local_proxy"
_SOURCE_ROOT = Path(__file__).resolve().parents[3]
SETTLING_ROUND_S = 0.2
"""How often a round runs while a process starts or a change settles (else the probe
interval): an endpoint is ready a fifth of a second after its server answers."""


@dataclasses.dataclass(frozen=True)
class Host:
    """What an endpoint needs of its driver."""

    state_dir: Path
    settings: LocalSettings
    save: Callable[[], None]
    session: Callable[[], aiohttp.ClientSession]
    allocate_port: Callable[[], int]
    on_exit: Callable[[str, str], None]
    on_scale: Callable[[str, EndpointObservation], None]
    secrets: SecretResolver


def worker_marker(state_dir: Path, name: str, worker_id: str) -> str:
    return f"{local_admin.endpoint_marker(state_dir, name)}::worker::{worker_id}"


def log_path(state_dir: Path, name: str) -> Path:
    return state_dir / "logs" / f"{name}.log"


class EndpointRunner:
    """The proxy and workers of one endpoint (its registry ``record``)."""

    def __init__(self, record: local_registry.EndpointRecord, host: Host) -> None:
        self.record = record
        self.host = host
        self.name = record.name
        self.settings = host.settings
        self.lock = asyncio.Lock()
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.config_path = local_pool.config_path(host.state_dir, record.name)
        self.marker = local_admin.endpoint_marker(host.state_dir, record.name)
        self.proxy = Unit(
            UnitSpec(
                key=record.name,
                argv=(sys.executable, "-m", PROXY_MODULE, str(self.config_path)),
                env={"PYTHONPATH": str(_SOURCE_ROOT), "PYTHONUNBUFFERED": "1"},
                health_url=f"http://{procs.LOOPBACK}:{record.port}/_reconciler/health",
                log_path=log_path(host.state_dir, record.name),
                marker=self.marker,
                cwd=host.state_dir,
            ),
            record.proxy,
            settings=host.settings,
            on_exit=self._unit_exited,
            save=host.save,
        )
        self.units: dict[str, Unit] = {}
        self.generation = local_pool.written_generation(self.config_path)
        self.written: local_pool.PoolConfig | None = None
        self.retired_at: dict[str, tuple[int, float]] = {}
        """Retiring worker id -> (first generation without it, when it was retired)."""
        self.stats: local_pool.ProxyStats | None = None
        self.confirmed = 0
        """The newest generation the proxy said it serves."""
        self.autoscaler: Autoscaler | None = None
        self.next_autoscale_at = 0.0
        self.last_signals: Signals | None = None
        self._policy_from_record()

    # --- policy ----------------------------------------------------------------------

    def _policy_from_record(self) -> None:
        raw = self.record.autoscaling
        policy = ScalingPolicy(**raw) if raw else None
        if policy is None:
            self.autoscaler = None
        elif (
            self.autoscaler is None
            or self.autoscaler.policy != policy
            or (self.autoscaler.slots != self.record.worker_concurrency)
        ):
            self.autoscaler = Autoscaler(policy, slots=self.record.worker_concurrency)

    def set_policy(self, policy: ScalingPolicy | None, *, workers: int) -> None:
        """The worker count the spec asks: ``workers``, or the autoscaler's within bounds."""
        record = self.record
        if policy is None:
            record.autoscaling = None
            record.workers_desired = workers
        else:
            had = record.autoscaling is not None
            record.autoscaling = dataclasses.asdict(policy)
            start = record.workers_desired if had else workers
            record.workers_desired = min(max(start, policy.min_workers), policy.max_workers)
        self._policy_from_record()

    # --- units -----------------------------------------------------------------------

    def revision(self, digest: str) -> local_registry.Revision | None:
        if self.record.revision.digest == digest:
            return self.record.revision
        candidate = self.record.candidate
        if candidate is not None and candidate.revision.digest == digest:
            return candidate.revision
        return None

    def _unit_for(self, worker: local_registry.WorkerRecord) -> Unit:
        revision = self.revision(worker.revision) or self.record.revision
        port = str(worker.port)
        return Unit(
            UnitSpec(
                key=f"{self.name}/{worker.id}",
                argv=tuple(part.replace(PORT_PLACEHOLDER, port) for part in revision.argv),
                env={k: v.replace(PORT_PLACEHOLDER, port) for k, v in revision.env.items()},
                health_url=f"http://{procs.LOOPBACK}:{worker.port}{revision.health_path}",
                log_path=log_path(self.host.state_dir, self.name),
                marker=worker_marker(self.host.state_dir, self.name, worker.id),
                cwd=self.host.state_dir,
                secret_env=dict(revision.secret_env),
            ),
            worker.process,
            settings=self.settings,
            on_exit=self._unit_exited,
            save=self.host.save,
            secrets=self.host.secrets,
        )

    def _unit_exited(self, unit: Unit, why: str) -> None:
        self.wake.set()
        what = "its proxy" if unit is self.proxy else f"its worker {unit.spec.key}"
        self.host.on_exit(self.name, f"{what} {why}")

    def workers_of(self, digest: str) -> list[local_registry.WorkerRecord]:
        """The workers of a revision that are not retiring, by id."""
        return [w for w in self.record.workers if w.revision == digest and not w.retiring]

    def healthy(
        self, workers: list[local_registry.WorkerRecord]
    ) -> list[local_registry.WorkerRecord]:
        return [w for w in workers if (unit := self.units.get(w.id)) is not None and unit.healthy]

    def add_worker(self, digest: str) -> None:
        worker = local_registry.WorkerRecord(
            id=self.record.worker_id(), revision=digest, port=self.host.allocate_port()
        )
        self.record.workers.append(worker)
        unit = self._unit_for(worker)
        self.units[worker.id] = unit
        self.host.save()
        unit.launch()

    def retire(self, worker: local_registry.WorkerRecord) -> None:
        """No new request to ``worker``; it is stopped once its last one is answered."""
        if not worker.retiring:
            worker.retiring = True
            self.host.save()
            _log.info("endpoint %s: retiring worker %s", self.name, worker.id)

    async def stop_worker(self, worker: local_registry.WorkerRecord) -> None:
        unit = self.units.pop(worker.id, None)
        if unit is not None:
            await unit.stop(grace_s=self.settings.stop_grace_s)
        self.retired_at.pop(worker.id, None)
        if worker in self.record.workers:
            self.record.workers.remove(worker)
        self.host.save()

    # --- life cycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Adopt what runs of this endpoint (stopping strays), start the rest, supervise."""
        record = self.record
        if record.legacy is not None:
            legacy = procs.ProcessIdentity(record.legacy.pid or 0, record.legacy.start_ticks or 0)
            _log.info(
                "endpoint %s: stopping its one-process server (pid %d)", self.name, legacy.pid
            )
            await procs.stop_group(legacy, grace_s=self.settings.stop_grace_s)
            record.legacy = None
            self.host.save()
        marked = procs.marked_leaders(self.marker)
        recorded = self.proxy.identity()
        running = recorded is not None and procs.is_running(recorded)
        adopted = None if running or not marked else marked[0]
        for stray in marked:
            if stray not in (recorded, adopted):
                _log.warning("endpoint %s: stopping a second proxy (pid %d)", self.name, stray.pid)
                await procs.stop_group(stray, grace_s=self.settings.stop_grace_s)
        if not running and adopted is None:
            self._sync_pool(force=True)
        self.proxy.adopt_or_launch(adopted=adopted)
        found = dict(
            (value.rsplit("::", 1)[1], identity)
            for identity, value in procs.marked_with_prefix(f"{self.marker}::worker::")
        )
        for worker in list(record.workers):
            unit = self._unit_for(worker)
            self.units[worker.id] = unit
            if worker.retiring and not unit.running() and worker.id not in found:
                await self.stop_worker(worker)
                continue
            unit.adopt_or_launch(adopted=found.get(worker.id))
        for worker_id, identity in found.items():
            known = self.units.get(worker_id)
            if known is None or known.identity() != identity:
                _log.warning(
                    "endpoint %s: stopping a stray worker (pid %d)", self.name, identity.pid
                )
                await procs.stop_group(identity, grace_s=self.settings.stop_grace_s)
        async with self.lock:
            await self.round()  # the missing workers start now, not a probe interval later
        self.task = asyncio.create_task(self._supervise(), name=f"local:{self.name}")

    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    async def detach(self) -> None:
        """Stop supervising; the processes keep running for the next daemon to adopt."""
        await self._cancel()
        self.proxy.detach()
        for unit in self.units.values():
            unit.detach()

    async def remove(self) -> None:
        """Stop the proxy, then every worker, for good."""
        await self._cancel()
        await self.proxy.stop(grace_s=self.settings.stop_grace_s)
        for worker in list(self.record.workers):
            await self.stop_worker(worker)
        for stray, _ in procs.marked_with_prefix(self.marker):
            await procs.stop_group(stray, grace_s=self.settings.stop_grace_s)
        self.config_path.unlink(missing_ok=True)

    async def _cancel(self) -> None:
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- the loop --------------------------------------------------------------------

    def _settling(self) -> bool:
        """Whether something is on its way (a process starting, a configuration the proxy
        has not confirmed, a worker draining): then the rounds come faster."""
        units = [self.proxy, *self.units.values()]
        starting = any(unit.running() and not unit.answered_since_start() for unit in units)
        draining = any(worker.retiring for worker in self.record.workers)
        return starting or draining or self.confirmed < self.generation

    async def _supervise(self) -> None:
        while True:
            delay = self.settings.probe_interval_s
            if self._settling():
                delay = min(delay, SETTLING_ROUND_S)
            for unit in [self.proxy, *self.units.values()]:
                due = unit.restart_due_in()
                if due is not None:
                    delay = min(delay, due)
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancel that
            # comes as the event is set, and the task would never end
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self.wake.wait()
            self.wake.clear()
            try:
                async with self.lock:
                    await self.round()
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.exception("endpoint %s: a supervision round failed", self.name)

    async def round(self) -> None:
        session = self.host.session()
        await self.proxy.tend(session)
        await asyncio.gather(*(unit.tend(session) for unit in self.units.values()))
        self.stats = None
        if self._wants_stats():
            self.stats = await local_pool.fetch_stats(
                session,
                self.record.port,
                window_s=self.settings.signal_window_s,
                timeout_s=self.settings.health_timeout_s,
            )
        self._autoscale()
        await local_rollout.advance(self, session)
        await self._match_counts()
        self._sync_pool()
        await self._confirm(session)
        await self._stop_drained()

    async def _confirm(self, session: aiohttp.ClientSession) -> None:
        """Make sure the proxy serves the newest configuration (a SIGHUP sent while it was
        starting, or lost, is sent again)."""
        if self.stats is not None:
            self.confirmed = max(self.confirmed, self.stats.generation)
        if not self.proxy.healthy or self.confirmed >= self.generation:
            return
        served = await local_pool.served_generation(
            session, self.record.port, timeout_s=self.settings.health_timeout_s
        )
        if served is None:
            return
        self.confirmed = served
        if served < self.generation:
            local_pool.tell_reload(self.proxy.identity())

    def _wants_stats(self) -> bool:
        if any(w.retiring for w in self.record.workers):
            return True
        return self.autoscaler is not None and time.monotonic() >= self.next_autoscale_at

    # --- counts ----------------------------------------------------------------------

    async def _match_counts(self) -> None:
        record = self.record
        wanted = {record.revision.digest: record.workers_desired}
        if record.candidate is not None:
            wanted[record.candidate.revision.digest] = local_rollout.candidate_workers(self)
        for worker in list(record.workers):
            if not worker.retiring and worker.revision not in wanted:
                self.retire(worker)
        for digest, count in wanted.items():
            mine = self.workers_of(digest)
            for _ in range(count - len(mine)):
                self.add_worker(digest)
            if len(mine) > count:
                # the unhealthy first, then the newest
                order = sorted(mine, key=lambda w: (w in self.healthy([w]), int(w.id[1:])))
                for worker in order[: len(mine) - count]:
                    self.retire(worker)
        if not self.proxy.running():
            for worker in [w for w in record.workers if w.retiring]:
                await self.stop_worker(worker)  # no proxy: no request can be on it

    # --- the proxy's configuration ---------------------------------------------------

    def desired_pool(self) -> local_pool.PoolConfig:
        record = self.record
        share = local_rollout.candidate_share(self)
        entries = [
            local_pool.PoolEntry(
                revision=record.revision.digest,
                weight=100 - share,
                backends=tuple(
                    (w.id, w.port) for w in self.healthy(self.workers_of(record.revision.digest))
                ),
            )
        ]
        if record.candidate is not None and share:
            digest = record.candidate.revision.digest
            entries.append(
                local_pool.PoolEntry(
                    revision=digest,
                    weight=share,
                    backends=tuple((w.id, w.port) for w in self.healthy(self.workers_of(digest))),
                )
            )
        return local_pool.PoolConfig(
            port=record.port,
            slots_per_worker=record.worker_concurrency,
            queue_timeout_s=self.settings.queue_timeout_s,
            pools=tuple(entries),
        )

    def _sync_pool(self, *, force: bool = False) -> None:
        wanted = self.desired_pool()
        if force or wanted != self.written or not self.config_path.exists():
            self.generation += 1
            local_pool.write_config(self.config_path, wanted, generation=self.generation)
            self.written = wanted
            if self.proxy.healthy:
                local_pool.tell_reload(self.proxy.identity())
        now = time.monotonic()
        for worker in self.record.workers:
            if worker.retiring and worker.id not in self.retired_at:
                self.retired_at[worker.id] = (self.generation, now)

    async def _stop_drained(self) -> None:
        stats = self.stats
        for worker in [w for w in self.record.workers if w.retiring]:
            generation, since = self.retired_at.get(worker.id, (self.generation, time.monotonic()))
            unit = self.units.get(worker.id)
            drained = stats is not None and stats.generation >= generation
            drained = drained and stats is not None and not stats.holds(worker.id)
            late = time.monotonic() - since > self.settings.drain_timeout_s
            if drained or late or unit is None or not unit.running():
                if late and not drained:
                    _log.warning(
                        "endpoint %s: worker %s did not drain in time", self.name, worker.id
                    )
                await self.stop_worker(worker)

    # --- autoscaling -----------------------------------------------------------------

    def _autoscale(self) -> None:
        if self.autoscaler is None or time.monotonic() < self.next_autoscale_at:
            return
        self.next_autoscale_at = time.monotonic() + self.settings.autoscale_interval_s
        stats = self.stats
        if stats is None:
            return
        record = self.record
        signals = Signals(
            in_flight=stats.in_flight,
            waiting=stats.waiting,
            ttft_p90_ms=stats.ttft_p90_ms([record.revision.digest]),
        )
        self.last_signals = signals
        current = record.workers_desired
        decision = self.autoscaler.decide(now=time.monotonic(), current=current, signals=signals)
        if decision is None:
            return
        event = ScaleEvent(
            at=now_iso(), from_workers=current, to_workers=decision.to_workers, why=decision.why
        )
        record.workers_desired = decision.to_workers
        record.scale_events = [*record.scale_events, dataclasses.asdict(event)][
            -self.settings.max_scale_events :
        ]
        self.host.save()
        _log.info(
            "endpoint %s: scaled %d -> %d: %s", self.name, current, decision.to_workers, event.why
        )
        self.host.on_scale(self.name, self.observation())

    # --- what it looks like ----------------------------------------------------------

    def observation(self) -> EndpointObservation:
        record = self.record
        serving = self.workers_of(record.revision.digest)
        ready = self.healthy(serving)
        proxy_ok = self.proxy.running() and self.proxy.healthy
        is_ready = (
            proxy_ok
            and self.confirmed >= self.generation  # the proxy sends requests to them
            and record.candidate is None
            and len(ready) >= record.workers_desired > 0
        )
        parts = [f"proxy {self.proxy.describe()}"]
        parts.append(f"{len(ready)} of {record.workers_desired} worker(s) ready")
        for worker in serving:
            unit = self.units.get(worker.id)
            if unit is not None and (not unit.healthy or unit.process.restarts):
                parts.append(f"worker {worker.id} {unit.describe()}")
        rollout = local_rollout.describe(self)
        if rollout:
            parts.append(rollout)
        retiring = [w.id for w in record.workers if w.retiring]
        if retiring:
            parts.append(f"draining {', '.join(retiring)}")
        parts.append(f"log {log_path(self.host.state_dir, self.name)}")
        autoscaler: dict[str, Any] | None = None
        if self.autoscaler is not None:
            policy = self.autoscaler.policy
            autoscaler = {
                "min_workers": policy.min_workers,
                "max_workers": policy.max_workers,
                "desired_workers": record.workers_desired,
            }
            if self.last_signals is not None:
                autoscaler["signals"] = dataclasses.asdict(self.last_signals)
        return EndpointObservation(
            name=self.name,
            exists=True,
            workers_desired=record.workers_desired,
            workers_ready=len(ready),
            ready=is_ready,
            endpoint_url=f"http://{procs.LOOPBACK}:{record.port}/v1",
            resources=WorkerResources(gpus=0),
            message="; ".join(parts),
            scale_events=tuple(ScaleEvent(**event) for event in record.scale_events),
            autoscaler=autoscaler,
            rollout=GateReport(**record.last_rollout) if record.last_rollout else None,
        )
