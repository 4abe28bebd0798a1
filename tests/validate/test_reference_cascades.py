"""One mistake, one diagnostic: a document that fails its own checks still exists."""

from __future__ import annotations

from reconciler.core.validation.repo import validate_sources
from reconciler.load.documents import SourceFile

MODEL_WITH_A_TYPO = """\
apiVersion: reconciler/v1
kind: Model
metadata: {name: phi}
spec:
  modality: llm
  sourse: {provider_type: hugging_face, uri: microsoft/phi}
"""

DEPLOYMENT = """\
apiVersion: reconciler/v1
kind: Deployment
metadata: {name: chat}
spec:
  model: phi
  cluster: local
  endpoint_name: chat
  deploy_config: {concurrent_requests: 1, avg_sequence_length: 10, avg_context_length: 10}
---
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: local}
spec: {driver: local}
"""


def test_a_reference_to_an_invalid_object_is_not_reported_as_dangling() -> None:
    result = validate_sources(
        [
            SourceFile("models.yaml", MODEL_WITH_A_TYPO.encode()),
            SourceFile("deployments.yaml", DEPLOYMENT.encode()),
        ]
    )
    assert [d.format() for d in result.diagnostics] == [
        "models.yaml:4:1: error: missing required field 'spec.source' (Model/phi)",
        "models.yaml:6:3: error: unknown field 'spec.sourse' (did you mean 'source'?) (Model/phi)",
    ]
