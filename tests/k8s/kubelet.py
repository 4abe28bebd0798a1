"""A fake kubelet and controller manager that tests switch on, talking the public API.

Against the API double, and equally against a real kube-apiserver with no nodes (the
envtest setup), nothing would ever mark a Deployment's pods ready. This helper watches
Deployments and Jobs through the official client and writes what the controllers would:
Deployment ``status`` (replicas, updated, ready, available, ``observedGeneration``,
conditions) through the status subresource under the manager
``kube-controller-manager``; and for a Job, it runs the container's command on this host,
records a Pod with the exit code, the Job's status, and (on the double) the pod's log.

Images listed in ``failing_images`` never become ready: their Deployments report
``Progressing=False, reason ProgressDeadlineExceeded`` at once (time fast-forwarded).
"""

from __future__ import annotations

import datetime
import json
import subprocess
import threading
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
    ) -> None:
        """``watch_timeout_s``: each watch ends (and everything is re-listed) after this
        long; short for tests, so ``stop()`` is quick; long for benchmarks with many
        objects, where a re-list each second would cost more than the objects."""
        self._watch_timeout_s = watch_timeout_s
        self._apps = client.AppsV1Api(api)
        self._batch = client.BatchV1Api(api)
        self._core = client.CoreV1Api(api)
        self._double = double
        self.failing_images: set[str] = set()
        self.enabled = threading.Event()
        self.enabled.set()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(self._deployments,), daemon=True),
            threading.Thread(target=self._loop, args=(self._jobs,), daemon=True),
        ]
        self._jobs_done: set[str] = set()
        self.errors: list[str] = []

    def start(self) -> FakeKubelet:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _loop(self, kind: str) -> None:
        lister, handler = (
            (self._apps.list_deployment_for_all_namespaces, self._on_deployment)
            if kind == "deployments"
            else (self._batch.list_job_for_all_namespaces, self._on_job)
        )
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
            except ApiException as error:
                if error.status != 410:
                    self.errors.append(f"{kind}: {error.status} {error.reason}")
            except Exception as error:  # keeps the fake alive; the test sees self.errors
                self.errors.append(f"{kind}: {error!r}")

    _deployments = "deployments"
    _jobs = "jobs"

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

    # ---------------------------------------------------------------------- jobs
    def _on_job(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if not self.enabled.is_set() or meta["uid"] in self._jobs_done:
            return
        if (obj.get("status") or {}).get("startTime"):
            return
        self._jobs_done.add(meta["uid"])
        container = obj["spec"]["template"]["spec"]["containers"][0]
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        env = {e["name"]: e.get("value", "") for e in container.get("env") or []}
        started = _now()
        done = subprocess.run(
            argv, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", **env}, check=False
        )
        pod_name = f"{meta['name']}-{uuid.uuid4().hex[:5]}"
        namespace = meta["namespace"]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name,
                "namespace": namespace,
                "labels": {"job-name": meta["name"], "batch.kubernetes.io/job-name": meta["name"]},
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
            "spec": obj["spec"]["template"]["spec"],
        }
        self._core.create_namespaced_pod(namespace, pod, field_manager=MANAGER)
        succeeded = done.returncode == 0
        self._core.patch_namespaced_pod_status(
            pod_name,
            namespace,
            {
                "status": {
                    "phase": "Succeeded" if succeeded else "Failed",
                    "containerStatuses": [
                        {
                            "name": container["name"],
                            "image": container["image"],
                            "imageID": "",
                            "ready": False,
                            "restartCount": 0,
                            "state": {
                                "terminated": {
                                    "exitCode": done.returncode,
                                    "reason": "Completed" if succeeded else "Error",
                                    "startedAt": started,
                                    "finishedAt": _now(),
                                }
                            },
                        }
                    ],
                }
            },
            field_manager="kubelet",
            _content_type="application/merge-patch+json",
        )
        if self._double is not None:
            self._double.set_pod_log(
                namespace=namespace, pod=pod_name, text=done.stdout + done.stderr
            )
        condition = "Complete" if succeeded else "Failed"
        self._batch.patch_namespaced_job_status(
            meta["name"],
            namespace,
            {
                "status": {
                    "startTime": started,
                    "completionTime": _now() if succeeded else None,
                    "succeeded": 1 if succeeded else None,
                    "failed": None if succeeded else 1,
                    "conditions": [
                        {
                            "type": condition,
                            "status": "True",
                            "reason": "Completed" if succeeded else "BackoffLimitExceeded",
                            "message": ""
                            if succeeded
                            else "Job has reached the specified backoff limit",
                            "lastProbeTime": _now(),
                            "lastTransitionTime": _now(),
                        }
                    ],
                }
            },
            field_manager=MANAGER,
            _content_type="application/merge-patch+json",
        )
