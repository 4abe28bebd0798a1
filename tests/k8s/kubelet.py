"""A fake kubelet and controller manager that tests switch on, talking the public API.

Against the API double, and equally against a real kube-apiserver with no nodes (the
envtest setup), nothing would ever mark a Deployment's pods ready. This helper watches
Deployments and Jobs through the official client and writes what the controllers would:
Deployment ``status`` (replicas, updated, ready, available, ``observedGeneration``,
conditions) through the status subresource under the manager
``kube-controller-manager``; and for a Job, it makes its Pod from the template (the
labels the server generated included), runs the container's command on this host in a
thread of its own, marks the Pod running, appends the output to the pod's log (on the
double) line by line as it comes, then records the exit code and the Job's ``Complete``
or ``Failed`` condition. ``activeDeadlineSeconds`` is kept as the Job controller keeps
it: past it the process is killed, the pod deleted and the Job failed with
``DeadlineExceeded``. A deleted pod (the Job deleted with Background propagation) has its
process killed, as a kubelet stops the containers of a pod that goes.

Images listed in ``failing_images`` never become ready: their Deployments report
``Progressing=False, reason ProgressDeadlineExceeded`` at once (time fast-forwarded).
A Job whose image is in ``invalid_images`` keeps its pod waiting with reason
``InvalidImageName``, as a kubelet does for a reference it cannot parse.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from typing import Any

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.k8s.apiserver_double import ApiServerDouble

MANAGER = "kube-controller-manager"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeKubelet:
    """``start()`` to begin, ``stop()`` to end; ``enabled`` pauses without stopping."""

    def __init__(
        self,
        api: client.ApiClient,
        *,
        double: ApiServerDouble | None = None,
        watch_timeout_s: int = 1,
        deployment_pods: bool = False,
    ) -> None:
        """``watch_timeout_s``: each watch ends (and everything is re-listed) after this
        long; short for tests, so ``stop()`` is quick; long for benchmarks with many
        objects, where a re-list each second would cost more than the objects."""
        self._watch_timeout_s = watch_timeout_s
        self.deployment_pods = deployment_pods
        self._apps = client.AppsV1Api(api)
        self._batch = client.BatchV1Api(api)
        self._core = client.CoreV1Api(api)
        self._double = double
        self.failing_images: set[str] = set()
        self.invalid_images: set[str] = set()
        self.enabled = threading.Event()
        self.enabled.set()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(self._deployments,), daemon=True),
            threading.Thread(target=self._loop, args=(self._jobs,), daemon=True),
            threading.Thread(target=self._loop, args=(self._pods,), daemon=True),
        ]
        self._jobs_done: set[str] = set()
        self._running: dict[tuple[str, str], subprocess.Popen[str]] = {}
        self._gone_pods: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._job_threads: list[threading.Thread] = []
        self.errors: list[str] = []

    def start(self) -> FakeKubelet:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            running = list(self._running.values())
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        for thread in [*self._threads, *self._job_threads]:
            thread.join(timeout=30)

    def _loop(self, kind: str) -> None:
        lister, handler = {
            "deployments": (self._apps.list_deployment_for_all_namespaces, self._on_deployment),
            "jobs": (self._batch.list_job_for_all_namespaces, self._on_job),
            "pods": (self._core.list_pod_for_all_namespaces, self._on_pod),
        }[kind]
        while not self._stop.is_set():
            try:
                # Raw JSON, not the client's model objects: with many objects their
                # construction cost more than everything else this fake does.
                listing = json.loads(lister(_preload_content=False).data)
                for item in listing.get("items") or []:
                    handler(item)
                stream = watch.Watch(return_type="object").stream(
                    lister,
                    resource_version=listing["metadata"]["resourceVersion"],
                    timeout_seconds=self._watch_timeout_s,
                )
                for event in stream:
                    if self._stop.is_set():
                        break
                    if event["type"] in {"ADDED", "MODIFIED"}:
                        handler(event["raw_object"])
                    elif event["type"] == "DELETED" and kind == "pods":
                        self._on_pod_deleted(event["raw_object"])
                    elif event["type"] == "DELETED" and kind == "deployments":
                        self._sync_pods(event["raw_object"], 0)
            except ApiException as error:
                if error.status != 410:
                    self.errors.append(f"{kind}: {error.status} {error.reason}")
            except Exception as error:  # keeps the fake alive; the test sees self.errors
                self.errors.append(f"{kind}: {error!r}")

    _deployments = "deployments"
    _jobs = "jobs"
    _pods = "pods"

    # --------------------------------------------------------------- deployments
    def _on_deployment(self, obj: dict[str, Any]) -> None:
        if not self.enabled.is_set():
            return
        meta, spec = obj["metadata"], obj.get("spec") or {}
        desired = spec.get("replicas", 1)
        images = {
            c.get("image")
            for c in ((spec.get("template") or {}).get("spec") or {}).get("containers", [])
        }
        failing = bool(images & self.failing_images)
        status: dict[str, Any] = {
            "observedGeneration": meta.get("generation", 1),
            "replicas": desired,
            "updatedReplicas": desired,
        }
        if failing:
            status["unavailableReplicas"] = desired
            conditions = [
                {
                    "type": "Available",
                    "status": "False",
                    "reason": "MinimumReplicasUnavailable",
                    "message": "Deployment does not have minimum availability.",
                },
                {
                    "type": "Progressing",
                    "status": "False",
                    "reason": "ProgressDeadlineExceeded",
                    "message": f'ReplicaSet "{meta["name"]}-7d9f" has timed out progressing.',
                },
            ]
        else:
            status["readyReplicas"] = desired
            status["availableReplicas"] = desired
            conditions = [
                {
                    "type": "Available",
                    "status": "True",
                    "reason": "MinimumReplicasAvailable",
                    "message": "Deployment has minimum availability.",
                },
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "NewReplicaSetAvailable",
                    "message": f'ReplicaSet "{meta["name"]}-7d9f" has successfully progressed.',
                },
            ]
        current = obj.get("status") or {}
        same = all(current.get(k) == v for k, v in status.items()) and [
            (c.get("type"), c.get("reason")) for c in current.get("conditions") or []
        ] == [(c["type"], c["reason"]) for c in conditions]
        if same and not (failing and current.get("readyReplicas")):
            return
        stamp = _now()
        for condition in conditions:
            condition["lastUpdateTime"] = stamp
            condition["lastTransitionTime"] = stamp
        status["conditions"] = conditions
        if failing or desired == 0:
            status["readyReplicas"] = None
            status["availableReplicas"] = None
        self._sync_pods(obj, 0 if failing else desired)
        self._apps.patch_namespaced_deployment_status(
            meta["name"],
            meta["namespace"],
            {"status": status},
            field_manager=MANAGER,
            _content_type="application/merge-patch+json",
            # the answer is read as bytes, to its end (which frees the connection): no
            # client model objects are built for it
            _preload_content=False,
        ).read()

    def _sync_pods(self, obj: dict[str, Any], count: int) -> None:
        """With ``deployment_pods``: the Deployment's running pods, ``count`` of them, made
        from its template (named ``<deployment>-pod<i>``); no process runs in them."""
        if not self.deployment_pods:
            return
        meta, spec = obj["metadata"], obj.get("spec") or {}
        namespace = meta["namespace"]
        matching = ",".join(
            f"{k}={v}" for k, v in ((spec.get("selector") or {}).get("matchLabels") or {}).items()
        )
        have = {
            pod.metadata.name
            for pod in self._core.list_namespaced_pod(namespace, label_selector=matching).items
        }
        wanted = {f"{meta['name']}-pod{i}" for i in range(count)}
        for name in sorted(have - wanted):
            with contextlib.suppress(ApiException):
                self._core.delete_namespaced_pod(name, namespace)
        template = spec.get("template") or {}
        for name in sorted(wanted - have):
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": dict((template.get("metadata") or {}).get("labels") or {}),
                },
                "spec": template["spec"],
            }
            self._core.create_namespaced_pod(namespace, pod, field_manager=MANAGER)
            self._pod_status(
                name,
                namespace,
                template["spec"]["containers"][0],
                phase="Running",
                state={"running": {"startedAt": _now()}},
            )

    # ---------------------------------------------------------------------- jobs
    def _on_job(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if not self.enabled.is_set() or meta["uid"] in self._jobs_done:
            return
        if (obj.get("status") or {}).get("startTime"):
            return
        self._jobs_done.add(meta["uid"])
        thread = threading.Thread(target=self._run_job, args=(obj,), daemon=True)
        self._job_threads.append(thread)
        thread.start()

    def _on_pod(self, obj: dict[str, Any]) -> None:
        """Pods are run by the Job threads; only their deletion matters here."""

    def _on_pod_deleted(self, obj: dict[str, Any]) -> None:
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        with self._lock:
            self._gone_pods.add(key)
            process = self._running.get(key)
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    def _run_job(self, obj: dict[str, Any]) -> None:
        try:
            self._job(obj)
        except ApiException as error:
            if error.status != 404:  # the Job or its pod deleted while it ran
                self.errors.append(f"job {obj['metadata']['name']}: {error.status} {error.reason}")
        except Exception as error:  # keeps the fake alive; the test sees self.errors
            self.errors.append(f"job {obj['metadata']['name']}: {error!r}")

    def _job(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        namespace = meta["namespace"]
        template = obj["spec"]["template"]
        container = template["spec"]["containers"][0]
        pod_name = f"{meta['name']}-{uuid.uuid4().hex[:5]}"
        key = (namespace, pod_name)
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        labels.setdefault("job-name", meta["name"])
        labels.setdefault("batch.kubernetes.io/job-name", meta["name"])
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name,
                "namespace": namespace,
                "labels": labels,
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": template["spec"],
        }
        self._core.create_namespaced_pod(namespace, pod, field_manager=MANAGER)
        if container.get("image") in self.invalid_images:
            self._pod_status(
                pod_name,
                namespace,
                container,
                phase="Pending",
                state={
                    "waiting": {
                        "reason": "InvalidImageName",
                        "message": f'couldn\'t parse image name "{container["image"]}"',
                    }
                },
            )
            return
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        env = {e["name"]: e.get("value", "") for e in container.get("env") or []}
        started = _now()
        deadline_s = obj["spec"].get("activeDeadlineSeconds")
        deadline = None if deadline_s is None else time.monotonic() + float(deadline_s)
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env={"PATH": "/usr/bin:/bin", **env},
                start_new_session=True,
            )
        except OSError as error:
            self._pod_status(
                pod_name,
                namespace,
                container,
                phase="Failed",
                state={
                    "terminated": {
                        "exitCode": 128,
                        "reason": "StartError",
                        "message": str(error),
                        "startedAt": started,
                        "finishedAt": _now(),
                    }
                },
            )
            self._job_status(meta, namespace, started, succeeded=False)
            return
        with self._lock:
            self._running[key] = process
            if key in self._gone_pods:  # deleted before it got this far
                os.killpg(process.pid, signal.SIGKILL)
        self._pod_status(
            pod_name,
            namespace,
            container,
            phase="Running",
            state={"running": {"startedAt": started}},
        )
        self._batch.patch_namespaced_job_status(
            meta["name"],
            namespace,
            {"status": {"startTime": started, "active": 1}},
            field_manager=MANAGER,
            _content_type="application/merge-patch+json",
        )
        reader = threading.Thread(target=self._copy_log, args=(process, key), daemon=True)
        reader.start()
        past_deadline = False
        while process.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                past_deadline = True
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.02)
        reader.join(timeout=30)
        with self._lock:
            self._running.pop(key, None)
            deleted = key in self._gone_pods
        if deleted:
            return
        if past_deadline:
            # the Job controller deletes the active pods and fails the Job
            self._core.delete_namespaced_pod(pod_name, namespace)
            self._job_status(
                meta,
                namespace,
                started,
                succeeded=False,
                reason="DeadlineExceeded",
                message="Job was active longer than specified deadline",
            )
            return
        code = process.returncode
        exit_code = 128 - code if code < 0 else code
        self._pod_status(
            pod_name,
            namespace,
            container,
            phase="Succeeded" if code == 0 else "Failed",
            state={
                "terminated": {
                    "exitCode": exit_code,
                    "reason": "Completed" if code == 0 else "Error",
                    "startedAt": started,
                    "finishedAt": _now(),
                }
            },
        )
        self._job_status(meta, namespace, started, succeeded=code == 0)

    def _copy_log(self, process: subprocess.Popen[str], key: tuple[str, str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if self._double is not None:
                self._double.append_pod_log(namespace=key[0], pod=key[1], text=line)

    def _pod_status(
        self,
        name: str,
        namespace: str,
        container: dict[str, Any],
        *,
        phase: str,
        state: dict[str, Any],
    ) -> None:
        self._core.patch_namespaced_pod_status(
            name,
            namespace,
            {
                "status": {
                    "phase": phase,
                    "containerStatuses": [
                        {
                            "name": container["name"],
                            "image": container["image"],
                            "imageID": "",
                            "ready": "running" in state,
                            "restartCount": 0,
                            "state": state,
                        }
                    ],
                }
            },
            field_manager="kubelet",
            _content_type="application/merge-patch+json",
        )

    def _job_status(
        self,
        meta: dict[str, Any],
        namespace: str,
        started: str,
        *,
        succeeded: bool,
        reason: str | None = None,
        message: str | None = None,
    ) -> None:
        condition = "Complete" if succeeded else "Failed"
        self._batch.patch_namespaced_job_status(
            meta["name"],
            namespace,
            {
                "status": {
                    "startTime": started,
                    "completionTime": _now() if succeeded else None,
                    "active": None,
                    "succeeded": 1 if succeeded else None,
                    "failed": None if succeeded else 1,
                    "conditions": [
                        {
                            "type": condition,
                            "status": "True",
                            "reason": reason
                            or ("Completed" if succeeded else "BackoffLimitExceeded"),
                            "message": message
                            if message is not None
                            else (
                                "" if succeeded else "Job has reached the specified backoff limit"
                            ),
                            "lastProbeTime": _now(),
                            "lastTransitionTime": _now(),
                        }
                    ],
                }
            },
            field_manager=MANAGER,
            _content_type="application/merge-patch+json",
        )
