"""The daemon process: wires the parts from the config and drives the reconcile loop.

Triggers of the source (poll tick, resync tick, a watch of a local repo's refs,
:meth:`Daemon.trigger` for the API and webhooks) only set an event; the loop syncs the
source once per wake, and the reconciler's worker and status publisher run beside it as
tasks, object by object (reconciler.daemon.reconcile). systemd integration: READY=1
after the first load, WATCHDOG=1 from the loop, STATUS= lines; SIGTERM stops taking
work, checkpoints and exits; SIGHUP reloads the config.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from reconciler.core.diff import ObjectState
from reconciler.core.validation.repo import ValidateOptions
from reconciler.daemon import reload
from reconciler.daemon.cluster_drivers import ClusterDrivers
from reconciler.daemon.config import Config, ConfigError, load_config
from reconciler.daemon.endpoint_facts import DaemonEndpointFacts
from reconciler.daemon.logs import configure_logging
from reconciler.daemon.reconcile import CycleReport, Reconciler
from reconciler.daemon.schedules import Clock, utc_clock
from reconciler.daemon.shard_coordinator import ShardCoordinator, ShardingSetupError
from reconciler.daemon.snapshot import SnapshotLoader
from reconciler.daemon.workflow_lifecycle import WorkflowLifecycle
from reconciler.drivers import runtimes
from reconciler.drivers.clusters import local_admin
from reconciler.drivers.clusters.local import LocalClusterDriver
from reconciler.drivers.clusters.protocol import Drift, EndpointObservation
from reconciler.drivers.dir_watch import watch_dir
from reconciler.drivers.git_source import GitSource, GitSourceError
from reconciler.drivers.git_status import StatusPublisher
from reconciler.drivers.http_client import HttpClient
from reconciler.drivers.ref_watch import watch_refs
from reconciler.drivers.sd_notify import NotifyError, SystemdNotifier
from reconciler.drivers.secrets import SecretResolver
from reconciler.drivers.state_lock import StateDirLock, StateDirLocked
from reconciler.engine.context import StepServices
from reconciler.engine.executor import Executor, Fence
from reconciler.engine.records import ExecutionRecord
from reconciler.engine.store import Store
from reconciler.load.limits import LoadLimits
from reconciler.steps import bookkeeping, endpoints, flow_framework, jobs, models, scaling
from reconciler.steps.registry import StepRegistry, default_registry

log = logging.getLogger("reconciler.daemon")

STATE_DB = "state.db"
ERROR_BACKOFF_S = 5.0
SOURCE_BACKOFF_CAP_S = 300.0
"""The longest wait between polls of a source that keeps failing (see poll_delay)."""


def poll_delay(interval: float, failures: int) -> float:
    """The wait before the next poll: the interval, doubled for each fetch in a row that
    failed (a source that went away), up to 16 intervals and at most 5 minutes, never
    below the interval. A push the ref watch or a webhook notices still fetches at once."""
    if failures <= 0:
        return float(interval)
    backoff = float(interval) * 2.0 ** min(failures, 4)
    return max(float(interval), min(backoff, SOURCE_BACKOFF_CAP_S))


# Running steps get this long to reach their boundary on SIGTERM, then are cancelled (and
# rerun after the restart): well inside the unit's TimeoutStopSec=30s.
SHUTDOWN_GRACE_S = 20.0
# Steps of chains bound to no cluster (bookkeeping, HTTP calls, waits for readiness) share
# one pool of their own: the per-cluster limit protects clusters, and a few long
# wait_ready steps must not hold up every Credential check.
UNBOUND_STEP_LIMIT = 64


def build_registry(
    *,
    drivers: ClusterDrivers | None = None,
    facts: DaemonEndpointFacts | None = None,
    runtime_root: Path | None = None,
    store: Store | None = None,
) -> StepRegistry:
    """Every step type this build implements; chains needing others report NoChainYet.

    Without ``drivers`` and ``facts`` (plan-only uses) the deployment steps are left out.
    """
    registry = default_registry()
    registry.register("record_spec", bookkeeping.record_spec)
    registry.register("check_secret", bookkeeping.check_secret)
    models.register_model_steps(registry)
    if drivers is not None and facts is not None:
        manager = runtimes.RuntimeManager(root=runtime_root) if runtime_root else None
        endpoints.register_endpoint_steps(
            registry, drivers=drivers, facts=facts, runtime_manager=manager
        )
        jobs.register_job_steps(registry, drivers=drivers, facts=facts)
    if store is not None:
        flow_framework.register_flow_framework_steps(
            registry, records=flow_framework.StoreFlowRecords(store), credentials=facts
        )
    return registry


def _settle_memory(*, loaded: bool, full: bool) -> None:
    """Keep the garbage collector off the push path.

    10,000 loaded specs are millions of tracked objects; a full collection walking them
    stalls the loop for most of a second at a moment the collector picks (it was the
    largest part of a push's way to its status). After a cycle that loaded a revision,
    what is alive now is frozen out of collection; on resync (every 5 minutes by
    default, off the push path) everything is unfrozen and collected once, so garbage in
    reference cycles is reclaimed there. The daemon's first cycle, a resync too, only
    freezes: its heap is what the imports and the first load left, and walking all of it
    cost ~0.3 s of CPU at every start (in a process forked from a warm parent, it also
    copied every page the two shared).
    """
    if full:
        gc.unfreeze()
        gc.collect()
        gc.freeze()
    elif loaded:
        gc.freeze()


def is_local_repo(url: str) -> bool:
    return "://" not in url and not url.startswith("git@") and Path(url).exists()


def assemble(
    config: Config,
    store: Store,
    *,
    resolver: SecretResolver,
    http: HttpClient | None = None,
    local: LocalClusterDriver | None = None,
    clock: Clock = utc_clock,
    fence: Fence | None = None,
) -> tuple[Reconciler, Executor, ClusterDrivers]:
    """Every part of the loop, wired from the config around one state store; the cluster
    drivers are the caller's to close once the executor has stopped."""
    state_dir = config.state_dir
    late = _LateReconciler()
    flow_records = flow_framework.StoreFlowRecords(store)
    facts = DaemonEndpointFacts(
        desired=late.desired,
        status_of=late.status_of,
        model_cache=state_dir / "models",
        connectors=lambda name: flow_framework.connector_credential(flow_records, name),
    )
    local = (
        local
        if local is not None
        else LocalClusterDriver(state_dir=state_dir / "local", secrets=resolver.resolve)
    )
    drivers = ClusterDrivers(
        local=local,
        cluster_specs=facts.clusters,
        resolver=resolver,
        on_drift=_on_loop(late.on_drift),
        on_scale=_on_loop(late.on_scale),
    )
    local.add_exit_listener(late.on_exit)
    local.add_scale_listener(late.on_scale)
    registry = build_registry(
        drivers=drivers,
        facts=facts,
        runtime_root=config.runtimes_dir or state_dir / "runtimes",
        store=store,
    )
    credentials = models.SecretStoreCredentials(resolver=resolver, secret_names=facts.secret_name)
    model_services = models.ModelServices(cache_dir=state_dir / "models", credentials=credentials)
    executor = Executor(
        store=store,
        registry=registry,
        readiness=late,
        services=StepServices(
            http=http,
            extra={bookkeeping.SECRETS_SERVICE: resolver, models.MODEL_SERVICE: model_services},
        ),
        max_concurrent_per_cluster=config.clusters.max_concurrent_steps,
        cluster_limits={"": UNBOUND_STEP_LIMIT},
        retry_cap_s=config.executor.step_retry_cap_seconds,
        shutdown_grace_s=SHUTDOWN_GRACE_S,
        on_finished=late.on_execution_finished,
        on_progress=late.on_execution_progress,
        fence=fence,
    )
    source = GitSource(config.repo.url, config.repo.branch, state_dir / "source")
    prefix = (config.status.path or "status/").strip("/") + "/"
    publisher = StatusPublisher(
        config.repo.url,
        workdir=state_dir / "status",
        branch=config.status.branch,
        path_prefix=prefix,
    )
    loader = SnapshotLoader(
        source=source,
        limits=LoadLimits(**config.load.model_dump()),
        roots=config.repo.paths,
        options=ValidateOptions(implicit_projects=config.projects.create_missing),
    )
    reconciler = Reconciler(
        source=source,
        loader=loader,
        store=store,
        executor=executor,
        registry=registry,
        publisher=publisher,
        same_branch_status=config.status.branch == config.repo.branch,
        status_prefix=prefix,
    )
    late.target = reconciler
    reconciler.workflow_hooks = WorkflowLifecycle(
        store=store,
        executor=executor,
        registry=registry,
        desired=reconciler.desired_states,
        revision=lambda: reconciler.last_seen,
        on_change=reconciler.on_status_changed,
        loaded=lambda: (r := reconciler.last_report) is not None and r.loaded and r.valid,
        secrets=resolver,
        http=http,
        clock=clock,
        notifications=config.notifications,
    )
    return reconciler, executor, drivers


_Told = TypeVar("_Told")


def _on_loop(listener: Callable[[str, _Told], None]) -> Callable[[str, _Told], None]:
    """``listener``, called on this event loop from whatever thread reports (a watch's)."""
    loop = asyncio.get_running_loop()

    def report(name: str, found: _Told) -> None:
        loop.call_soon_threadsafe(listener, name, found)

    return report


class _LateReconciler:
    """The executor's view of the reconciler, which is built after the executor."""

    target: Reconciler | None = None

    def endpoint_url(self, deployment: str) -> str | None:
        return self.target.endpoint_url(deployment) if self.target else None

    def on_execution_finished(self, record: ExecutionRecord) -> None:
        if self.target is not None:
            self.target.on_execution_finished(record)

    def on_execution_progress(self, key: str) -> None:
        if self.target is not None:
            self.target.on_execution_progress(key)

    async def changed(self, deployment: str) -> None:
        if self.target is not None:
            await self.target.changed(deployment)

    def on_drift(self, deployment: str, found: Sequence[Drift]) -> None:
        """A cluster's watch saw Deployment ``deployment``'s objects changed out of band."""
        if self.target is not None:
            drift = [dataclasses.asdict(item) for item in found]
            self.target.on_drift(f"Deployment/{deployment}", drift)

    def on_exit(self, deployment: str, why: str) -> None:
        """A local endpoint's server exited by itself (the supervisor restarts it)."""
        if self.target is not None:
            item = {"field": "server process", "message": f"{why}; restarting it"}
            self.target.on_drift(f"Deployment/{deployment}", [item])

    def on_scale(self, deployment: str, seen: EndpointObservation) -> None:
        """An endpoint's autoscaler changed its worker count (the local driver's own, or
        the Kubernetes cluster's, as its Deployment watch saw it)."""
        if self.target is not None:
            fields = {"workers": seen.workers_desired, **scaling.status_fields(seen)}
            self.target.on_live_status(f"Deployment/{deployment}", fields)

    def desired(self) -> Mapping[str, ObjectState]:
        return self.target.desired_states() if self.target else {}

    def status_of(self, key: str) -> Mapping[str, Any] | None:
        return self.target.status_of(key) if self.target else None


class DaemonStartError(Exception):
    """The daemon cannot start (its state directory is held by another daemon, ...)."""


class Daemon:
    """One running daemon. ``await run()`` returns the process exit code."""

    def __init__(
        self,
        config: Config,
        *,
        config_file: Path | None = None,
        notifier: SystemdNotifier | None = None,
        serve: Callable[[Daemon], contextlib.AbstractAsyncContextManager[object]] | None = None,
        clock: Clock = utc_clock,
        owns_process: bool = False,
    ) -> None:
        """``owns_process``: the daemon is all its process runs (``reconciler run``), so
        it may tune the process-wide garbage collector (:func:`_settle_memory`). A daemon
        hosted in another program (a test, an embedding) leaves it alone: freezing the
        host's heap would keep its garbage, and each resync would walk all of it."""
        self._config = config
        self._owns_process = owns_process
        self._clock = clock  # what schedules read the time from (tests pass their own)
        self._serve = serve  # the HTTP API, run while the loop runs (reconciler.api)
        self._config_file = config_file
        self._notifier = notifier or SystemdNotifier()
        self._stop = asyncio.Event()
        self._stop_requests = 0
        self._force_stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._resync_due = True
        self._heap_settled = False  # see _settle_memory: the first cycle does not collect
        self._ready_sent = False
        self._last_beat = time.monotonic()
        self.reconciler: Reconciler | None = None
        self.resolver = SecretResolver(config.secrets_dir)
        self.store: Store | None = None
        self.executor: Executor | None = None
        self.sharding: ShardCoordinator | None = None
        """This replica's shards (``sharding:`` in the config), else None."""
        self.cycle_observers: list[Callable[[bool, float], None]] = []
        """Called after each cycle with (fetch reached the remote, duration in seconds)."""
        self.reload_observers: list[Callable[[Config], None]] = []
        """Called with the new config when a reload is applied (the API's tokens, ...)."""

    @property
    def config(self) -> Config:
        return self._config

    @property
    def ready(self) -> bool:
        """The first load is done (READY=1 was sent)."""
        return self._ready_sent

    # -- external triggers ------------------------------------------------------------------

    def trigger(self, reason: str = "api", *, resync: bool = False) -> None:
        """Ask for a cycle now (the HTTP API's sync, a webhook); ``resync`` reruns failed
        chains too."""
        log.debug("trigger", extra={"reason": reason})
        if resync:
            self._resync_due = True
        self._wake.set()

    def request_stop(self) -> None:
        """First call: stop taking work and let running steps reach a boundary (up to the
        grace period); a second call (Ctrl-C again) stops them at once."""
        self._stop_requests += 1
        if self._stop_requests > 1:
            if not self._force_stop.is_set():
                log.warning("stopping now: running steps are cancelled and resume after restart")
            self._force_stop.set()
        self._stop.set()
        self._wake.set()

    def request_reload(self) -> None:
        """Reload the config now, between two awaits of whatever runs (a revoked token is
        refused from the next request on), then wake the loop for the resync it asks."""
        self._reload()
        self._wake.set()

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> int:
        """Run until stopped. Raises DaemonStartError when it cannot start."""
        config = self._config
        config.state_dir.mkdir(parents=True, exist_ok=True)
        state_lock = StateDirLock(config.state_dir)
        try:
            state_lock.acquire()
        except StateDirLocked as exc:
            raise DaemonStartError(str(exc)) from None
        try:
            return await self._run_locked()
        finally:
            state_lock.release()

    async def _run_locked(self) -> int:
        config = self._config
        loop = asyncio.get_running_loop()
        for signum, handler in (
            (signal.SIGTERM, self.request_stop),
            (signal.SIGINT, self.request_stop),
            (signal.SIGHUP, self.request_reload),
        ):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, handler)
        store = Store(config.state_dir / STATE_DB)
        http = HttpClient(deny_private=config.http.deny_private)
        local = LocalClusterDriver(
            state_dir=config.state_dir / "local", secrets=self.resolver.resolve
        )
        await local.start()  # adopts the servers a previous daemon left serving
        sharding = self._sharding()
        reconciler, executor, drivers = assemble(
            self._config,
            store,
            resolver=self.resolver,
            http=http,
            local=local,
            clock=self._clock,
            fence=sharding,
        )
        if sharding is not None:
            sharding.attach(reconciler=reconciler, executor=executor, store=store)
        hooks = reconciler.workflow_hooks
        assert hooks is not None
        self.reconciler, self.store, self.executor = reconciler, store, executor
        tasks: list[asyncio.Task[None]] = []
        serving = contextlib.AsyncExitStack()
        try:
            await self._check_source(reconciler)
            # The first revision goes in before interrupted chains resume: a resumed step
            # needs the Clusters and templates it names, and what a chain ends with is
            # judged against the desired state, never against an empty one.
            await self._first_load(reconciler)
            resumed = await executor.start()
            if sharding is not None:
                sharding.start()  # its shards' chains resume as it takes them
            if self._serve is not None:
                await serving.enter_async_context(self._serve(self))
            if resumed:
                log.info("resumed interrupted chains", extra={"executions": len(resumed)})
            tasks = [
                asyncio.create_task(self._tick(lambda: self._poll_delay(reconciler))),
                asyncio.create_task(self._resync_tick()),
                asyncio.create_task(self._watchdog()),
                asyncio.create_task(reconciler.work(self._stop), name="reconcile worker"),
                asyncio.create_task(reconciler.publish(self._stop), name="status publisher"),
            ]
            if is_local_repo(config.repo.url):
                tasks.append(asyncio.create_task(self._watch_local_refs(Path(config.repo.url))))
            tasks.append(asyncio.create_task(hooks.run(stop=self._stop)))
            self.cycle_observers.append(lambda _ok, _s: hooks.scheduler.poke())
            if config.secrets_dir is not None:
                tasks.append(asyncio.create_task(self._watch_secrets(config.secrets_dir)))
            self._wake.set()  # the first cycle runs at once
            await self._loop(reconciler)
        finally:
            self._notify("stopping")
            # No new step starts from here on; running ones get the grace period.
            await self._shutdown_executor(executor)
            reconciler.close()
            await serving.aclose()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await hooks.close()  # after the executor: runs ending in the grace period notify
            await local.close()
            await drivers.close()  # their watches end: no thread of this run outlives it
            await http.close()
            await reconciler.settle(timeout_s=5)
            if sharding is not None:
                await sharding.close()  # handovers saved, leases given back
            store.checkpoint()
            store.close()
            log.info("stopped")
            if serving_left := local_admin.running_servers(config.state_dir / "local"):
                log.info(
                    "local endpoints keep serving after the daemon",
                    extra={
                        "endpoints": [server.name for server in serving_left],
                        "hint": f"reconciler endpoints list --state-dir {config.state_dir}; "
                        "stop them with: reconciler endpoints stop NAME (or --all)",
                    },
                )
        return 0

    def _sharding(self) -> ShardCoordinator | None:
        if not self._config.sharded:
            return None
        try:
            self.sharding = ShardCoordinator.from_config(self._config, resolver=self.resolver)
        except ShardingSetupError as exc:
            raise DaemonStartError(str(exc)) from None
        return self.sharding

    async def _loop(self, reconciler: Reconciler) -> None:
        while not self._stop.is_set():
            await self._wake.wait()
            self._wake.clear()
            self._last_beat = time.monotonic()
            if self._stop.is_set():
                break
            resync, self._resync_due = self._resync_due, False
            try:
                started = time.monotonic()
                report = await reconciler.sync_source(resync=resync)
                if resync:
                    await reconciler.flush(verify=True)
                if self._owns_process:
                    _settle_memory(loaded=report.loaded, full=resync and self._heap_settled)
                    self._heap_settled = True
            except Exception:
                log.exception("reconcile cycle failed; retrying")
                await self._sleep(ERROR_BACKOFF_S)
                self._wake.set()
                continue
            self._after_cycle(reconciler, report)
            for observe in self.cycle_observers:
                observe(report.source_error is None, time.monotonic() - started)

    def _after_cycle(self, reconciler: Reconciler, report: CycleReport) -> None:
        revision = (report.revision or "none")[:12]
        counts = ", ".join(f"{n} {phase}" for phase, n in sorted(reconciler.counts().items()))
        state = "stalled: invalid specs" if not report.valid else "ok"
        if report.source_error:
            state = "source unavailable"
        text = f"revision {revision}; {counts or 'no objects'}; {state}"
        if not self._ready_sent and report.revision is not None:
            self._ready_sent = True
            self._notify("ready", text)
            log.info("ready", extra={"revision": report.revision})
        else:
            self._notify("status", text)

    def _notify(self, what: str, text: str | None = None) -> None:
        try:
            if what == "ready":
                self._notifier.ready(status=text)
            elif what == "status" and text is not None:
                self._notifier.status(text)
            elif what == "stopping":
                self._notifier.stopping()
            elif what == "reloading":
                self._notifier.reloading()
            elif what == "watchdog":
                self._notifier.watchdog()
        except NotifyError as exc:
            log.warning("sd_notify failed", extra={"error": str(exc)})

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)

    async def _tick(self, interval: Callable[[], float]) -> None:
        while not self._stop.is_set():
            await self._sleep(float(interval()))
            self._wake.set()

    def _poll_delay(self, reconciler: Reconciler) -> float:
        return poll_delay(self._config.repo.poll_interval_seconds, reconciler.source_failures)

    async def _resync_tick(self) -> None:
        while not self._stop.is_set():
            await self._sleep(self._config.resync_interval_seconds)
            self._resync_due = True
            self._wake.set()

    async def _first_load(self, reconciler: Reconciler) -> None:
        try:
            await reconciler.sync_source()
        except Exception:  # the loop's first cycle tries again and says why
            log.exception("first load of the state repo failed; retrying")

    async def _check_source(self, reconciler: Reconciler) -> None:
        """A state repo that cannot be read at the first start is an error, not a warning
        every poll; once the daemon has a copy, a source that goes away only stalls it."""
        try:
            await asyncio.to_thread(reconciler.source.sync)
        except GitSourceError as exc:
            if await asyncio.to_thread(reconciler.source.local_head) is None:
                raise DaemonStartError(f"cannot read the state repo: {exc}") from None

    async def _shutdown_executor(self, executor: Executor) -> None:
        """Let running steps reach a boundary within the grace period, saying so at once;
        a second stop request cancels them right away (they resume after a restart)."""
        running = executor.running_ids()
        if running and not self._force_stop.is_set():
            log.warning(
                "stopping: waiting for running steps to reach a boundary",
                extra={
                    "executions": len(running),
                    "grace_s": SHUTDOWN_GRACE_S,
                    "deadline": time.strftime(
                        "%H:%M:%S", time.localtime(time.time() + SHUTDOWN_GRACE_S)
                    ),
                    "hint": "press Ctrl-C again (or send SIGTERM again) to stop at once",
                },
            )
        closing = asyncio.ensure_future(executor.shutdown())
        forced = asyncio.ensure_future(self._force_stop.wait())
        try:
            await asyncio.wait({closing, forced}, return_when=asyncio.FIRST_COMPLETED)
            if not closing.done():
                await executor.shutdown(grace_s=0)
                await closing
        finally:
            forced.cancel()

    async def _watch_secrets(self, secrets_dir: Path) -> None:
        """Re-check what depends on secrets as soon as a file in the secrets dir changes."""
        try:
            while not self._stop.is_set():
                async for names in watch_dir(secrets_dir, stop_event=self._stop):
                    log.info("secrets changed; re-checking", extra={"secrets": sorted(names)})
                    self.trigger("secrets", resync=True)
                if not self._stop.is_set():
                    self.trigger("secrets", resync=True)  # the folder itself appeared
        except Exception as exc:  # an accelerator: the resync still re-checks secrets
            log.warning("secrets watch stopped", extra={"error": str(exc)})

    async def _watchdog(self) -> None:
        interval = self._notifier.watchdog_interval()
        if interval is None:
            return
        while not self._stop.is_set():
            await self._sleep(interval / 2)
            self._notify("watchdog")

    async def _watch_local_refs(self, repo: Path) -> None:
        try:
            async for _changed in watch_refs(
                repo, stop_event=self._stop, branches={self._config.repo.branch}
            ):
                self._wake.set()
        except Exception as exc:  # the watch is an accelerator; polling still runs
            log.warning("local ref watch stopped", extra={"error": str(exc)})

    def _reload(self) -> None:
        if self._config_file is None:
            log.info("SIGHUP: no config file to reload")
            return
        self._notify("reloading")
        try:
            new = load_config(self._config_file)
        except ConfigError as exc:
            log.error("config reload failed; keeping the running config", extra={"error": str(exc)})
            self._notify("ready")
            return
        decision = reload.decide(self._config, new, api_running=self._serve is not None)
        if decision.refused:
            log.error(
                "config reload refused; keeping the running config",
                extra={
                    "restart_needed": list(decision.restart_needed),
                    "error": decision.explain(),
                },
            )
            self._notify("ready")
            return
        self._config = new
        configure_logging(
            new.logging.level,
            redact=self.resolver.known_values,
            log_format=new.logging.format,
        )
        for observe in self.reload_observers:
            observe(new)
        self._resync_due = True
        log.info(
            "config reloaded",
            extra={"file": str(self._config_file), "changed": list(decision.changed)},
        )
        self._notify("ready")
