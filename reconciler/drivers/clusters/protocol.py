"""The cluster driver interface, its values and its errors, shared by every driver.

Steps talk to a cluster only through ``ClusterDriver``; what a driver needs to run an
endpoint arrives already rendered in an ``EndpointSpec`` (argv or image, env, port, probes,
GPUs), so a driver knows nothing of specs, templates or sizing. Failures cross the driver
boundary as ``ClusterError`` subclasses, which tell the caller whether trying again can help.
The module is self-contained: drivers import nothing else of the project.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

Strategy = Literal["green", "recreate"]
JobState = Literal["pending", "running", "succeeded", "failed"]

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "reconciler"


class ClusterError(Exception):
    """Base of every error a cluster driver raises."""


class ClusterUnreachableError(ClusterError):
    """The cluster did not answer (connection refused, timeout); trying again may help."""


class ClusterAuthError(ClusterError):
    """The cluster refused our credentials; a person must fix the secret or its rights."""


class InvalidEndpointError(ClusterError):
    """The endpoint as rendered cannot run (rejected manifest, missing executable)."""


class EndpointNotFoundError(ClusterError):
    """No endpoint of that name is managed on this cluster."""


class EndpointConflictError(ClusterError):
    """Another owner holds the name or the fields; the message says who and which."""


class JobNotFoundError(ClusterError):
    """No job of that name is known to this cluster."""


class RolloutFailedError(ClusterError):
    """A new revision never became ready, or failed its gate; the old one still serves.
    The message says why; ``report`` holds the gate's measurements when a gate decided."""

    def __init__(self, message: str, *, report: GateReport | None = None) -> None:
        super().__init__(message)
        self.report = report


class RolloutTimeoutError(RolloutFailedError):
    """A new revision was not ready within the time allowed; it may still become ready."""


@dataclasses.dataclass(frozen=True)
class ClusterCheck:
    """Whether the cluster answered, and what it says it runs."""

    reachable: bool
    version: str | None = None
    message: str = ""


@dataclasses.dataclass(frozen=True)
class GpuCount:
    """GPUs of one type: how many the cluster has, and how many no workload holds."""

    gpu_type: str
    total: int
    free: int


@dataclasses.dataclass(frozen=True)
class Inventory:
    """GPUs by type (an empty mapping for a cluster with none)."""

    gpus: Mapping[str, GpuCount] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class WorkerResources:
    """What one worker asks for; ``None`` leaves the driver's default."""

    gpus: int = 0
    cpu: str | None = None
    memory: str | None = None


@dataclasses.dataclass(frozen=True)
class ScalingPolicy:
    """Workers between ``min_workers`` and ``max_workers``, moved by the targets (per
    worker: requests waiting; p90 time to first token, ms). A driver that scales with its
    own loop (the local one) reads this; one that hands scaling to the cluster's own
    autoscaler (Kubernetes) applies the rendered object in ``EndpointSpec.manifests`` and
    leaves the worker count to it."""

    min_workers: int
    max_workers: int
    queue_depth: float | None = None
    ttft_ms: float | None = None
    kv_cache_usage: float | None = None
    scale_down_delay_s: float = 300.0


@dataclasses.dataclass(frozen=True)
class RolloutGate:
    """How a new revision earns its promotion: it takes ``traffic_percent`` of the requests
    beside the serving one for ``window_s`` seconds, and is promoted only if what was
    measured there meets every bound set (p90 time to first token, ms; error rate, 0..1;
    p90 end-to-end latency, s); otherwise it is removed and the old revision keeps
    serving. While fewer than ``min_requests`` were answered the window grows (a driver
    says how far); still fewer at its end: promoted on health alone, which the report
    says."""

    traffic_percent: int
    window_s: float
    max_error_rate: float
    max_ttft_ms: float | None = None
    max_e2e_s: float | None = None
    min_requests: int = 10


@dataclasses.dataclass(frozen=True)
class GateReport:
    """What a gate measured of a new revision and what it decided."""

    revision: str
    verdict: Literal["promoted", "rolled_back"]
    reasons: tuple[str, ...]
    requests: int
    errors: int
    error_rate: float | None
    ttft_p90_ms: float | None
    e2e_p90_s: float | None
    window_s: float
    traffic_percent: int
    slo: Mapping[str, float] = dataclasses.field(default_factory=dict)
    decided_at: str = ""
    """When the verdict was reached (UTC, ISO 8601)."""


@dataclasses.dataclass(frozen=True)
class ScaleEvent:
    """One change of an endpoint's worker count by its autoscaler."""

    at: str
    """When (UTC, ISO 8601)."""
    from_workers: int
    to_workers: int
    why: str


