"""A Model's ``cache``: what validate refuses, and the chain it adds.

Its Clusters must exist; only hugging_face sources are cached, gated ones included (on a
kubernetes Cluster the nodes get the token in a Secret). The Model's chain ends with
cache_model while the cache names Clusters, and once more when it is dropped (to empty
it); its delete chain removes the cache first.
"""

from __future__ import annotations

import pytest

from reconciler.core.chain_builders import ChainRequest, build_chain
from reconciler.core.diff import ObjectState
from reconciler.core.validation.repo import validate_sources
from reconciler.load.documents import SourceFile
from reconciler.specs.model import ModelSpec

CLUSTERS = """\
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: local}
spec: {driver: local}
---
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: gpus}
spec:
  driver: kubernetes
  kubeconfig: {secret: gpus-kubeconfig}
---
apiVersion: reconciler/v1
kind: Credential
metadata: {name: hf}
spec: {provider: hugging_face, secret: hf-token}
"""


def _model(source: str, clusters: str) -> str:
    return f"""\
apiVersion: reconciler/v1
kind: Model
metadata: {{name: phi}}
spec:
  modality: llm
  source: {source}
  cache: {{clusters: {clusters}}}
"""


def _check(model: str) -> list[str]:
    sources = [
        SourceFile("repo.yaml", CLUSTERS.encode()),
        SourceFile("models.yaml", model.encode()),
    ]
    return [d.format() for d in validate_sources(sources).diagnostics]


HF = "{provider_type: hugging_face, uri: acme/phi}"
GATED = "{provider_type: hugging_face, uri: acme/phi, credential: hf}"


def test_a_hub_model_cached_on_both_kinds_of_cluster_passes() -> None:
    assert _check(_model(HF, "[local, gpus]")) == []
    assert _check(_model(GATED, "[local]")) == []


def test_an_unknown_cluster_is_named_with_a_suggestion() -> None:
    [problem] = _check(_model(HF, "[gpu]"))
    assert problem.startswith("models.yaml:7:22: error: Cluster 'gpu' does not exist")
    assert "did you mean 'gpus'" in problem


def test_only_hub_sources_are_cached() -> None:
    [problem] = _check(_model("{provider_type: disk, uri: /srv/phi}", "[local]"))
    assert "cache pre-pulls hugging_face sources; this Model's source is disk" in problem


def test_a_gated_repo_is_cached_on_both_kinds_of_cluster() -> None:
    assert _check(_model(GATED, "[local, gpus]")) == []


def test_a_cluster_named_twice_is_a_schema_error() -> None:
    with pytest.raises(ValueError, match="names local more than once"):
        ModelSpec.model_validate(
            {
                "modality": "llm",
                "source": {"provider_type": "hugging_face", "uri": "acme/phi"},
                "cache": {"clusters": ["local", "local"]},
            }
        )


def _state(cache: object) -> ObjectState:
    spec = {"modality": "llm", "source": {"provider_type": "hugging_face", "uri": "acme/phi"}}
    if cache is not None:
        spec["cache"] = cache
    return ObjectState(
        kind="Model", name="phi", document={"kind": "Model", "spec": spec}, spec_hash="h"
    )


def _steps(action: str, cache: object, changed: frozenset[str] = frozenset()) -> list[str]:
    built = build_chain(ChainRequest(action, _state(cache), "r1", changed=changed))  # type: ignore[arg-type]
    assert built.chain is not None
    return [node.type for node in built.chain.steps]


def test_the_model_chain_fills_drops_and_removes_the_cache() -> None:
    cache = {"clusters": ["gpus"]}
    assert _steps("create", cache) == ["add_model", "scan_model", "cache_model"]
    assert _steps("create", None) == ["add_model", "scan_model"]
    dropped = _steps("update", None, frozenset({"spec.cache"}))
    assert dropped == ["add_model", "scan_model", "cache_model"]
    assert _steps("delete", cache) == ["uncache_model", "remove_model"]
    assert _steps("delete", None) == ["remove_model"]
