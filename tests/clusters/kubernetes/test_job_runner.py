"""Jobs run to their end on Kubernetes, through the real client, against the API double.

The fake kubelet runs each Job's command on this host and writes its output into the
pod's log as it comes; the runner follows that log as ``kubectl logs -f`` does. The
rendered Job is what is applied, and it is checked against the real schemas.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import kubernetes_validate
import pytest
from kubernetes import client

from reconciler.core.render import kubernetes_job
from reconciler.core.render.placeholders import RenderError
from reconciler.drivers.clusters import kubernetes as k8s
from reconciler.drivers.clusters import local_processes as procs
from reconciler.drivers.clusters import protocol
from tests.clusters.kubernetes.conftest import Backend
from tests.clusters.kubernetes.endpoint_kit import NAMESPACE, until

PY = sys.executable
K8S_VERSION = "1.31"


@pytest.fixture
async def driver(backend: Backend) -> AsyncIterator[k8s.KubernetesDriver]:
    if backend.double is None:
        pytest.skip("running a Job needs a kubelet; envtest has none")
    made = k8s.KubernetesDriver(kubeconfig=backend.kubeconfig, context=None, namespace=NAMESPACE)
    yield made
    await made.close()


class Seen:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.notes: list[str] = []
        self._events: dict[str, asyncio.Event] = {}

    def line(self, text: str) -> None:
        self.lines.append(text)
        for prefix, event in self._events.items():
            if text.startswith(prefix):
                event.set()

    def note(self, text: str) -> None:
        self.notes.append(text)

    async def line_starting(self, prefix: str, *, timeout_s: float = 30.0) -> str:
        event = self._events.setdefault(prefix, asyncio.Event())
        if not any(line.startswith(prefix) for line in self.lines):
            await asyncio.wait_for(event.wait(), timeout_s)
        return next(line for line in self.lines if line.startswith(prefix))


def request(
    code: str,
    *,
    name: str = "eval-1",
    gpus: int = 0,
    timeout_s: float | None = None,
    env: dict[str, str] | None = None,
    image: str = "python:3.11-slim",
) -> protocol.JobRequest:
    labels = {"reconciler/workflow": "nightly-eval", "reconciler/node": "eval_job"}
    manifest = kubernetes_job.render_job(
        name=name,
        namespace=NAMESPACE,
        labels=labels,
        image=image,
        command=(PY, "-c"),
        args=(code,),
        env=env or {},
        gpus=gpus,
        timeout_s=timeout_s,
    )
    return protocol.JobRequest(
        name=name,
        image=image,
        command=(PY, "-c"),
        args=(code,),
        env=env or {},
        gpus=gpus,
        timeout_s=timeout_s,
        manifest=manifest,
    )


def _pods(backend: Backend, name: str) -> list[client.V1Pod]:
    return list(
        backend.core.list_namespaced_pod(
            NAMESPACE, label_selector=f"batch.kubernetes.io/job-name={name}"
        ).items
    )


def _namespace(backend: Backend) -> None:
    backend.core.create_namespace({"metadata": {"name": NAMESPACE}})


def _job(backend: Backend, name: str) -> client.V1Job | None:
    try:
        return client.BatchV1Api(backend.api).read_namespaced_job(name, NAMESPACE)
    except client.ApiException as error:
        assert error.status == 404
        return None


async def test_output_streams_while_the_job_runs_then_it_is_deleted_with_its_pod(
    backend: Backend, driver: k8s.KubernetesDriver, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    code = (
        "import json, os, sys, time\n"
        "print('loading ' + os.environ['DATASET'], flush=True)\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
        "print('warning: slow', file=sys.stderr, flush=True)\n"
        "print(json.dumps({'accuracy': 0.93, 'n': 200}))\n"
    )
    seen = Seen()
    runner = driver.job_runner()
    running = asyncio.create_task(
        runner.run_to_end(
            request(code, gpus=1, timeout_s=600, env={"DATASET": "chat.jsonl"}),
            on_line=seen.line,
            on_note=seen.note,
        )
    )
    assert await seen.line_starting("loading") == "loading chat.jsonl"
    assert not running.done()  # the line came through the followed log, mid-run
    job = _job(backend, "eval-1")
    assert job is not None
    container = job.spec.template.spec.containers[0]
    assert container.resources.limits == {"nvidia.com/gpu": "1"}
    assert job.spec.active_deadline_seconds == 600
    assert job.spec.backoff_limit == 0
    assert job.metadata.labels["reconciler/job"] == "eval-1"
    go.touch()
    ended = await asyncio.wait_for(running, 60)
    assert ended == protocol.JobOutcome(exit_code=0, message="Completed")
    assert seen.lines == [
        "loading chat.jsonl",
        "warning: slow",
        '{"accuracy": 0.93, "n": 200}',
    ]
    assert f"Job {NAMESPACE}/eval-1: created" in seen.notes
    assert _job(backend, "eval-1") is None
    await until(lambda: not _pods(backend, "eval-1"), what="the Job's pod to be deleted")
    assert not backend.kubelet.errors


async def test_a_failing_job_gives_its_exit_code_and_reason(driver: k8s.KubernetesDriver) -> None:
    seen = Seen()
    ended = await asyncio.wait_for(
        driver.job_runner().run_to_end(
            request("import sys; print('bad input'); sys.exit(3)", name="eval-2"),
            on_line=seen.line,
            on_note=seen.note,
        ),
        60,
    )
    assert ended.exit_code == 3 and not ended.timed_out
    assert ended.message.startswith("BackoffLimitExceeded")
    assert seen.lines == ["bad input"]


async def test_the_cluster_stops_a_job_past_its_deadline(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    seen = Seen()
    code = "import time; print('started', flush=True); time.sleep(600)"
    ended = await asyncio.wait_for(
        driver.job_runner().run_to_end(
            request(code, name="eval-3", timeout_s=1), on_line=seen.line, on_note=seen.note
        ),
        60,
    )
    assert ended.timed_out
    assert ended.exit_code is None  # its pod was deleted, as the Job controller does
    assert ended.message == "DeadlineExceeded: Job was active longer than specified deadline"
    assert seen.lines == ["started"]
    assert _job(backend, "eval-3") is None


async def test_cancelling_deletes_the_job_and_stops_its_container(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    seen = Seen()
    code = "import os, time; print(f'pid {os.getpid()}', flush=True); time.sleep(600)"
    running = asyncio.create_task(
        driver.job_runner().run_to_end(
            request(code, name="eval-4"), on_line=seen.line, on_note=seen.note
        )
    )
    pid = int((await seen.line_starting("pid")).split()[1])
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert _job(backend, "eval-4") is None
    await until(lambda: not _pods(backend, "eval-4"), what="the pod to be deleted")
    await until(lambda: procs.start_ticks(pid) is None, what="the container's process to end")


async def test_a_job_left_by_an_earlier_daemon_is_adopted_with_its_whole_output(
    backend: Backend, driver: k8s.KubernetesDriver, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    code = (
        "import os, time\n"
        "print('before the restart', flush=True)\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
        "print('after it')\n"
    )
    earlier = request(code, name="eval-5")
    _namespace(backend)
    assert earlier.manifest is not None
    client.BatchV1Api(backend.api).create_namespaced_job(NAMESPACE, dict(earlier.manifest))
    await until(lambda: bool(_pods(backend, "eval-5")), what="the earlier Job's pod")
    seen = Seen()
    running = asyncio.create_task(
        driver.job_runner().run_to_end(earlier, on_line=seen.line, on_note=seen.note)
    )
    await seen.line_starting("before")
    go.touch()
    ended = await asyncio.wait_for(running, 60)
    assert ended.exit_code == 0
    assert seen.lines == ["before the restart", "after it"]
    assert f"Job {NAMESPACE}/eval-5: adopted, started earlier" in seen.notes


async def test_a_job_of_that_name_that_is_not_ours_is_left_alone(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    _namespace(backend)
    theirs = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "eval-6", "labels": {"team": "other"}},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox:1.36", "command": ["true"]}],
                }
            }
        },
    }
    client.BatchV1Api(backend.api).create_namespaced_job(NAMESPACE, theirs)
    seen = Seen()
    with pytest.raises(protocol.JobConflictError, match="not started by reconciler"):
        await driver.job_runner().run_to_end(
            request("print(1)", name="eval-6"), on_line=seen.line, on_note=seen.note
        )
    assert _job(backend, "eval-6") is not None


async def test_an_image_the_cluster_cannot_pull_is_refused_at_once(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    backend.kubelet.invalid_images.add("Bad Image!")
    seen = Seen()
    with pytest.raises(protocol.InvalidJobError, match="InvalidImageName"):
        await asyncio.wait_for(
            driver.job_runner().run_to_end(
                request("print(1)", name="eval-7", image="Bad Image!"),
                on_line=seen.line,
                on_note=seen.note,
            ),
            60,
        )
    assert any("waiting: InvalidImageName" in note for note in seen.notes)
    assert _job(backend, "eval-7") is None


async def test_the_double_answers_a_log_read_of_a_waiting_container_like_the_server(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    backend.kubelet.invalid_images.add("Bad Image!")
    _namespace(backend)
    made = request("print(1)", name="eval-8", image="Bad Image!").manifest
    assert made is not None
    batch = client.BatchV1Api(backend.api)
    batch.create_namespaced_job(NAMESPACE, dict(made))
    await until(
        lambda: any(p.status and p.status.container_statuses for p in _pods(backend, "eval-8")),
        what="the waiting pod",
    )
    [pod] = _pods(backend, "eval-8")
    with pytest.raises(client.ApiException) as refused:
        backend.core.read_namespaced_pod_log(pod.metadata.name, NAMESPACE)
    assert refused.value.status == 400
    assert "is waiting to start: InvalidImageName" in str(refused.value.body)
    # deleting a Job without a propagation policy leaves its pods (the API's default)
    batch.delete_namespaced_job("eval-8", NAMESPACE)
    [orphan] = _pods(backend, "eval-8")
    assert not orphan.metadata.owner_references


@pytest.mark.parametrize(
    ("gpus", "timeout_s", "env"), [(0, None, {}), (2, 2700.0, {"DATA": "s3://x", "N": "3"})]
)
def test_rendered_jobs_are_valid_kubernetes_objects(
    gpus: int, timeout_s: float | None, env: dict[str, str]
) -> None:
    manifest = kubernetes_job.render_job(
        name="nightly-eval-eval-job-0123456789",
        namespace="models",
        labels={"reconciler/workflow": "nightly-eval", "reconciler/node": "eval_job"},
        image="ghcr.io/example/evaluator:1.4",
        args=("--endpoint", "http://phi-chat.models.svc:8000/v1"),
        env=env,
        gpus=gpus,
        timeout_s=timeout_s,
    )
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    spec = manifest["spec"]
    assert spec["backoffLimit"] == 0 and spec["template"]["spec"]["restartPolicy"] == "Never"
    container = spec["template"]["spec"]["containers"][0]
    assert "command" not in container  # the image's entrypoint, given args
    if gpus:
        assert container["resources"] == {"limits": {"nvidia.com/gpu": "2"}}
        assert spec["activeDeadlineSeconds"] == 2700
    else:
        assert "resources" not in container and "activeDeadlineSeconds" not in spec


def test_a_job_that_cannot_be_rendered_says_why() -> None:
    with pytest.raises(RenderError, match="env name '1BAD'"):
        kubernetes_job.render_job(
            name="j", namespace="m", labels={}, image="busybox", env={"1BAD": "x"}
        )
    with pytest.raises(RenderError, match="needs an image"):
        kubernetes_job.render_job(name="j", namespace="m", labels={}, image="")