@dataclasses.dataclass(frozen=True)
class EndpointSpec:
    """One endpoint as a driver runs it, fully rendered.

    ``command``/``args`` hold no placeholder except ``{port}``, which a driver that
    allocates ports itself (the local one) fills; ``port`` is the port the server listens
    on where the driver does not choose it (a container port). ``image`` is for drivers
    that run containers, ``command`` for drivers that run processes on a host.
    ``manifests`` holds the objects rendered for drivers that apply manifests, by kind
    (the kubernetes driver takes a ``Deployment`` and a ``Service``); others ignore it.
    """

    name: str
    owner_labels: Mapping[str, str]
    image: str | None
    command: tuple[str, ...]
    args: tuple[str, ...]
    env: Mapping[str, str]
    port: int
    health_path: str
    resources: WorkerResources
    workers: int
    strategy: Strategy = "green"
    manifests: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    secret_env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Environment variables whose values are secrets, by the secret's *name*: the driver
    resolves each when it starts the server and never stores the value."""
    worker_concurrency: int = 1
    """Requests one worker serves at once (its server's parallel slots); a driver with a
    proxy in front of its workers (the local one) queues the rest there."""
    autoscaling: ScalingPolicy | None = None
    """Set: the worker count is the autoscaler's, between its bounds (``workers`` is
    where it starts)."""
    gate: RolloutGate | None = None
    """Set: a new revision is measured on a share of the traffic before it is promoted."""


@dataclasses.dataclass(frozen=True)
class Drift:
    """A managed field changed out of band: which, by whom if known, and what it is now."""

    field: str
    manager: str | None = None
    observed: str | None = None
    expected: str | None = None
    reapplied: bool = False
    """Already overwritten by an apply of ours (a watch saw the state only after it)."""


DriftListener = Callable[[str, Sequence[Drift]], None]
"""Told, by a driver's watch, that the endpoint of this name (a Deployment's name) changed
out of band and how. It may be called from a driver's own thread."""


@dataclasses.dataclass(frozen=True)
class AppliedObject:
    """One object a driver created for an endpoint (a Kubernetes Deployment, Service)."""

    kind: str
    namespace: str | None
    name: str


@dataclasses.dataclass(frozen=True)
class EndpointObservation:
    """What the cluster shows of one endpoint right now.

    ``ready`` is true only once a rollout is complete: every desired worker is updated,
    ready and available at the current revision. ``message`` says what is missing if not.
    """

    name: str
    exists: bool
    workers_desired: int
    workers_ready: int
    ready: bool
    endpoint_url: str | None
    resources: WorkerResources | None = None
    drift: tuple[Drift, ...] = ()
    message: str = ""
    applied: tuple[AppliedObject, ...] = ()
    healed: tuple[Drift, ...] = ()
    """Drift a rollout found on the live objects before it applied, and so re-applied
    (``drift`` is what still differs after it); empty for a plain observation."""
    scale_events: tuple[ScaleEvent, ...] = ()
    """The autoscaler's recent changes of the worker count, oldest first."""
    autoscaler: Mapping[str, Any] | None = None
    """What the autoscaler says now (bounds, current and desired workers, signals)."""
    rollout: GateReport | None = None
    """The last gated rollout's measurements and verdict, when there was one."""


ScaleListener = Callable[[str, EndpointObservation], None]
"""Told, by a driver that scales with its own loop, that the endpoint of this name changed
its worker count: the endpoint as it is then, its newest scale event last (called on the
event loop)."""


@dataclasses.dataclass(frozen=True)
class JobSpec:
    """A run-to-completion job: an image or a command, with its args and env."""

    name: str
    owner_labels: Mapping[str, str]
    image: str | None
    command: tuple[str, ...]
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    resources: WorkerResources = dataclasses.field(default_factory=WorkerResources)
    timeout_s: float | None = None


@dataclasses.dataclass(frozen=True)
class JobHandle:
    """A started job, named as the cluster knows it."""

    name: str
    namespace: str | None = None


@dataclasses.dataclass(frozen=True)
class JobStatus:
    """Where a job is; ``exit_code`` once it has ended, where the cluster knows it."""

    state: JobState
    exit_code: int | None = None
    message: str = ""


