"""A backlog to test beside: Models that cannot become Ready and Deployments waiting on them.

Each Model reads a disk path that does not exist on this host, so its chain stalls
(DiskSourceUnreadable); each Deployment uses one of them on the local Cluster and so waits
(WaitingForModel). One object's work must not depend on these: tests put them in the repo
next to what they measure.
"""

from __future__ import annotations

MODEL = """\
apiVersion: reconciler/v1
kind: Model
metadata: {{name: {name}}}
spec:
  modality: embedding
  source: {{provider_type: disk, uri: {uri}}}
  security_scan: skip
"""

DEPLOYMENT = """\
apiVersion: reconciler/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  model: {model}
  cluster: local
  template: {template}
  endpoint_name: {name}
  deploy_config: {{concurrent_requests: 1, avg_sequence_length: 1, avg_context_length: 16}}
  workers: 1
"""

PER_FILE = 100


def model(name: str, *, uri: str | None = None) -> str:
    """A disk Model; by default at a path that does not exist (its chain stalls)."""
    return MODEL.format(name=name, uri=uri or f"/nonexistent/backlog/{name}")


def deployment(name: str, *, model: str, template: str = "text-embeddings") -> str:
    """A Deployment of ``model`` on the local Cluster, one worker."""
    return DEPLOYMENT.format(name=name, model=model, template=template)


def backlog_files(*, models: int, deployments: int, prefix: str = "backlog") -> dict[str, str]:
    """``models`` stalling Models and ``deployments`` Deployments spread over them, in files
    of up to 100 documents (the Cluster ``local`` must be in the repo too)."""
    documents: list[tuple[str, str]] = []
    for index in range(models):
        documents.append(("models", model(f"{prefix}-m{index}")))
    for index in range(deployments):
        uses = f"{prefix}-m{index % max(models, 1)}"
        documents.append(("deployments", deployment(f"{prefix}-d{index}", model=uses)))
    files: dict[str, str] = {}
    for start in range(0, len(documents), PER_FILE):
        chunk = documents[start : start + PER_FILE]
        folder = chunk[0][0]
        files[f"{prefix}/{folder}-{start // PER_FILE}.yaml"] = "---\n".join(d for _, d in chunk)
    return files
