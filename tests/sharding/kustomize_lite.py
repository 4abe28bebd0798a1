"""The part of kustomize deploy/kubernetes/ uses, for machines without kubectl.

``resources`` (files, in order, several documents each) and ``namespace`` (set on every
namespaced object and on ServiceAccount subjects of role bindings), nothing else: a
kustomization using more is refused, so this renderer never silently differs from
kustomize. Where ``kubectl kustomize`` exists, a test renders both ways and compares.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

CLUSTER_SCOPED = frozenset({"Namespace", "ClusterRole", "ClusterRoleBinding"})
KNOWN = frozenset({"apiVersion", "kind", "resources", "namespace"})


def render(folder: Path) -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = sorted(set(kustomization) - KNOWN)
    if unknown:
        raise ValueError(f"{folder}/kustomization.yaml uses {unknown}: not rendered here")
    namespace = kustomization.get("namespace")
    objects: list[dict[str, Any]] = []
    for name in kustomization.get("resources") or []:
        for document in yaml.safe_load_all((folder / name).read_text()):
            if document:
                objects.append(_placed(document, namespace))
    return objects


def _placed(obj: dict[str, Any], namespace: str | None) -> dict[str, Any]:
    if namespace is None:
        return obj
    if obj["kind"] not in CLUSTER_SCOPED:
        obj["metadata"]["namespace"] = namespace
    if obj["kind"] in {"RoleBinding", "ClusterRoleBinding"}:
        for subject in obj.get("subjects") or []:
            if subject.get("kind") == "ServiceAccount":
                subject["namespace"] = namespace
    return obj