class ClusterDriver(Protocol):
    """What a step needs of a cluster; every method raises only ClusterError subclasses."""

    async def check(self) -> ClusterCheck:
        """Whether the cluster answers, and its version; unreachable is a value, not an error."""
        ...

    async def inventory(self) -> Inventory:
        """GPUs by type, total and free."""
        ...

    async def apply_endpoint(self, spec: EndpointSpec) -> EndpointObservation:
        """Create or update the endpoint to match ``spec``; returns at once, without waiting."""
        ...

    async def observe_endpoint(self, name: str) -> EndpointObservation:
        """The endpoint as it is now (``exists=False`` when there is none)."""
        ...

    async def delete_endpoint(self, name: str) -> bool:
        """Remove the endpoint and all it holds; false when there was nothing to remove."""
        ...

    async def scale_endpoint(self, name: str, workers: int) -> EndpointObservation:
        """Set the number of workers; raises EndpointNotFoundError for an unknown name."""
        ...

    async def run_job(self, spec: JobSpec) -> JobHandle:
        """Start a job; returns once it is submitted."""
        ...

    async def job_status(self, handle: JobHandle) -> JobStatus:
        """Where the job is now."""
        ...

    async def job_logs(self, handle: JobHandle, *, tail_bytes: int | None = None) -> str:
        """The job's output so far (the last ``tail_bytes`` of it when given)."""
        ...

    async def close(self) -> None:
        """Release connections and background tasks; endpoints keep running."""
        ...


@runtime_checkable
class RolloutDriver(Protocol):
    """A driver that rolls a new revision out itself: it applies, waits until the new
    workers are ready, then switches traffic to them, or removes them and keeps the old
    revision serving (raising RolloutFailedError saying why). It reads the live objects
    itself before applying, so its observation's ``healed`` says what drift it re-applied
    (a caller needs no observation of its own first)."""

    async def rollout(self, spec: EndpointSpec, *, timeout_s: float) -> EndpointObservation:
        """Apply ``spec`` and see its rollout through within ``timeout_s`` seconds."""
        ...


# --- jobs run to their end (the k8s_job step) -------------------------------------------


class InvalidJobError(ClusterError):
    """The job as requested cannot run here (a rejected manifest, no command on a host, an
    image name the cluster refuses); trying again cannot help."""


class JobConflictError(ClusterError):
    """A job of that name exists and is not one this daemon started."""


@dataclasses.dataclass(frozen=True)
class JobRequest:
    """One run-to-completion job, as a JobRunner runs it.

    ``name`` is unique per attempt of a step (a retry is a new job; a daemon restarted
    mid-attempt asks for the same name again and the runner may adopt what it finds).
    ``image`` is for runners that run containers, ``command``/``args`` are the argv (on a
    container: its entrypoint and arguments; on a host: the program and its arguments).
    ``gpus`` devices are given to it; ``timeout_s`` bounds its run (None: no bound).
    ``manifest`` is the Job that core rendered, for runners that apply manifests.
    """

    name: str
    image: str | None
    command: tuple[str, ...]
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    gpus: int = 0
    timeout_s: float | None = None
    manifest: Mapping[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class JobOutcome:
    """How a job ended. ``exit_code`` is its main process's (128 + N when signal N ended
    it; None when it never ran); ``timed_out``: it was stopped at ``timeout_s``;
    ``message`` says what else the cluster told (a reason, a kill)."""

    exit_code: int | None
    timed_out: bool = False
    message: str = ""


@runtime_checkable
class JobRunner(Protocol):
    """Runs one job from start to end, its output streamed as it comes."""

    async def run_to_end(
        self,
        request: JobRequest,
        *,
        on_line: Callable[[str], None],
        on_note: Callable[[str], None],
    ) -> JobOutcome:
        """Start the job, hand each line of its output (stdout and stderr, in order, without
        the line end) to ``on_line`` as it comes and what the cluster says of it (waiting
        for an image, adopted, stopped) to ``on_note``; wait until it ends, or stop it at
        ``timeout_s``; remove it and what it ran in; say how it ended. Cancelled, it stops
        and removes the job, then lets the cancellation go on. Raises ClusterError
        subclasses only (InvalidJobError: it cannot run as asked)."""
        ...


@runtime_checkable
class JobRunnerSource(Protocol):
    """A cluster driver that can run jobs to their end."""

    def job_runner(self) -> JobRunner: ...


# --- model caches (a Model pre-pulled to a cluster) ---------------------------------------


@dataclasses.dataclass(frozen=True)
class CacheObservation:
    """A model cache on a cluster: on how many nodes its files are, of how many."""

    name: str
    ready: bool
    nodes: int
    nodes_ready: int
    message: str = ""


@runtime_checkable
class CacheDriver(Protocol):
    """A driver that pre-pulls a model's files onto its nodes from a rendered manifest."""

    async def fill_cache(
        self,
        manifest: Mapping[str, Any],
        *,
        timeout_s: float,
        secret: Mapping[str, Any] | None = None,
    ) -> CacheObservation:
        """Apply the cache's manifest (after ``secret``, the puller's token, when given)
        and wait until every node holds the files (or the time is up: the observation
        says what is missing)."""
        ...

    async def drop_cache(self, name: str) -> bool:
        """Remove the cache of that name (and its token's Secret); false when there was
        none."""
        ...
