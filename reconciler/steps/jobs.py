"""The ``k8s_job`` step: run a container (on a local cluster, a command) to its end.

It reads its inputs (``cluster``, ``image``, ``command``/``args``, ``env``, ``gpus``,
``node_timeout``), checks them against the Cluster (no more GPUs than its ``gpu.count``;
an image on kubernetes, a command and no image on local), renders the Job for a
kubernetes cluster (reconciler.core.render.kubernetes_job) and hands the run to the
cluster driver's JobRunner. Each line of output goes into the step log as it comes (up
to ``MAX_STEP_LOG_BYTES``; the rest is counted, not kept). Outputs: ``logs`` (the last
``LOGS_TAIL_BYTES`` of the output), ``exit_code`` and ``outputs``: the JSON object on the
last non-empty line of output, ``{}`` when that line is not one.

Exit code 0 is done. Another exit code, or a run stopped at its timeout, is a failure
that the workflow's ``retries`` retry (each attempt a job of its own, named after the
execution, node and attempt, so a daemon that restarts mid-attempt finds the same one);
a job that cannot run as asked (no such Cluster, too many GPUs, an image on a local
cluster, a manifest the cluster rejects) stalls.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, Protocol

from reconciler.core.render import kubernetes_job
from reconciler.core.render.placeholders import RenderError
from reconciler.core.step_types import NODE_TIMEOUT
from reconciler.drivers.clusters import protocol
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext, StepImpl, StepLog
from reconciler.steps import input_values

STEP_TYPE = "k8s_job"
MAX_STEP_LOG_BYTES = 1024 * 1024
LOGS_TAIL_BYTES = 64 * 1024
DEFAULT_NAMESPACE = "reconciler"
WORKFLOW_LABEL = "reconciler/workflow"
NODE_LABEL = "reconciler/node"
_NOT_DNS = re.compile(r"[^a-z0-9-]+")


class ClusterSpecs(Protocol):
    """The daemon's Cluster specs by name (None: no such Cluster)."""

    def cluster(self, name: str) -> Mapping[str, Any] | None: ...


class StepRegistryLike(Protocol):
    def register(self, step_type: str, impl: StepImpl) -> None: ...


def register_job_steps(
    registry: StepRegistryLike,
    *,
    drivers: Mapping[str, protocol.ClusterDriver],
    facts: ClusterSpecs,
) -> None:
    """Register ``k8s_job``; ``drivers`` maps a Cluster's name to its driver."""
    registry.register(STEP_TYPE, _JobStep(drivers=drivers, facts=facts).run)


class _Stop(Exception):
    def __init__(self, outcome: outcomes.Outcome) -> None:
        super().__init__(str(outcome))
        self.outcome = outcome


def _stalled(message: str) -> _Stop:
    return _Stop(outcomes.Stalled(message))


def job_name(*, workflow: str, node: str, execution: str, attempt: int) -> str:
    """A DNS label naming one attempt of one node of one execution (the same again for
    the same attempt, so a resumed attempt finds its job)."""
    digest = hashlib.sha256(f"{execution}/{node}/{attempt}".encode()).hexdigest()[:10]
    stem = _NOT_DNS.sub("-", f"{workflow[:28]}-{node[:20]}".lower()).strip("-")
    return f"{stem}-{digest}" if stem else f"job-{digest}"


def _strings(inputs: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = inputs.get(name)
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise _stalled(f"input '{name}' must be a list of strings, got {value!r}")
    return tuple(value)


def _env(inputs: Mapping[str, Any]) -> dict[str, str]:
    value = inputs.get("env")
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _stalled(f"input 'env' must be a mapping of names to values, got {value!r}")
    env: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, bool):
            env[str(key)] = "true" if item else "false"
        elif isinstance(item, str | int | float):
            env[str(key)] = str(item)
        else:
            raise _stalled(f"input 'env.{key}' must be a string, number or boolean, got {item!r}")
    return env


class _Capture:
    """The job's output: into the step log (up to a cap), its tail, its last line."""

    def __init__(self, log: StepLog) -> None:
        self._log = log
        self._logged = 0
        self._dropped = 0
        self._tail: collections.deque[str] = collections.deque()
        self._tail_bytes = 0
        self._last = ""

    def line(self, text: str) -> None:
        size = len(text.encode()) + 1
        if self._logged + size <= MAX_STEP_LOG_BYTES:
            self._logged += size
            self._log.info(f"| {text}")
        else:
            self._dropped += 1
        self._tail.append(text)
        self._tail_bytes += size
        while self._tail_bytes > LOGS_TAIL_BYTES and len(self._tail) > 1:
            self._tail_bytes -= len(self._tail.popleft().encode()) + 1
        if text.strip():
            self._last = text

    def finish(self) -> None:
        if self._dropped:
            self._log.warning(
                f"{self._dropped} more line(s) of output were not kept in the step log "
                f"(it keeps {MAX_STEP_LOG_BYTES // 1024} KiB); the logs output has the last "
                f"{LOGS_TAIL_BYTES // 1024} KiB"
            )

    def logs(self) -> str:
        return "".join(f"{line}\n" for line in self._tail)

    def outputs(self) -> dict[str, Any]:
        try:
            found = json.loads(self._last)
        except ValueError:
            return {}
        return found if isinstance(found, dict) else {}

    def last_lines(self, count: int = 5) -> str:
        return " | ".join(list(self._tail)[-count:])


