"""A Model pre-pulled to a kubernetes Cluster, and a Deployment started from that cache.

Through the real steps and driver against the API double (and envtest when present):
cache_model downloads and scans the files on the daemon's host (the hub double, with the
real huggingface_hub client), applies the node cache DaemonSet for that commit and waits
until every node holds it. The test plays the DaemonSet controller (the double runs no
pods): it reports the nodes Ready once the DaemonSet is there. The Model's status says
where the files are; the Deployment's pods then mount the node folder and load offline.
A cache no longer naming the Cluster, and the Model's removal, delete the DaemonSet.
"""

from __future__ import annotations

import base64
import dataclasses
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from reconciler.core.render import cache as render_cache
from reconciler.drivers.clusters import kubernetes as k8s
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext, StepLog, StepServices
from reconciler.steps import models
from reconciler.steps.endpoints import ModelFacts
from tests.clusters.kubernetes.conftest import Backend
from tests.clusters.kubernetes.endpoint_kit import NAMESPACE
from tests.clusters.kubernetes.test_deploy_steps import SPEC, Facts, steps_for
from tests.models import model_files as mf
from tests.models.servers import Hub, HubRepo, serve

COMMIT = "feed" + "2" * 36
WEIGHTS = mf.safetensors({"embed": ("BF16", [16, 8])})
SOURCE = {"provider_type": "hugging_face", "uri": "acme/tiny"}
MODEL = {"modality": "llm", "source": SOURCE, "cache": {"clusters": ["gpu"]}}


class CacheFacts(Facts):
    """The deploy steps' facts, with the Model's status ``cache`` as the daemon reads it."""

    def __init__(self) -> None:
        super().__init__(gpu={"type": "nvidia-a100-80gb"})
        self.cache: Mapping[str, Any] | None = None

    def model(self, name: str) -> ModelFacts | None:
        return ModelFacts(path=None, source=SOURCE, cache=self.cache)


class DaemonSetController:
    """Reports every node Ready for each cache DaemonSet that appears (as kubelets would)."""

    def __init__(self, backend: Backend, nodes: int) -> None:
        self.apps = backend.apps
        self.nodes = nodes
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.05):
            for item in self.apps.list_namespaced_daemon_set(NAMESPACE).items:
                status = item.status
                generation = item.metadata.generation or 1
                if status is not None and (status.observed_generation or 0) >= generation:
                    continue
                self.apps.patch_namespaced_daemon_set_status(
                    item.metadata.name,
                    NAMESPACE,
                    {
                        "status": {
                            "observedGeneration": generation,
                            "desiredNumberScheduled": self.nodes,
                            "currentNumberScheduled": self.nodes,
                            "updatedNumberScheduled": self.nodes,
                            "numberReady": self.nodes,
                            "numberAvailable": self.nodes,
                            "numberMisscheduled": 0,
                        }
                    },
                    field_manager="daemon-set-controller",
                    _content_type="application/merge-patch+json",
                )


@pytest.fixture
async def driver(backend: Backend) -> AsyncIterator[k8s.KubernetesDriver]:
    made = k8s.KubernetesDriver(kubeconfig=backend.kubeconfig, context=None, namespace=NAMESPACE)
    yield made
    await made.close()


@pytest.fixture
def hub() -> Iterator[tuple[Hub, str]]:
    app = Hub({"acme/tiny": HubRepo(files={"w.safetensors": WEIGHTS}, commit=COMMIT)})
    with serve(app) as base:
        yield app, base


def _ctx(step: str, inputs: dict[str, Any], services: models.ModelServices) -> StepContext:
    return StepContext(
        execution_id="e1",
        node_id=step,
        step_type=step,
        inputs=inputs,
        attempt=1,
        params={},
        object_key="Model/phi" if "model" in step else "Deployment/chat",
        revision="r1",
        cluster="gpu",
        log=StepLog(prefix=step),
        services=StepServices(
            readiness_poll_interval_s=0.05, extra={models.MODEL_SERVICE: services}
        ),
    )


def daemonset(backend: Backend) -> dict[str, Any] | None:
    try:
        found = backend.apps.read_namespaced_daemon_set("model-cache-phi", NAMESPACE)
    except client.ApiException as error:
        assert error.status == 404
        return None
    return backend.raw(found)


async def test_the_cache_is_pulled_to_every_node_and_the_deployment_reads_it(
    backend: Backend, driver: k8s.KubernetesDriver, hub: tuple[Hub, str], tmp_path: Path
) -> None:
    app, base = hub
    services = models.ModelServices(cache_dir=tmp_path / "models", hf_endpoint=base)
    facts = CacheFacts()
    steps = steps_for(driver, facts)
    controller = DaemonSetController(backend, nodes=3)
    controller.thread.start()
    try:
        inputs = {**MODEL, "model": "phi", "ready_timeout_s": 30}
        done = await steps["cache_model"](_ctx("cache_model", inputs, services))
    finally:
        controller.stop.set()
        controller.thread.join()
    assert isinstance(done, outcomes.Done), done
    [entry] = done.outputs["status"]["cache"].values()
    assert entry["driver"] == "kubernetes" and entry["state"] == "ready"
    assert (entry["nodes"], entry["revision"], entry["daemonset"]) == (3, COMMIT, "model-cache-phi")
    assert any(r.endswith("/w.safetensors") for r in app.requests), "the daemon's scanned copy"
    found = daemonset(backend)
    assert found is not None
    pull = found["spec"]["template"]["spec"]["initContainers"][0]
    assert {"name": "COMMIT", "value": COMMIT} in pull["env"]
    assert {"name": "HF_ENDPOINT", "value": base} in pull["env"]

    facts.cache = done.outputs["status"]["cache"]
    context = _ctx("deploy_model", dict(SPEC, model="phi"), services)
    deployed = await steps["deploy_model"](context)
    assert isinstance(deployed, outcomes.Done), deployed
    assert deployed.outputs["status"]["model_cache"]["revision"] == COMMIT
    assert "pods read Model/phi from the node cache" in context.log.text()
    [live] = backend.apps.list_namespaced_deployment(
        NAMESPACE, label_selector=f"{k8s.OWNER_LABEL}=chat"
    ).items
    pod = backend.raw(live)["spec"]["template"]["spec"]
    assert pod["volumes"][0]["hostPath"]["path"] == render_cache.HOST_PATH
    env = {item["name"]: item["value"] for item in pod["containers"][0]["env"]}
    assert env["HF_HUB_OFFLINE"] == "1" and env["HF_HUB_CACHE"] == render_cache.HOST_PATH

    # the cache no longer names the Cluster: its DaemonSet goes
    dropped = {**inputs, "cache": None}
    assert isinstance(
        await steps["cache_model"](_ctx("cache_model", dropped, services)), outcomes.Done
    )
    assert daemonset(backend) is None


