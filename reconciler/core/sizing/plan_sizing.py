"""The shape a plan proposes for a self-hosted Deployment, from the specs alone.

``reconciler plan`` runs where only the repo is known (a PR's CI runner), so it sizes a
Deployment from what the specs say: the Model's ``parameters`` and ``dtype``, the
Cluster's ``gpu.type`` and ``gpu.count`` (no shape needs more GPUs than it has), the
template's GPUs per worker and the Deployment's ``deploy_config`` and ``workers``. What
the specs leave out (a Model whose size the daemon reads from its files) is said plainly
instead of guessed; the daemon sizes again from what it observed when it deploys. Pure:
plain specs in, a SizingResult or a note out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.core.builtin_templates import BUILTIN_TEMPLATES
from reconciler.core.diff import ObjectState
from reconciler.core.sizing import gpus, roofline

SELF_HOSTED = frozenset({"hugging_face", "url", "disk"})


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def size_from_specs(
    deployment: ObjectState, desired: Mapping[str, ObjectState]
) -> roofline.SizingResult | str | None:
    """The proposed shape, a note saying why none is estimated, or None (not sized:
    a cloud model or a Deployment that names no Model)."""
    spec = deployment.spec
    model = desired.get(f"Model/{spec.get('model')}")
    if model is None:
        return None
    source = _mapping(model.spec.get("source"))
    if source.get("provider_type") not in SELF_HOSTED:
        return None
    cluster = desired.get(f"Cluster/{spec.get('cluster')}")
    declared = _mapping(cluster.spec.get("gpu") if cluster else None)
    gpu_name = declared.get("type")
    max_gpus = declared.get("count") if isinstance(declared.get("count"), int) else None
    template_name = spec.get("template")
    template_state = desired.get(f"DeploymentTemplate/{template_name}")
    template = template_state.spec if template_state else BUILTIN_TEMPLATES.get(str(template_name))
    template = _mapping(template)
    workers = spec.get("workers") if isinstance(spec.get("workers"), int) else None
    per_worker = _mapping(template.get("resources")).get("gpus_per_worker")
    per_worker = per_worker if isinstance(per_worker, int) and per_worker > 0 else None
    try:
        load = roofline.Load.from_deploy_config(
            _mapping(spec.get("deploy_config")), defaults=_mapping(template.get("defaults"))
        )
    except roofline.SizingError as exc:
        return f"not estimated: {exc}"
    gpu = gpus.find_gpu(str(gpu_name)) if isinstance(gpu_name, str) else None
    if isinstance(gpu_name, str) and gpu is None:
        return f"not estimated: GPU type {gpu_name!r} is not in the sizing catalogue"
    if gpu is None:
        return roofline.size(
            model=roofline.ModelShape(parameters=1, dtype="float32"),
            gpu=None,
            load=load,
            workers=workers,
        )
    parameters, dtype = model.spec.get("parameters"), model.spec.get("dtype")
    if parameters is None or dtype is None:
        return (
            f"not estimated here: Model {model.name} gives no parameters and dtype in its "
            "spec (the daemon sizes it from the model's files when it deploys)"
        )
    try:
        shape = roofline.ModelShape(
            parameters=roofline.parse_parameters(parameters), dtype=str(dtype)
        )
        return roofline.size(
            model=shape,
            gpu=gpu,
            load=load,
            workers=workers,
            gpus_per_worker=per_worker,
            max_gpus=max_gpus,
        )
    except roofline.SizingError as exc:
        return f"not estimated: {exc}"


def describe(result: roofline.SizingResult | str, load: roofline.Load | None = None) -> str:
    """One line: the shape and its predictions, ``infeasible`` with the gap, or a note."""
    if isinstance(result, str):
        return result
    if not result.feasible:
        return f"infeasible on {result.gpu_type}: {'; '.join(result.gap)}"
    if result.gpu_type is None:
        return f"{result.workers} worker(s) on CPU; " + "; ".join(result.notes)
    shape = f"{result.workers} worker(s) x {result.gpus_per_worker} {result.gpu_type}"
    predicted = result.predicted
    if predicted is None:
        return shape + ("; " + "; ".join(result.notes) if result.notes else "")
    return (
        f"{shape}: predicted TTFT {predicted.ttft_ms:.0f} ms, "
        f"{predicted.tokens_per_sec:.0f} tokens/s per session, "
        f"e2e {predicted.e2e_latency_s:.1f} s"
    )
