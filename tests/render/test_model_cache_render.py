"""A Model's node cache as rendered: the DaemonSet and the Deployment reading from it.

Both are checked against the real Kubernetes schemas (kubernetes-validate). The pull
script the DaemonSet's init container runs is then run here, as a node would run it,
against the loopback hub double (the ``hf`` of this virtualenv, ``HF_ENDPOINT`` the
double): it leaves the commit in the Hugging Face cache layout, with the spec's ref
pointing at it, so a server told ``--model REPO`` with ``HF_HUB_OFFLINE=1`` and the
Deployment's ``HF_HUB_CACHE`` finds exactly that commit without the network.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import kubernetes_validate
import pytest

from reconciler.core.builtin_templates import BUILTIN_TEMPLATES
from reconciler.core.render import cache
from reconciler.core.render import kubernetes as render_k8s
from reconciler.specs.deployment import DeploymentSpec
from reconciler.specs.template import DeploymentTemplateSpec
from tests.models import model_files as mf
from tests.models.servers import Hub, HubRepo, serve

COMMIT = "c0ffee" + "1" * 34
WEIGHTS = mf.safetensors({"embed": ("BF16", [16, 8])})
CONFIG = b'{"model_type": "llama"}'


def _daemonset(**extra: str) -> dict[str, object]:
    return cache.render_cache_daemonset(
        model="phi",
        repo_id="acme/tiny",
        commit=COMMIT,
        ref="main",
        namespace="models",
        **extra,
    )


def test_the_cache_daemonset_is_a_valid_apps_v1_daemonset() -> None:
    daemonset = _daemonset(hf_endpoint="http://mirror.internal")
    kubernetes_validate.validate(daemonset, "1.31", strict=True)
    pod = daemonset["spec"]["template"]["spec"]  # type: ignore[index]
    [pull] = pod["initContainers"]
    env = {item["name"]: item["value"] for item in pull["env"]}
    assert env["COMMIT"] == COMMIT and env["REPO"] == "acme/tiny" and env["REF"] == "main"
    assert env["HF_ENDPOINT"] == "http://mirror.internal"
    assert pull["image"] == BUILTIN_TEMPLATES["vllm"]["runtime"]["image"]
    assert pod["volumes"][0]["hostPath"] == {"path": cache.HOST_PATH, "type": "DirectoryOrCreate"}
    assert daemonset["metadata"]["name"] == "model-cache-phi"  # type: ignore[index]
    # on GPU nodes too, whose taints keep off pods that ask for no GPU
    assert {"key": "nvidia.com/gpu", "operator": "Exists"} in pod["tolerations"]


def test_a_deployment_from_the_cache_mounts_it_and_loads_offline() -> None:
    template = DeploymentTemplateSpec.model_validate(BUILTIN_TEMPLATES["vllm"])
    deployment = DeploymentSpec.model_validate(
        {
            "model": "phi",
            "cluster": "gpu",
            "template": "vllm",
            "endpoint_name": "chat",
            "deploy_config": {
                "concurrent_requests": 4,
                "avg_sequence_length": 8,
                "avg_context_length": 8,
            },
        }
    )
    manifests = render_k8s.render_kubernetes(
        template_name="vllm",
        template=template,
        deployment_name="chat",
        deployment=deployment,
        namespace="models",
        model_path="acme/tiny",
        workers=1,
    )
    mounted = cache.mount_cache(manifests.deployment)
    kubernetes_validate.validate(mounted, "1.31", strict=True)
    [container] = mounted["spec"]["template"]["spec"]["containers"]
    assert container["args"][:2] == ["--model", "acme/tiny"], "arguments unchanged"
    assert {"name": "HF_HUB_OFFLINE", "value": "1"} in container["env"]
    assert {"name": "HF_HUB_CACHE", "value": cache.HOST_PATH} in container["env"]
    assert container["volumeMounts"] == [
        {"name": "model-cache", "mountPath": cache.HOST_PATH, "readOnly": True}
    ]
    assert "volumes" not in manifests.deployment["spec"]["template"]["spec"], "a copy"


@pytest.fixture
def hub() -> Iterator[tuple[Hub, str]]:
    app = Hub({"acme/tiny": HubRepo(files={"config.json": CONFIG, "w.safetensors": WEIGHTS},
                                    commit=COMMIT)})  # fmt: skip
    with serve(app) as base:
        yield app, base


def test_the_pull_script_leaves_the_commit_where_an_offline_server_finds_it(
    hub: tuple[Hub, str], tmp_path: Path
) -> None:
    app, base = hub
    daemonset = _daemonset()
    pod = daemonset["spec"]["template"]["spec"]  # type: ignore[index]
    [pull] = pod["initContainers"]
    folder = tmp_path / "node-disk"
    env = {item["name"]: item["value"] for item in pull["env"]}
    env = {k: v.replace(cache.HOST_PATH, str(folder)) for k, v in env.items()}
    bin_dir = str(Path(sys.executable).parent)
    run_env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "HF_ENDPOINT": base}
    done = subprocess.run(
        pull["command"], env={**run_env, **env}, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert any(r.endswith("/w.safetensors") for r in app.requests)
    repo = folder / cache.repo_folder("acme/tiny")
    assert (repo / "refs" / "main").read_text() == COMMIT
    assert (repo / "snapshots" / COMMIT / "w.safetensors").read_bytes() == WEIGHTS

    # what a server in the pod does: resolve the repo id offline from HF_HUB_CACHE
    probe = "import huggingface_hub; print(huggingface_hub.snapshot_download('acme/tiny'))"
    offline = {**run_env, "HF_HUB_CACHE": str(folder), "HF_HUB_OFFLINE": "1",
               "HF_ENDPOINT": "http://127.0.0.1:9"}  # fmt: skip
    found = subprocess.run(
        [sys.executable, "-c", probe], env=offline, capture_output=True, text=True, check=False
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == str(repo / "snapshots" / COMMIT)
