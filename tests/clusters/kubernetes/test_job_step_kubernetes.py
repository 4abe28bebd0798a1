"""The k8s_job step on a kubernetes Cluster, through the real kubernetes driver against
the API double (whose fake kubelet runs the container's command on this host)."""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from kubernetes import client

from reconciler.drivers.clusters import kubernetes as k8s
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext, StepImpl, StepLog, StepServices
from reconciler.steps import jobs
from tests.clusters.kubernetes.conftest import Backend
from tests.clusters.kubernetes.endpoint_kit import NAMESPACE

PY = sys.executable


class Clusters:
    def cluster(self, name: str) -> Mapping[str, Any] | None:
        if name != "xeon-dev":
            return None
        return {
            "driver": "kubernetes",
            "namespace": NAMESPACE,
            "gpu": {"type": "nvidia-a100-80gb", "count": 8},
        }


class Registry(dict[str, StepImpl]):
    def register(self, step_type: str, impl: StepImpl) -> None:
        self[step_type] = impl


@pytest.fixture
async def k8s_job(backend: Backend) -> AsyncIterator[StepImpl]:
    if backend.double is None:
        pytest.skip("running a Job needs a kubelet; envtest has none")
    driver = k8s.KubernetesDriver(kubeconfig=backend.kubeconfig, context=None, namespace=NAMESPACE)
    registry = Registry()
    jobs.register_job_steps(registry, drivers={"xeon-dev": driver}, facts=Clusters())
    yield registry["k8s_job"]
    await driver.close()


def context(inputs: dict[str, Any]) -> StepContext:
    return StepContext(
        execution_id="exec-7",
        node_id="eval_job",
        step_type="k8s_job",
        inputs=inputs,
        attempt=1,
        params={},
        object_key="Workflow/nightly-eval",
        revision="r1",
        cluster="xeon-dev",
        log=StepLog(prefix="test k8s_job"),
        services=StepServices(),
    )


async def test_the_job_runs_in_the_clusters_namespace_and_gives_its_outputs(
    backend: Backend, k8s_job: StepImpl
) -> None:
    code = "import json; print('scored', flush=True); print(json.dumps({'accuracy': 0.9}))"
    ctx = context(
        {
            "cluster": "xeon-dev",
            "image": "ghcr.io/example/evaluator:1.4",
            "command": [PY, "-c"],
            "args": [code],
            "gpus": 1,
            "node_timeout": "45m",
        }
    )
    outcome = await k8s_job(ctx)
    assert outcome == outcomes.Done(
        {"logs": 'scored\n{"accuracy": 0.9}\n', "exit_code": 0, "outputs": {"accuracy": 0.9}}
    )
    created = [
        r for r in backend.double.requests if r.method == "POST" and r.path.endswith("/jobs")
    ]
    # in the Cluster's namespace (spec.namespace), which the driver was made for
    assert [r.path for r in created] == [f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs"]
    assert re.search(
        rf"Job {NAMESPACE}/nightly-eval-eval-job-[0-9a-f]{{10}}: created", ctx.log.text()
    )
    assert "INFO | scored" in ctx.log.text()
    remaining = client.BatchV1Api(backend.api).list_namespaced_job(NAMESPACE).items
    assert remaining == []


async def test_more_gpus_than_the_cluster_has_or_no_image_stalls_before_anything_runs(
    backend: Backend, k8s_job: StepImpl
) -> None:
    too_many = await k8s_job(
        context({"cluster": "xeon-dev", "image": "busybox:1.36", "command": ["true"], "gpus": 9})
    )
    assert too_many == outcomes.Stalled(
        "the job asks for 9 GPU(s) and Cluster/xeon-dev has 8 (its spec.gpu.count)"
    )
    no_image = await k8s_job(context({"cluster": "xeon-dev", "command": ["true"]}))
    assert no_image == outcomes.Stalled("Cluster/xeon-dev runs containers: give the job an image")
    assert not [r for r in backend.double.requests if r.method == "POST"]
