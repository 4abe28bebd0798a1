"""A Deployment's LoRA adapters made into files its server can load.

Each adapter names a Model of the repo; like the base model it must be Ready (resolved
and security-scanned) before the endpoint serves it: a Model not Ready yet holds the
deployment (``WaitingForModel``, retried; the daemon parks the Deployment on that Model
through its references), a Model whose scan blocked stalls it. A hugging_face adapter on
a local Cluster is downloaded into the shared model cache and scanned there, as a base
model is (steps.models.hub_files_for_endpoint). On a local Cluster a folder holding one
``.gguf`` file is narrowed to it for llama-cpp-python, which takes a file; elsewhere the
Model's path (or Hugging Face repo id, which vLLM resolves in the pod) is passed on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.core.render.llm_server import LLAMA_CPP_PYTHON, AdapterFiles
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext
from reconciler.specs.deployment import DeploymentSpec
from reconciler.steps import models

if TYPE_CHECKING:
    from reconciler.steps.endpoints import ModelFacts

HUGGING_FACE = "hugging_face"
WAITING_RETRY_S = 10.0


async def adapter_files(
    ctx: StepContext,
    *,
    who: str,
    spec: DeploymentSpec,
    model_of: Callable[[str], ModelFacts | None],
    local: bool,
    lora_style: str | None,
) -> tuple[AdapterFiles, ...] | outcomes.Outcome:
    """Every adapter of ``spec`` as (name, path), or the outcome that holds the deploy."""
    found: list[AdapterFiles] = []
    for adapter in spec.adapters:
        facts = model_of(adapter.model)
        what = f"{who}: adapter {adapter.name}: Model/{adapter.model}"
        if facts is not None and facts.blocked is not None:
            return outcomes.Stalled(facts.blocked)
        hub = facts is not None and facts.provider_type == HUGGING_FACE
        if facts is None or (facts.path is None and not hub):
            return outcomes.Retry(
                f"WaitingForModel: {what} is not Ready yet", after_seconds=WAITING_RETRY_S
            )
        if local:
            path: str
            if hub:
                files = await models.hub_files_for_endpoint(
                    ctx, model=adapter.model, source=facts.source or {}
                )
                if not isinstance(files, Path):
                    return files
                path = str(files)
            else:
                path = str(facts.path)
            if lora_style == LLAMA_CPP_PYTHON:
                narrowed = single_gguf(path)
                if narrowed is None:
                    return outcomes.Stalled(
                        f"{what}: llama-cpp-python loads one GGUF adapter file, and {path} "
                        "is neither a .gguf file nor a folder holding exactly one"
                    )
                path = narrowed
        else:
            path = cluster_path(facts.source or {}, facts.path)
        found.append(AdapterFiles(adapter.name, path))
    return tuple(found)


def single_gguf(path: str) -> str | None:
    """``path`` if it is a .gguf file; the one .gguf file of a folder; else None."""
    place = Path(path)
    if place.is_file():
        return path if place.suffix == ".gguf" else None
    if place.is_dir():
        found = sorted(place.rglob("*.gguf"))
        if len(found) == 1:
            return str(found[0])
    return None


def cluster_path(source: Mapping[str, Any], path: str | None) -> str:
    """What a pod is told to load: a Hugging Face repo id, else the Model's path."""
    if source.get("provider_type") == HUGGING_FACE and isinstance(source.get("uri"), str):
        return str(source["uri"])
    return str(path)
