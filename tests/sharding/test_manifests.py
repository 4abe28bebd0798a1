"""deploy/kubernetes/: rendered, checked against the real Kubernetes schemas, its config
loaded as the daemon loads it, and applied to the API double through the real client."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes import client, utils

from reconciler.daemon.config import load_config
from tests.sharding.conftest import NAMESPACE, Home
from tests.sharding.kustomize_lite import render

BASE = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
K8S_VERSION = "1.31"


def rendered() -> list[dict[str, Any]]:
    return render(BASE)


def by_kind(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def test_every_manifest_is_valid_kubernetes() -> None:
    objects = rendered()
    kinds = sorted({o["kind"] for o in objects})
    assert kinds == [
        "PodDisruptionBudget",
        "Role",
        "RoleBinding",
        "Secret",
        "Service",
        "ServiceAccount",
        "StatefulSet",
    ]
    for obj in objects:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_renders_what_the_tests_render() -> None:
    done = subprocess.run(
        ["kubectl", "kustomize", str(BASE)], capture_output=True, text=True, check=True
    )
    assert by_kind(list(yaml.safe_load_all(done.stdout))) == by_kind(rendered())


def test_the_shipped_config_loads_as_a_sharded_daemon_with_an_api(tmp_path: Path) -> None:
    secret = by_kind(rendered())[("Secret", "reconciler-config")]
    path = tmp_path / "reconciler.yaml"
    path.write_text(secret["stringData"]["reconciler.yaml"])
    config = load_config(path)
    assert config.sharded and "api" in config.model_fields_set
    assert config.api.listen == "0.0.0.0:8080" and config.api.port == 8080
    assert config.sharding.identity is None and config.sharding.namespace is None  # the pod's
    statefulset = by_kind(rendered())[("StatefulSet", "reconciler")]
    pod = statefulset["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["args"] == ["run", "--config", "/etc/reconciler/config/reconciler.yaml"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["state"] == str(config.state_dir)
    assert mounts["secrets"] == str(config.secrets_dir)
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]}
    assert env == {"POD_NAME": "metadata.name", "POD_IP": "status.podIP"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": config.api.port}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"]["memory"]
    assert pod["serviceAccountName"] == "reconciler"
    # the SIGTERM path: 20 s for steps to reach a boundary, then handovers and leases
    assert pod["terminationGracePeriodSeconds"] >= 45


def test_the_manifests_apply_to_the_api_double(home: Home) -> None:
    for obj in rendered():
        utils.create_from_dict(home.api, obj)
    apps = client.AppsV1Api(home.api)
    statefulset = apps.read_namespaced_stateful_set("reconciler", NAMESPACE)
    assert statefulset.spec.service_name == "reconciler-headless"
    assert statefulset.spec.volume_claim_templates[0].spec.access_modes == ["ReadWriteOnce"]
    rbac = client.RbacAuthorizationV1Api(home.api)
    binding = rbac.read_namespaced_role_binding("reconciler", NAMESPACE)
    assert binding.subjects[0].name == "reconciler"
    policy = client.PolicyV1Api(home.api)
    assert (
        policy.read_namespaced_pod_disruption_budget("reconciler", NAMESPACE).spec.max_unavailable
        == 1
    )
    core = client.CoreV1Api(home.api)
    assert {s.metadata.name for s in core.list_namespaced_service(NAMESPACE).items} == {
        "reconciler",
        "reconciler-headless",
    }
