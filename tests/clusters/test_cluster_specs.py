"""The daemon's Cluster specs by name: a view over the applied objects, found by key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.core.diff import ObjectState
from reconciler.daemon.endpoint_facts import DaemonEndpointFacts


def _state(kind: str, name: str, spec: dict[str, Any]) -> ObjectState:
    document = {"apiVersion": "reconciler/v1", "kind": kind, "metadata": {"name": name}}
    return ObjectState(kind=kind, name=name, document={**document, "spec": spec}, spec_hash=name)


def test_cluster_specs_are_found_by_name_and_list_only_clusters(tmp_path: Path) -> None:
    desired = {
        state.key: state
        for state in [
            _state("Cluster", "gpu", {"driver": "kubernetes", "namespace": "bench"}),
            _state("Cluster", "local", {"driver": "local"}),
            _state("Deployment", "gpu", {"model": "smol", "cluster": "gpu"}),
            *(_state("Deployment", f"chat-{i}", {"cluster": "gpu"}) for i in range(50)),
        ]
    }
    facts = DaemonEndpointFacts(
        desired=lambda: desired, status_of=lambda key: None, model_cache=tmp_path
    )

    clusters = facts.clusters()

    assert clusters["gpu"] == {"driver": "kubernetes", "namespace": "bench"}
    assert clusters.get("local") == {"driver": "local"}
    assert clusters.get("chat-1") is None  # a Deployment's name is no Cluster
    with pytest.raises(KeyError):
        clusters["missing"]
    assert sorted(clusters) == ["gpu", "local"]
    assert len(clusters) == 2
    desired["Cluster/later"] = _state("Cluster", "later", {"driver": "local"})
    assert facts.clusters()["later"] == {"driver": "local"}
