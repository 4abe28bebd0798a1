"""Generate a large, valid spec repo for benchmarks: 10,000 specs of every kind, 1,000 files.

Deterministic (seeded), a realistic mix (many Models and Deployments, fewer Clusters,
Credentials, Projects and templates, a good share of Workflows), comments and flow
mappings as people write them, and referentially valid, so ``reconciler validate`` on the
result reports nothing. Usage: ``python bench/gen_specs.py OUT_DIR [--specs N --files M]``.
"""

from __future__ import annotations

import argparse
import random
import shutil
from collections.abc import Callable
from pathlib import Path

# Share of each kind among the specs, in dependency order.
MIX: tuple[tuple[str, float], ...] = (
    ("Credential", 0.03),
    ("Project", 0.01),
    ("Cluster", 0.02),
    ("DeploymentTemplate", 0.02),
    ("Model", 0.30),
    ("Deployment", 0.40),
    ("Workflow", 0.22),
)
FOLDERS = {
    "Credential": "platform/credentials",
    "Project": "platform/projects",
    "Cluster": "platform/clusters",
    "DeploymentTemplate": "platform/templates",
    "Model": "zoo",
    "Deployment": "serving",
    "Workflow": "workflows",
}
PROVIDERS = ("openai", "anthropic", "hugging_face", "azure")
MODALITIES = ("llm", "llm", "llm", "embedding", "reranker")


def _credential(i: int, rng: random.Random, names: dict[str, list[str]]) -> str:
    provider = PROVIDERS[i % len(PROVIDERS)]
    return f"""apiVersion: reconciler/v1
kind: Credential
metadata:
  name: cred-{i}
  labels: {{team: team-{i % 7}}}
spec:
  provider: {provider}
  secret: {provider.replace("_", "-")}-key-{i}   # a name in the host's secret store
"""


def _project(i: int, rng: random.Random, names: dict[str, list[str]]) -> str:
    return f"""apiVersion: reconciler/v1
kind: Project
metadata:
  name: project-{i}
spec:
  description: Endpoints of team {i}
  permissions:
    - {{role: admin, access: full}}
    - {{role: data-scientist, access: [execute, edit]}}
    - {{role: viewer, access: view}}
"""


def _cluster(i: int, rng: random.Random, names: dict[str, list[str]]) -> str:
    if i % 5 == 0:
        return f"""apiVersion: reconciler/v1
kind: Cluster
metadata:
  name: cluster-{i}
spec:
  driver: local
"""
    return f"""apiVersion: reconciler/v1
kind: Cluster
metadata:
  name: cluster-{i}
  labels:
    region: region-{i % 4}
spec:
  display_name: GPU cluster {i}
  driver: kubernetes
  ingress_url: https://cluster-{i}.example.internal:443
  namespace: models
  kubeconfig:
    secret: cluster-{i}-kubeconfig
    context: ctx-{i}
  gpu:
    type: nvidia-a100-80gb
    count: {rng.choice((8, 16, 32))}
"""


def _template(i: int, rng: random.Random, names: dict[str, list[str]]) -> str:
    return f"""apiVersion: reconciler/v1
kind: DeploymentTemplate
metadata:
  name: template-{i}
spec:
  modality: llm
  runtime:
    image: vllm/vllm-openai:v0.6.{i % 10}
    args: ["--model", "{{model_path}}", "--port", "{{port}}",
           "--max-num-seqs", "{{concurrent_requests}}"]
    command: null
    port: 8000
    health_path: /health
  resources:
    gpus_per_worker: {1 + i % 2}
    cpu: "8"
    memory: 32Gi
  defaults:
    ttft: [50, {500 + 10 * (i % 50)}]
    e2e_latency: [1, {10 + i % 20}]
"""


def _model(i: int, rng: random.Random, names: dict[str, list[str]]) -> str:
    modality = MODALITIES[i % len(MODALITIES)]
    kind = i % 4
    if kind in (0, 1):
        credential = f"\n    credential: {rng.choice(names['Credential'])}" if i % 3 == 0 else ""
        source = f"""  source:
    provider_type: hugging_face
    uri: org-{i % 97}/model-{i}-instruct
    revision: main{credential}"""
    elif kind == 2:
        source = f"""  source:
    provider_type: cloud_model
    provider: openai
    uri: openai/gpt-{i}"""
    else:
        source = f"""  source:
    provider_type: url
    uri: https://models.example.internal/m-{i}.gguf
    sha256: {rng.getrandbits(256):064x}"""
    return f"""apiVersion: reconciler/v1
kind: Model
metadata:
  name: model-{i}
  labels: {{family: fam-{i % 13}}}
spec:
  display_name: Model number {i}
  modality: {modality}
{source}
  author: author-{i % 31}
  tags:
    - {{name: tag-{i % 5}, color: "#66d1DF"}}
  security_scan: {"required" if i % 10 else "skip"}
  parameters: "{1 + i % 70}B"
  dtype: bfloat16
"""


