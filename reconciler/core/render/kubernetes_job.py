"""A ``k8s_job`` step made into a Kubernetes ``batch/v1`` Job (pure).

The kubernetes job runner applies exactly this object, so tests check it against the
real Kubernetes schemas like the endpoints' manifests. One pod, never restarted and never
retried by Kubernetes (``backoffLimit: 0``): retries are the workflow's (``retries``,
``retry_delay``), each attempt a Job of its own. ``node_timeout`` becomes
``activeDeadlineSeconds``, so the cluster stops a job past it even if the daemon is gone;
``ttlSecondsAfterFinished`` removes a finished Job the daemon never came back to delete.
GPUs are ``nvidia.com/gpu`` limits (requests follow limits for extended resources).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.core.render.placeholders import RenderError

GPU_RESOURCE = "nvidia.com/gpu"
CONTAINER_NAME = "job"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "reconciler"
JOB_LABEL = "reconciler/job"
"""Names the Job on its own labels: a Job of that name without it is not ours."""
FINISHED_TTL_S = 3600
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def job_labels(name: str, extra: Mapping[str, str]) -> dict[str, str]:
    """The labels of a Job and its pod: ours, its name, and the caller's (values that are
    not valid label values are left out rather than rejected by the server)."""
    labels = {key: value for key, value in extra.items() if _valid_label_value(value)}
    labels.update({MANAGED_BY_LABEL: MANAGED_BY_VALUE, JOB_LABEL: name})
    return labels


def _valid_label_value(value: str) -> bool:
    return len(value) <= 63 and _LABEL_VALUE.fullmatch(value) is not None


def render_job(
    *,
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    image: str,
    command: Sequence[str] = (),
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    gpus: int = 0,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """The Job manifest; RenderError names what cannot be rendered."""
    if not image:
        raise RenderError(f"job {name}: a kubernetes job needs an image")
    if gpus < 0:
        raise RenderError(f"job {name}: gpus must be 0 or more, not {gpus}")
    for key in env or {}:
        if not _ENV_NAME.fullmatch(key):
            raise RenderError(
                f"job {name}: env name {key!r} is not a valid environment variable name "
                "(letters, digits, '_', '-', '.'; not starting with a digit)"
            )
    container: dict[str, Any] = {"name": CONTAINER_NAME, "image": image}
    if command:
        container["command"] = list(command)
    if args:
        container["args"] = list(args)
    if env:
        container["env"] = [{"name": key, "value": value} for key, value in sorted(env.items())]
    if gpus:
        container["resources"] = {"limits": {GPU_RESOURCE: str(gpus)}}
    all_labels = job_labels(name, labels)
    spec: dict[str, Any] = {
        "backoffLimit": 0,
        "ttlSecondsAfterFinished": FINISHED_TTL_S,
        "template": {
            "metadata": {"labels": dict(all_labels)},
            "spec": {"restartPolicy": "Never", "containers": [container]},
        },
    }
    if timeout_s is not None:
        spec["activeDeadlineSeconds"] = max(math.ceil(timeout_s), 1)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": all_labels},
        "spec": spec,
    }
