"""What an LLM server is told about its base model and LoRA adapters (pure).

A template's ``runtime.lora`` says how its server takes adapters:

- ``llama-cpp-python``: the server reads one config file (``--config_file
  {server_config}``) listing models by alias; the base model is the entry named after the
  Deployment's ``endpoint_name`` and each adapter is one more entry, the same base file
  with the adapter's ``lora_path``, under the adapter's name. ``GET /v1/models`` lists
  every alias. The server holds one entry in memory at a time and loads another on the
  first request that names it. The file's content is rendered here; the deploy step
  writes it (content-addressed, so a changed adapter list is a changed command line and
  the local driver restarts the server: llama-cpp-python has no endpoint to load an
  adapter into a running server).
- ``vllm``: ``--enable-lora --max-loras N --lora-modules name=path ...`` appended to the
  server's arguments.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from reconciler.core.render.placeholders import RenderError

LLAMA_CPP_PYTHON = "llama-cpp-python"
VLLM = "vllm"


@dataclasses.dataclass(frozen=True)
class AdapterFiles:
    """One adapter as a server loads it: its served name and where its weights are."""

    name: str
    path: str


def llama_cpp_server_config(
    *, model_path: str, endpoint_name: str, host: str, adapters: Sequence[AdapterFiles]
) -> dict[str, Any]:
    """llama-cpp-python's server config: the base model first (the default), then one
    entry per adapter. Port and host are also given by the driver through ``PORT`` and
    ``HOST`` in the environment, which the server prefers."""
    models: list[dict[str, Any]] = [{"model": model_path, "model_alias": endpoint_name}]
    models.extend(
        {"model": model_path, "model_alias": adapter.name, "lora_path": adapter.path}
        for adapter in adapters
    )
    return {"host": host, "models": models}


def config_text(config: dict[str, Any]) -> str:
    """The config as the file holds it (stable: the same config, the same bytes)."""
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def vllm_lora_args(adapters: Sequence[AdapterFiles]) -> list[str]:
    """vLLM's arguments serving ``adapters`` (none when there are none)."""
    if not adapters:
        return []
    modules = [f"{adapter.name}={adapter.path}" for adapter in adapters]
    return ["--enable-lora", "--max-loras", str(len(adapters)), "--lora-modules", *modules]


def check_adapters_supported(
    *, template_name: str, lora: str | None, adapters: Sequence[AdapterFiles], where: str
) -> None:
    """RenderError when the template's server takes no adapters and some are asked for."""
    if adapters and lora is None:
        raise RenderError(
            f"DeploymentTemplate/{template_name}: its server takes no LoRA adapters "
            f"(runtime.lora is unset), and {where} lists {len(adapters)}"
        )
