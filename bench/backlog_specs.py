"""A spec repo with a backlog: Models that cannot become Ready and Deployments waiting on them.

``generate(out, total=10_000, stalled=2_500, waiting=5_000)`` writes ``stalled`` Models
reading disk paths that do not exist (their chains stall, DiskSourceUnreadable) and
``waiting`` Deployments spread over them on the local Cluster (parked, WaitingForModel),
then fills the repo up to ``total`` specs with objects that settle Ready (Projects,
DeploymentTemplates, Credentials naming one secret the bench writes). With ``stalled`` and
``waiting`` at 0 the repo is the same size with nothing waiting: the two compare what one
change costs beside a backlog and without one. Usage as a module (bench_push_to_status.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path

SECRET = "bench-key"
PER_FILE = 10


def _stalled_model(i: int) -> str:
    return f"""apiVersion: reconciler/v1
kind: Model
metadata: {{name: stuck-{i}}}
spec:
  modality: embedding
  source: {{provider_type: disk, uri: /nonexistent/bench/stuck-{i}}}
  security_scan: skip
"""


def _waiting_deployment(i: int, models: int) -> str:
    return f"""apiVersion: reconciler/v1
kind: Deployment
metadata: {{name: waits-{i}}}
spec:
  model: stuck-{i % models}
  cluster: local
  template: text-embeddings
  endpoint_name: waits-{i}
  deploy_config: {{concurrent_requests: 1, avg_sequence_length: 1, avg_context_length: 16}}
  workers: 1
"""


def _project(i: int) -> str:
    return f"""apiVersion: reconciler/v1
kind: Project
metadata: {{name: team-{i}}}
spec: {{description: "team {i}"}}
"""


def _template(i: int) -> str:
    return f"""apiVersion: reconciler/v1
kind: DeploymentTemplate
metadata: {{name: runtime-{i}}}
spec:
  modality: llm
  runtime: {{image: "vllm/vllm-openai:v0.6.{i % 10}", port: 8000}}
"""


def _credential(i: int) -> str:
    return f"""apiVersion: reconciler/v1
kind: Credential
metadata: {{name: key-{i}}}
spec: {{provider: openai, secret: {SECRET}}}
"""


CLUSTER = """apiVersion: reconciler/v1
kind: Cluster
metadata: {name: local}
spec: {driver: local}
"""


def generate(out: Path, *, total: int = 10_000, stalled: int = 2_500, waiting: int = 5_000) -> None:
    """Write the repo under ``out`` (replacing it)."""
    if out.exists():
        shutil.rmtree(out)
    documents: dict[str, list[str]] = {
        "backlog/models": [_stalled_model(i) for i in range(stalled)],
        "backlog/deployments": [_waiting_deployment(i, max(stalled, 1)) for i in range(waiting)],
    }
    fillers = (_project, _template, _credential)
    settled = max(total - stalled - waiting - 1, 0)
    documents["settled"] = [fillers[i % 3](i) for i in range(settled)]
    documents["platform"] = [CLUSTER]
    for folder, items in documents.items():
        (out / folder).mkdir(parents=True, exist_ok=True)
        for start in range(0, len(items), PER_FILE):
            chunk = items[start : start + PER_FILE]
            (out / folder / f"specs-{start // PER_FILE:05d}.yaml").write_text("---\n".join(chunk))