def _deployment(i: int, rng: random.Random, names: dict[str, list[str]]) -> str:
    model_index = rng.randrange(len(names["Model"]))
    model = names["Model"][model_index]
    # models with index % 4 == 2 are cloud models (see _model): no cluster needed
    cloud = model_index % 4 == 2
    placement = (
        f"  credential: {rng.choice(names['Credential'])}\n"
        if cloud
        else f"  cluster: {rng.choice(names['Cluster'])}\n"
        f"  template: {rng.choice(names['DeploymentTemplate'])}\n"
    )
    ttft_max = rng.choice((500, 1000, 2000))
    e2e_max = rng.choice((10, 30, 60))
    seq = rng.choice((100, 256, 512))
    floor = max(1, int(seq / (e2e_max - ttft_max / 1000)) + 1)
    return f"""apiVersion: reconciler/v1
kind: Deployment
metadata:
  name: deploy-{i}
  annotations:
    reconciler/prune: {"disabled" if i % 17 == 0 else "enabled"}
spec:
  project: {rng.choice(names["Project"])}
  model: {model}
{placement}  endpoint_name: endpoint {i}
  strategy: {"green" if i % 3 else "recreate"}
  deploy_config:
    concurrent_requests: {rng.choice((1, 4, 10, 32))}
    avg_sequence_length: {seq}          # tokens generated per request
    avg_context_length: {rng.choice((128, 1024, 4096))}
    per_session_tokens_per_sec: [{floor}, {floor * 4}]
    ttft: [50, {ttft_max}]               # milliseconds
    e2e_latency: [1, {e2e_max}]          # seconds
  workers: {"null" if i % 2 else 1 + i % 4}
"""


def _workflow(i: int, rng: random.Random, names: dict[str, list[str]]) -> str:
    deployment = rng.choice(names["Deployment"])
    cluster = rng.choice(names["Cluster"])
    index = names["Cluster"].index(cluster)
    if index % 5 == 0 and len(names["Cluster"]) > 1:
        # a local Cluster (see _cluster) runs commands, not images: the next one instead
        cluster = names["Cluster"][index + 1 if index + 1 < len(names["Cluster"]) else index - 1]
    return f"""apiVersion: reconciler/v1
kind: Workflow
metadata:
  name: workflow-{i}
spec:
  description: Evaluate {deployment} and report.
  use_case: MODEL_EVALUATION
  priority: {("low", "medium", "high", "critical")[i % 4]}
  tags: [machine-learning, evaluation]
  trigger: {"on_change" if i % 2 else "manual"}
  config:
    timeout: 2h
    retries: {i % 4}
    retry_delay: 30s
    schedule:
      cron: "0 {i % 24} * * {i % 7}"
      skip_on_failure: true
    notifications:
      webhook: https://hooks.example.internal/reconciler
      events: [start, complete, fail]
  user_params:
    endpoint: {deployment}
    dataset: s3://datasets/eval/set-{i}.jsonl
  workflows:
    provision:
      nodes:
        - id: wait_endpoint
          type: wait_ready
          user_inputs:
            deployment: ${{{{ endpoint }}}}
            timeout: 10m
        - id: eval_job
          type: k8s_job
          previous_node_inputs:
            wait_endpoint: endpoint_url
          user_inputs:
            cluster: {cluster}
            image: ghcr.io/example/evaluator:1.{i % 9}
            args: ["--endpoint", "${{{{ wait_endpoint.endpoint_url }}}}",
                   "--data", "${{{{ dataset }}}}"]
            gpus: 1
            node_timeout: 45m
        - id: report
          type: http_request
          previous_node_inputs:
            eval_job: outputs
          user_inputs:
            method: POST
            url: https://hooks.example.internal/eval-report
            headers: {{Content-Type: application/json}}
      edges:
        - {{source: wait_endpoint, dest: eval_job}}
        - {{source: eval_job, dest: report}}
"""


WRITERS: dict[str, Callable[[int, random.Random, dict[str, list[str]]], str]] = {
    "Credential": _credential,
    "Project": _project,
    "Cluster": _cluster,
    "DeploymentTemplate": _template,
    "Model": _model,
    "Deployment": _deployment,
    "Workflow": _workflow,
}
PREFIX = {
    "Credential": "cred",
    "Project": "project",
    "Cluster": "cluster",
    "DeploymentTemplate": "template",
    "Model": "model",
    "Deployment": "deploy",
    "Workflow": "workflow",
}


def generate(out: Path, *, specs: int = 10_000, files: int = 1_000, seed: int = 7) -> int:
    """Write the repo under ``out`` (replacing it); return the number of bytes written."""
    rng = random.Random(seed)
    counts = {kind: max(1, round(specs * share)) for kind, share in MIX}
    counts["Workflow"] += specs - sum(counts.values())
    names = {kind: [f"{PREFIX[kind]}-{i}" for i in range(n)] for kind, n in counts.items()}
    per_file = max(1, specs // files)
    if out.exists():
        shutil.rmtree(out)
    written = 0
    for kind, _ in MIX:
        documents = [WRITERS[kind](i, rng, names) for i in range(counts[kind])]
        folder = out / FOLDERS[kind]
        folder.mkdir(parents=True, exist_ok=True)
        for start in range(0, len(documents), per_file):
            text = f"# {kind} specs {start}-{start + per_file - 1}\n" + "---\n".join(
                documents[start : start + per_file]
            )
            path = folder / f"{PREFIX[kind]}s-{start // per_file:04d}.yaml"
            path.write_text(text)
            written += len(text)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--specs", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    size = generate(args.out, specs=args.specs, files=args.files, seed=args.seed)
    print(f"wrote {args.specs} specs, {size / 1e6:.1f} MB, to {args.out}")


if __name__ == "__main__":
    main()
