"""A Model's node cache on Kubernetes, and a Deployment's pods reading from it (pure).

Like KServe's LocalModelCache, the files are pulled once per node before any Deployment
rolls out, so a new pod starts from its node's disk instead of the hub. Here it is a
DaemonSet per Model (``model-cache-MODEL``): on every node its init container downloads
the Model's scanned commit into a host folder in the Hugging Face cache layout
(``hf download REPO --revision COMMIT --cache-dir``, or ``huggingface-cli`` where the
image's huggingface_hub predates ``hf``), and writes the ref the
spec names (``refs/main`` -> COMMIT) so an offline server resolves the repo id to that
commit; then a pause container keeps the pod Ready, which is how the driver knows the
node has the files. The pods tolerate the taints GPU nodes carry (``nvidia.com/gpu``, as
GKE and NVIDIA's operator set it, and AKS's ``sku=gpu``), as the NVIDIA device plugin's
DaemonSet does: without that, the cache would land on every node but the ones whose GPUs
the model's pods ask for. The puller image is the built-in vllm template's, which carries
``huggingface-cli`` and which the nodes pull for their vllm servers anyway. A gated or
private repo's token reaches the puller from a Secret of the same name (``HF_TOKEN``,
through ``secretKeyRef``): the DaemonSet itself never holds it.

A Deployment's pods mount that folder read-only at the same path and get
``HF_HUB_CACHE`` pointing there and ``HF_HUB_OFFLINE=1``: a server that reads the Hugging
Face cache (vllm, TGI, transformers) loads ``--model REPO`` from the node, unchanged
arguments and served model name.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping
from typing import Any

from reconciler.core.builtin_templates import BUILTIN_TEMPLATES
from reconciler.core.render.placeholders import RenderError

HOST_PATH = "/var/lib/reconciler/model-cache"
"""The folder on each node (and the mount path in pods): the Hugging Face cache layout."""
VOLUME = "model-cache"
PAUSE_IMAGE = "registry.k8s.io/pause:3.9"
MODEL_LABEL = "reconciler/model"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "reconciler"
CACHE_ANNOTATION = "reconciler/model-cache"
TOKEN_KEY = "HF_TOKEN"
GPU_TOLERATIONS: tuple[dict[str, str], ...] = (
    {"key": "nvidia.com/gpu", "operator": "Exists"},
    {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"},
)
"""The taints of GPU node pools that keep pods without GPU requests off them."""


def puller_image() -> str:
    image = BUILTIN_TEMPLATES["vllm"]["runtime"]["image"]
    assert isinstance(image, str)
    return image


def cache_name(model: str) -> str:
    """The DaemonSet's name: ``model-cache-MODEL`` (a Model name is a DNS label)."""
    name = f"model-cache-{model}"
    if len(name) > 63:
        raise RenderError(f"Model/{model}: its cache's name {name!r} is longer than 63 chars")
    return name


def repo_folder(repo_id: str) -> str:
    """The repo's folder in the Hugging Face cache: ``models--OWNER--NAME``."""
    return "models--" + repo_id.replace("/", "--")


def render_cache_daemonset(
    *,
    model: str,
    repo_id: str,
    commit: str,
    ref: str,
    namespace: str,
    hf_endpoint: str | None = None,
    token_secret: bool = False,
) -> dict[str, Any]:
    """The DaemonSet that pulls ``repo_id`` at ``commit`` onto every node (``ref``: the
    branch or tag the spec names, made to point at ``commit``); with ``token_secret`` the
    puller reads ``HF_TOKEN`` from the Secret :func:`render_token_secret` makes."""
    if len(commit) != 40:
        raise RenderError(f"Model/{model}: the cache needs the resolved commit, not {commit!r}")
    name = cache_name(model)
    labels = {MANAGED_BY_LABEL: MANAGED_BY_VALUE, MODEL_LABEL: model}
    refs = f"{HOST_PATH}/{repo_folder(repo_id)}/refs"
    script = (
        "if command -v hf >/dev/null 2>&1; then cli=hf; else cli=huggingface-cli; fi; "
        '"$cli" download "$REPO" --revision "$COMMIT" --cache-dir "$CACHE" '
        '&& mkdir -p "$REFS" && printf %s "$COMMIT" > "$REFS/$REF"'
    )
    env: list[dict[str, Any]] = [
        {"name": "REPO", "value": repo_id},
        {"name": "COMMIT", "value": commit},
        {"name": "REF", "value": ref if ref != commit else "main"},
        {"name": "CACHE", "value": HOST_PATH},
        {"name": "REFS", "value": refs},
    ]
    if hf_endpoint:
        env.append({"name": "HF_ENDPOINT", "value": hf_endpoint})
    if token_secret:
        key_ref = {"name": name, "key": TOKEN_KEY}
        env.append({"name": TOKEN_KEY, "valueFrom": {"secretKeyRef": key_ref}})
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": {CACHE_ANNOTATION: f"{repo_id}@{commit}"},
        },
        "spec": {
            "selector": {"matchLabels": {MODEL_LABEL: model}},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {CACHE_ANNOTATION: f"{repo_id}@{commit}"},
                },
                "spec": {
                    "initContainers": [
                        {
                            "name": "pull",
                            "image": puller_image(),
                            "command": ["/bin/sh", "-c", script],
                            "env": env,
                            "volumeMounts": [{"name": VOLUME, "mountPath": HOST_PATH}],
                        }
                    ],
                    "containers": [
                        {
                            "name": "hold",
                            "image": PAUSE_IMAGE,
                            "resources": {"requests": {"cpu": "1m", "memory": "8Mi"}},
                        }
                    ],
                    "volumes": [
                        {
                            "name": VOLUME,
                            "hostPath": {"path": HOST_PATH, "type": "DirectoryOrCreate"},
                        }
                    ],
                    "tolerations": [dict(item) for item in GPU_TOLERATIONS],
                },
            },
        },
    }


def render_token_secret(*, model: str, namespace: str, token: str) -> dict[str, Any]:
    """The Secret holding a gated repo's token for the cache's puller (same name as its
    DaemonSet, removed with it)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": cache_name(model),
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, MODEL_LABEL: model},
        },
        "data": {TOKEN_KEY: base64.b64encode(token.encode()).decode("ascii")},
    }


def mount_cache(deployment: Mapping[str, Any]) -> dict[str, Any]:
    """``deployment`` (a rendered apps/v1 Deployment) with its pods reading the node cache."""
    found = copy.deepcopy(dict(deployment))
    pod = found["spec"]["template"]["spec"]
    pod.setdefault("volumes", []).append(
        {"name": VOLUME, "hostPath": {"path": HOST_PATH, "type": "Directory"}}
    )
    for container in pod["containers"]:
        container.setdefault("volumeMounts", []).append(
            {"name": VOLUME, "mountPath": HOST_PATH, "readOnly": True}
        )
        env = [e for e in container.get("env") or [] if e["name"] not in _CACHE_ENV]
        env += [{"name": key, "value": value} for key, value in sorted(_CACHE_ENV.items())]
        container["env"] = env
    return found


_CACHE_ENV = {"HF_HUB_CACHE": HOST_PATH, "HF_HUB_OFFLINE": "1"}
