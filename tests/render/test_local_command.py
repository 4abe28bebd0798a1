"""Rendering a template's command line for the local driver."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.core.builtin_templates import BUILTIN_TEMPLATES
from reconciler.core.render.llm_server import AdapterFiles
from reconciler.core.render.local_command import (
    needs_runtime,
    needs_server_config,
    render_local_command,
    server_config,
)
from reconciler.core.render.placeholders import RenderError
from reconciler.specs.deployment import DeploymentSpec
from reconciler.specs.template import DeploymentTemplateSpec

DEPLOYMENT = DeploymentSpec.model_validate(
    {
        "model": "minilm",
        "cluster": "local",
        "template": "text-embeddings",
        "endpoint_name": "embeddings",
        "deploy_config": {
            "concurrent_requests": 4,
            "avg_sequence_length": 1,
            "avg_context_length": 128,
        },
    }
)


def template(runtime: dict[str, Any]) -> DeploymentTemplateSpec:
    return DeploymentTemplateSpec.model_validate({"modality": "llm", "runtime": runtime})


def test_builtin_text_embeddings_runs_infinity_on_loopback_from_its_runtime() -> None:
    spec = DeploymentTemplateSpec.model_validate(BUILTIN_TEMPLATES["text-embeddings"])
    assert needs_runtime(spec)
    rendered = render_local_command(
        template_name="text-embeddings",
        template=spec,
        deployment_name="minilm-embeddings",
        deployment=DEPLOYMENT,
        model_path="/models/minilm",
        runtime_bin="/state/runtimes/text-embeddings/bin",
    )
    assert rendered.argv == (
        "/state/runtimes/text-embeddings/bin/infinity_emb",
        "v2",
        "--model-id",
        "/models/minilm",
        "--served-model-name",
        "embeddings",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--url-prefix",
        "/v1",
        "--no-model-warmup",
    )
    assert rendered.env == {"DO_NOT_TRACK": "1"}
    assert rendered.health_path == "/health"


def test_builtin_llama_cpp_reads_its_config_file_and_binds_loopback_by_env() -> None:
    spec = DeploymentTemplateSpec.model_validate(BUILTIN_TEMPLATES["llama-cpp"])
    assert needs_server_config(spec)
    rendered = render_local_command(
        template_name="llama-cpp",
        template=spec,
        deployment_name="chat",
        deployment=DEPLOYMENT,
        model_path="/models/smol.gguf",
        runtime_bin="/rt/bin",
        server_config_path="/state/server-configs/chat-0123.json",
    )
    assert rendered.argv == (
        "/rt/bin/python",
        "-m",
        "llama_cpp.server",
        "--config_file",
        "/state/server-configs/chat-0123.json",
    )
    assert rendered.env == {"HOST": "127.0.0.1", "PORT": "{port}"}
    assert rendered.health_path == "/v1/models"


def test_llama_cpp_config_serves_the_base_under_endpoint_name_and_each_adapter() -> None:
    spec = DeploymentTemplateSpec.model_validate(BUILTIN_TEMPLATES["llama-cpp"])
    adapters = (AdapterFiles("sql", "/a/sql.gguf"), AdapterFiles("poet", "/a/poet.gguf"))
    config = server_config(
        template_name="llama-cpp",
        template=spec,
        deployment=DEPLOYMENT,
        model_path="/models/smol.gguf",
        adapters=adapters,
    )
    assert config == {
        "host": "127.0.0.1",
        "models": [
            {"model": "/models/smol.gguf", "model_alias": "embeddings"},
            {"model": "/models/smol.gguf", "model_alias": "sql", "lora_path": "/a/sql.gguf"},
            {"model": "/models/smol.gguf", "model_alias": "poet", "lora_path": "/a/poet.gguf"},
        ],
    }


def test_vllm_style_command_gets_adapters_as_lora_modules() -> None:
    spec = template({"command": ["vllm", "serve", "{model_path}"], "lora": "vllm"})
    rendered = render_local_command(
        template_name="mine",
        template=spec,
        deployment_name="d1",
        deployment=DEPLOYMENT,
        model_path="/m",
        adapters=(AdapterFiles("sql", "/a/sql"),),
    )
    assert rendered.argv == (
        "vllm",
        "serve",
        "/m",
        "--enable-lora",
        "--max-loras",
        "1",
        "--lora-modules",
        "sql=/a/sql",
    )


def test_adapters_on_a_template_without_lora_are_refused() -> None:
    spec = template({"command": ["serve", "{model_path}"]})
    with pytest.raises(RenderError, match=r"takes no LoRA adapters"):
        render_local_command(
            template_name="mine",
            template=spec,
            deployment_name="d1",
            deployment=DEPLOYMENT,
            model_path="/m",
            adapters=(AdapterFiles("sql", "/a/sql"),),
        )


def test_llama_cpp_python_adapters_need_the_config_file_in_the_command() -> None:
    spec = template({"command": ["serve", "{model_path}"], "lora": "llama-cpp-python"})
    with pytest.raises(RenderError, match=r"has no --config_file \{server_config\}"):
        render_local_command(
            template_name="mine",
            template=spec,
            deployment_name="d1",
            deployment=DEPLOYMENT,
            model_path="/m",
            adapters=(AdapterFiles("sql", "/a/sql"),),
        )


def test_user_command_fills_every_placeholder_and_keeps_json_braces() -> None:
    spec = template(
        {
            "command": ["serve", "{model_path}", "--slots={concurrent_requests}", '{"a": 1}'],
            "env": {"NAME": "{deployment}", "MODEL": "{endpoint_name}", "BIND": "{host}:{port}"},
            "health_path": "/ready",
        }
    )
    assert not needs_runtime(spec)
    rendered = render_local_command(
        template_name="mine",
        template=spec,
        deployment_name="d1",
        deployment=DEPLOYMENT,
        model_path="/m",
    )
    assert rendered.argv == ("serve", "/m", "--slots=4", '{"a": 1}')
    assert rendered.env == {"NAME": "d1", "MODEL": "embeddings", "BIND": "127.0.0.1:{port}"}
    assert rendered.health_path == "/ready"


def test_unknown_placeholder_names_the_field() -> None:
    spec = template({"command": ["serve", "--gpu={gpu_count}"]})
    with pytest.raises(
        RenderError, match=r"DeploymentTemplate/mine runtime.command\[1\]: unknown "
    ):
        render_local_command(
            template_name="mine",
            template=spec,
            deployment_name="d1",
            deployment=DEPLOYMENT,
            model_path="/m",
        )


def test_runtime_bin_without_a_runtime_is_an_error() -> None:
    spec = template({"command": ["{runtime_bin}/python", "-m", "server"]})
    with pytest.raises(RenderError, match=r"\{runtime_bin\} has no value"):
        render_local_command(
            template_name="mine",
            template=spec,
            deployment_name="d1",
            deployment=DEPLOYMENT,
            model_path="/m",
        )


def test_image_only_template_cannot_run_locally() -> None:
    spec = DeploymentTemplateSpec.model_validate(BUILTIN_TEMPLATES["vllm"])
    with pytest.raises(RenderError, match=r"runtime\.command is empty"):
        render_local_command(
            template_name="vllm",
            template=spec,
            deployment_name="d1",
            deployment=DEPLOYMENT,
            model_path="/m",
        )