async def test_the_models_removal_deletes_its_cache(
    backend: Backend, driver: k8s.KubernetesDriver, hub: tuple[Hub, str], tmp_path: Path
) -> None:
    _app, base = hub
    services = models.ModelServices(cache_dir=tmp_path / "models", hf_endpoint=base)
    steps = steps_for(driver, CacheFacts())
    controller = DaemonSetController(backend, nodes=1)
    controller.thread.start()
    try:
        inputs = {**MODEL, "model": "phi", "ready_timeout_s": 30}
        assert isinstance(
            await steps["cache_model"](_ctx("cache_model", inputs, services)), outcomes.Done
        )
    finally:
        controller.stop.set()
        controller.thread.join()
    assert daemonset(backend) is not None
    removed = await steps["uncache_model"](_ctx("uncache_model", inputs, services))
    assert isinstance(removed, outcomes.Done)
    assert daemonset(backend) is None


async def test_nodes_that_never_get_the_files_leave_the_model_waiting(
    backend: Backend, driver: k8s.KubernetesDriver, hub: tuple[Hub, str], tmp_path: Path
) -> None:
    _app, base = hub
    services = models.ModelServices(cache_dir=tmp_path / "models", hf_endpoint=base)
    steps = steps_for(driver, CacheFacts())
    inputs = {**MODEL, "model": "phi", "ready_timeout_s": 1}
    waiting = await steps["cache_model"](_ctx("cache_model", inputs, services))
    assert isinstance(waiting, outcomes.Retry), waiting
    assert "not filled yet" in waiting.reason


class _Credentials:
    """The daemon's credential lookup, over one Credential with its value."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def value_of(self, credential: str) -> str:
        try:
            return self.values[credential]
        except KeyError:
            raise LookupError(f"Credential {credential!r} is not defined in the repo") from None


def token_secret(backend: Backend) -> dict[str, Any] | None:
    try:
        found = backend.core.read_namespaced_secret("model-cache-phi", NAMESPACE)
    except client.ApiException as error:
        assert error.status == 404
        return None
    return backend.raw(found)


async def test_a_gated_repo_is_pulled_with_its_token_from_a_secret_of_its_own(
    backend: Backend, driver: k8s.KubernetesDriver, tmp_path: Path
) -> None:
    """The daemon downloads the gated repo with the Model's credential, and the nodes'
    puller gets the same token through a Secret; the DaemonSet never holds it, and the
    Secret goes with the cache."""
    token = "hf_gated_token_value_never_in_a_manifest"
    repo = HubRepo(files={"w.safetensors": WEIGHTS}, commit=COMMIT, gated=True)
    gated = {**SOURCE, "credential": "hf"}
    with serve(Hub({"acme/tiny": repo}, token=token)) as base:
        services = models.ModelServices(
            cache_dir=tmp_path / "models",
            hf_endpoint=base,
            credentials=_Credentials({"hf": token}),
        )
        steps = steps_for(driver, CacheFacts())
        controller = DaemonSetController(backend, nodes=2)
        controller.thread.start()
        try:
            inputs = {**MODEL, "source": gated, "model": "phi", "ready_timeout_s": 30}
            done = await steps["cache_model"](_ctx("cache_model", inputs, services))
        finally:
            controller.stop.set()
            controller.thread.join()
    assert isinstance(done, outcomes.Done), done
    assert done.outputs["status"]["cache"]["gpu"]["nodes"] == 2
    found = daemonset(backend)
    assert found is not None
    assert token not in str(found), "the DaemonSet names the Secret, never the value"
    pull = found["spec"]["template"]["spec"]["initContainers"][0]
    ref = {"secretKeyRef": {"name": "model-cache-phi", "key": "HF_TOKEN"}}
    assert {"name": "HF_TOKEN", "valueFrom": ref} in pull["env"]
    secret = token_secret(backend)
    assert secret is not None
    assert secret["data"]["HF_TOKEN"] == base64.b64encode(token.encode()).decode()

    # The credential is not in the secret store: the Model stalls, naming it.
    services = dataclasses.replace(services, credentials=_Credentials({}))
    stalled = await steps["cache_model"](_ctx("cache_model", inputs, services))
    assert isinstance(stalled, outcomes.Stalled), stalled
    assert "SecretNotFound" in stalled.reason and token not in stalled.reason

    removed = await steps["uncache_model"](_ctx("uncache_model", inputs, services))
    assert isinstance(removed, outcomes.Done)
    assert (daemonset(backend), token_secret(backend)) == (None, None)
