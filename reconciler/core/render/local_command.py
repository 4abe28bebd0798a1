"""The argv and environment of a template's server as the local driver runs it.

The local driver runs the template's ``runtime.command`` (its ``args`` are for the image
of container drivers), bound to 127.0.0.1 only. ``{runtime_bin}`` is the bin folder of
the runtime virtualenv a built-in template runs from; ``{port}`` is left for the driver,
which allocates the port and keeps it across restarts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.core.render import llm_server, placeholders
from reconciler.core.render.placeholders import RenderError
from reconciler.specs.deployment import DeploymentSpec
from reconciler.specs.template import DeploymentTemplateSpec

LOCAL_HOST = "127.0.0.1"


@dataclasses.dataclass(frozen=True)
class LocalCommand:
    """A server command ready for the local driver (``{port}`` still to fill)."""

    argv: tuple[str, ...]
    env: dict[str, str]
    health_path: str


def needs_runtime(template: DeploymentTemplateSpec) -> bool:
    """Whether the template's command runs from a runtime virtualenv."""
    command = template.runtime.command or []
    return placeholders.RUNTIME_BIN in placeholders.names_in(command)


def needs_server_config(template: DeploymentTemplateSpec) -> bool:
    """Whether the template's command or env reads a ``{server_config}`` file."""
    texts = [*(template.runtime.command or []), *template.runtime.env.values()]
    return placeholders.SERVER_CONFIG in placeholders.names_in(texts)


def server_config(
    *,
    template_name: str,
    template: DeploymentTemplateSpec,
    deployment: DeploymentSpec,
    model_path: str,
    adapters: Sequence[llm_server.AdapterFiles] = (),
) -> dict[str, Any]:
    """The content of the ``{server_config}`` file (llama-cpp-python's config)."""
    if template.runtime.lora not in (None, llm_server.LLAMA_CPP_PYTHON):
        raise RenderError(
            f"DeploymentTemplate/{template_name}: {{server_config}} is llama-cpp-python's "
            f"config file, and runtime.lora says {template.runtime.lora}"
        )
    return llm_server.llama_cpp_server_config(
        model_path=model_path,
        endpoint_name=deployment.endpoint_name,
        host=LOCAL_HOST,
        adapters=adapters,
    )


def render_local_command(
    *,
    template_name: str,
    template: DeploymentTemplateSpec,
    deployment_name: str,
    deployment: DeploymentSpec,
    model_path: str | None,
    runtime_bin: str | None = None,
    server_config_path: str | None = None,
    adapters: Sequence[llm_server.AdapterFiles] = (),
    extra_values: Mapping[str, str] | None = None,
) -> LocalCommand:
    """Fill the template's command for ``deployment``; RenderError names what is missing.

    ``adapters`` reach a vllm-style server as arguments; a llama-cpp-python one reads
    them from ``server_config_path`` (see :func:`server_config`). ``model_path`` is None
    for a cloud model (a gateway serves no files); ``extra_values`` gives more
    placeholders (a gateway's ``{upstream_url}``, ...).
    """
    command = template.runtime.command
    if not command:
        raise RenderError(
            f"DeploymentTemplate/{template_name}: runtime.command is empty, and the local "
            "driver runs a command on the host (runtime.image is for Kubernetes)"
        )
    values = {
        **(extra_values or {}),
        placeholders.HOST: LOCAL_HOST,
        placeholders.CONCURRENT_REQUESTS: str(deployment.deploy_config.concurrent_requests),
        placeholders.DEPLOYMENT: deployment_name,
        placeholders.ENDPOINT_NAME: deployment.endpoint_name,
    }
    if model_path is not None:
        values[placeholders.MODEL_PATH] = model_path
    if runtime_bin is not None:
        values[placeholders.RUNTIME_BIN] = runtime_bin
    if server_config_path is not None:
        values[placeholders.SERVER_CONFIG] = server_config_path
    llm_server.check_adapters_supported(
        template_name=template_name,
        lora=template.runtime.lora,
        adapters=adapters,
        where=f"Deployment/{deployment_name}",
    )
    lora_by_file = template.runtime.lora == llm_server.LLAMA_CPP_PYTHON
    if adapters and lora_by_file and not needs_server_config(template):
        raise RenderError(
            f"DeploymentTemplate/{template_name}: runtime.lora is llama-cpp-python, whose "
            "adapters are entries of its config file, and runtime.command has no "
            "--config_file {server_config}"
        )
    keep = frozenset({placeholders.PORT})
    argv = tuple(
        placeholders.fill(
            part,
            values,
            keep=keep,
            where=f"DeploymentTemplate/{template_name} runtime.command[{index}]",
        )
        for index, part in enumerate(command)
    )
    if template.runtime.lora == llm_server.VLLM:
        argv += tuple(llm_server.vllm_lora_args(adapters))
    env = {
        key: placeholders.fill(
            value, values, keep=keep, where=f"DeploymentTemplate/{template_name} runtime.env.{key}"
        )
        for key, value in template.runtime.env.items()
    }
    return LocalCommand(argv=argv, env=env, health_path=template.runtime.health_path)
