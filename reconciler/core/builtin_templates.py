"""Deployment templates that ship with the daemon, usable by name without a spec.

A Deployment's ``template`` names a DeploymentTemplate of the repo or one of these.
Their fields follow the DeploymentTemplate kind; drivers render them like any other.
The local commands serve the model under the Deployment's ``endpoint_name`` (what
``GET /v1/models`` lists and clients send as ``model``). Neither server refuses another
``model`` value: infinity-emb and llama-cpp-python answer an unknown name with the base
model.

``llama-cpp`` runs llama-cpp-python's OpenAI-compatible server (``/v1/chat/completions``,
``/v1/completions``) on a GGUF file, from its config file: the deploy step writes it with
the base model under ``endpoint_name`` and one entry per LoRA adapter (see
reconciler.core.render.llm_server); the port and host come through ``PORT``/``HOST``.
``vllm`` takes adapters as ``--lora-modules`` arguments.

``cloud-gateway`` serves a cloud Model on a Cluster: an OpenAI-compatible gateway
(:mod:`reconciler.gateway`, run by the daemon's own interpreter) that forwards to the
provider with the key the daemon hands it in its environment. It runs on local
Clusters; it has no image, so no kubernetes Cluster can run it yet.
"""

from __future__ import annotations

from typing import Any

BUILTIN_TEMPLATES: dict[str, dict[str, Any]] = {
    "vllm": {
        "modality": "llm",
        "runtime": {
            "image": "vllm/vllm-openai:v0.6.3",
            "args": [
                "--model",
                "{model_path}",
                "--port",
                "{port}",
                "--max-num-seqs",
                "{concurrent_requests}",
            ],
            "command": None,
            "port": 8000,
            "health_path": "/health",
            "lora": "vllm",
            "metrics": "vllm",
        },
        "resources": {"gpus_per_worker": 1, "cpu": "8", "memory": "32Gi"},
        "defaults": {},
    },
    "llama-cpp": {
        "modality": "llm",
        "runtime": {
            "image": "ghcr.io/ggerganov/llama.cpp:server",
            "args": [
                "-m",
                "{model_path}",
                "--port",
                "{port}",
                "--parallel",
                "{concurrent_requests}",
                "--metrics",
            ],
            "command": [
                "{runtime_bin}/python",
                "-m",
                "llama_cpp.server",
                "--config_file",
                "{server_config}",
            ],
            "port": 8080,
            "health_path": "/v1/models",
            "env": {"HOST": "{host}", "PORT": "{port}"},
            "lora": "llama-cpp-python",
            "metrics": "llama.cpp",
        },
        "resources": {"gpus_per_worker": 0, "cpu": "4", "memory": "8Gi"},
        "defaults": {},
    },
    "text-embeddings": {
        "modality": "embedding",
        "runtime": {
            "image": "ghcr.io/huggingface/text-embeddings-inference:cpu-1.5",
            "args": ["--model-id", "{model_path}", "--port", "{port}"],
            "command": [
                "{runtime_bin}/infinity_emb",
                "v2",
                "--model-id",
                "{model_path}",
                "--served-model-name",
                "{endpoint_name}",
                "--host",
                "{host}",
                "--port",
                "{port}",
                "--url-prefix",
                "/v1",
                "--no-model-warmup",
            ],
            "port": 8080,
            "health_path": "/health",
            "env": {"DO_NOT_TRACK": "1"},
        },
        "resources": {"gpus_per_worker": 0, "cpu": "2", "memory": "4Gi"},
        "defaults": {},
    },
    "cloud-gateway": {
        "modality": "llm",
        "runtime": {
            "image": None,
            "args": [],
            "command": [
                "{daemon_python}",
                "-m",
                "reconciler.gateway",
                "--host",
                "{host}",
                "--port",
                "{port}",
                "--upstream",
                "{upstream_url}",
                "--provider",
                "{provider}",
                "--provider-model",
                "{provider_model}",
                "--served-model-name",
                "{endpoint_name}",
                "--max-concurrent",
                "{concurrent_requests}",
            ],
            "port": 8080,
            "health_path": "/healthz",
        },
        "resources": {"gpus_per_worker": 0, "cpu": "1", "memory": "256Mi"},
        "defaults": {},
    },
}