@dataclasses.dataclass(frozen=True)
class _JobStep:
    drivers: Mapping[str, protocol.ClusterDriver]
    facts: ClusterSpecs

    async def run(self, ctx: StepContext) -> outcomes.Outcome:
        try:
            return await self._run(ctx)
        except _Stop as stop:
            return stop.outcome

    def _runner(self, cluster: str) -> protocol.JobRunner:
        try:
            driver = self.drivers.get(cluster)
        except protocol.ClusterError as exc:
            reason, _, rest = str(exc).partition(": ")
            if reason == "SecretNotFound":
                raise _stalled(f"SecretNotFound: Cluster/{cluster}: {rest}") from None
            raise _Stop(outcomes.Retry(f"Cluster/{cluster}: {exc}")) from None
        if driver is None:
            raise _stalled(f"no driver for Cluster/{cluster}")
        if not isinstance(driver, protocol.JobRunnerSource):
            raise _stalled(f"the driver of Cluster/{cluster} cannot run jobs")
        return driver.job_runner()

    def _request(self, ctx: StepContext, cluster: str, spec: Mapping[str, Any]) -> Any:
        local = spec.get("driver", "local") == "local"
        gpus = input_values.integer(ctx.inputs, "gpus") or 0
        if gpus < 0:
            raise _stalled(f"input 'gpus' must be 0 or more, got {gpus}")
        declared = (spec.get("gpu") or {}).get("count")
        have = declared if isinstance(declared, int) else (0 if local else None)
        if have is not None and gpus > have:
            raise _stalled(
                f"the job asks for {gpus} GPU(s) and Cluster/{cluster} has {have} "
                "(its spec.gpu.count)"
            )
        image = ctx.inputs.get("image")
        if image is not None and not isinstance(image, str):
            raise _stalled(f"input 'image' must be a string, got {image!r}")
        command, args = _strings(ctx.inputs, "command"), _strings(ctx.inputs, "args")
        if local and image:
            raise _stalled(
                f"Cluster/{cluster} is local: it runs `command` on its host and cannot run "
                f"the image {image!r}; remove image, or use a kubernetes Cluster"
            )
        if local and not command:
            raise _stalled(f"Cluster/{cluster} is local: give the program to run in `command`")
        if not local and not image:
            raise _stalled(f"Cluster/{cluster} runs containers: give the job an image")
        timeout = input_values.duration(ctx.inputs, NODE_TIMEOUT, default=None)
        workflow = ctx.object_key.partition("/")[2]
        name = job_name(
            workflow=workflow, node=ctx.node_id, execution=ctx.execution_id, attempt=ctx.attempt
        )
        labels = {WORKFLOW_LABEL: workflow, NODE_LABEL: ctx.node_id}
        env = _env(ctx.inputs)
        manifest = None
        if not local:
            assert isinstance(image, str)
            try:
                manifest = kubernetes_job.render_job(
                    name=name,
                    namespace=str(spec.get("namespace") or DEFAULT_NAMESPACE),
                    labels=labels,
                    image=image,
                    command=command,
                    args=args,
                    env=env,
                    gpus=gpus,
                    timeout_s=timeout,
                )
            except RenderError as exc:
                raise _stalled(str(exc)) from exc
        return protocol.JobRequest(
            name=name,
            image=image or None,
            command=command,
            args=args,
            env=env,
            gpus=gpus,
            timeout_s=timeout,
            manifest=manifest,
        )

    async def _run(self, ctx: StepContext) -> outcomes.Outcome:
        cluster = input_values.text(ctx.inputs, "cluster")
        spec = self.facts.cluster(cluster)
        if spec is None:
            return outcomes.Stalled(f"Cluster/{cluster} does not exist")
        request: protocol.JobRequest = self._request(ctx, cluster, spec)
        runner = self._runner(cluster)
        where = f"job {request.name} on Cluster/{cluster}"
        ctx.log.info(f"running {where}")
        capture = _Capture(ctx.log)
        try:
            ended = await runner.run_to_end(request, on_line=capture.line, on_note=ctx.log.info)
        except (
            protocol.InvalidJobError,
            protocol.InvalidEndpointError,
            protocol.JobConflictError,
            protocol.ClusterAuthError,
        ) as exc:
            return outcomes.Stalled(f"{where}: {exc}")
        except protocol.ClusterError as exc:
            return outcomes.Retry(f"{where}: {exc}")
        finally:
            capture.finish()
        said = f" ({ended.message})" if ended.message else ""
        if ended.timed_out:
            return outcomes.Retry(f"{where} ran past its node_timeout and was stopped{said}")
        if ended.exit_code is None:
            return outcomes.Retry(f"{where} ended without an exit code{said}")
        if ended.exit_code != 0:
            return outcomes.Retry(
                f"{where} exited with code {ended.exit_code}{said}; last output: "
                f"{capture.last_lines() or '(none)'}"
            )
        ctx.log.info(f"{where} succeeded")
        return outcomes.Done({"logs": capture.logs(), "exit_code": 0, "outputs": capture.outputs()})
