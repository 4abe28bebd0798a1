"""A model's node cache on a Kubernetes cluster: its DaemonSet applied, awaited, removed.

Core renders the DaemonSet (reconciler.core.render.cache); here it is applied with
server-side apply under the driver's field manager (after the Secret with a gated repo's
token, when there is one) and watched until every node it is scheduled on has a Ready pod
at the current generation, which is when the node holds the files. Blocking calls, run
by the driver on its worker threads.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from reconciler.drivers.clusters import protocol

APPLY = "application/apply-patch+yaml"


def daemonset_state(obj: Mapping[str, Any]) -> protocol.CacheObservation:
    """How far a cache DaemonSet is: ready once every scheduled node has a Ready pod of
    the current generation."""
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    name = str(meta.get("name"))
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 1):
        return protocol.CacheObservation(name, False, 0, 0, "its new generation is not seen yet")
    desired = int(status.get("desiredNumberScheduled") or 0)
    ready = int(status.get("numberReady") or 0)
    updated = int(status.get("updatedNumberScheduled") or 0)
    if desired == 0:
        return protocol.CacheObservation(name, False, 0, 0, "no node runs it yet")
    done = ready >= desired and updated >= desired
    message = f"{ready} of {desired} node(s) hold the files"
    return protocol.CacheObservation(name, done, desired, min(ready, updated), message)


class NodeCaches:
    """Cache DaemonSets of one namespace."""

    def __init__(
        self, api: client.ApiClient, *, namespace: str, field_manager: str, timeout_s: float
    ) -> None:
        self._apps: Any = client.AppsV1Api(api)
        self._core: Any = client.CoreV1Api(api)
        self.namespace = namespace
        self.field_manager = field_manager
        self._timeout = timeout_s

    def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(
            self._server_side_apply(self._apps.patch_namespaced_daemon_set, manifest).data
        )
        return found

    def _server_side_apply(self, patch: Any, manifest: Mapping[str, Any]) -> Any:
        """``manifest`` in our namespace, applied under our field manager (forced)."""
        body = copy.deepcopy(dict(manifest))
        body["metadata"]["namespace"] = self.namespace
        return patch(
            body["metadata"]["name"],
            self.namespace,
            body,
            field_manager=self.field_manager,
            force=True,
            _content_type=APPLY,
            _request_timeout=self._timeout,
            _preload_content=False,
        )

    def read(self, name: str) -> dict[str, Any] | None:
        try:
            result = self._apps.read_namespaced_daemon_set(
                name, self.namespace, _request_timeout=self._timeout, _preload_content=False
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        found: dict[str, Any] = json.loads(result.data)
        return found

    def wait(
        self, name: str, *, deadline: float, every_s: float = 1.0
    ) -> protocol.CacheObservation:
        """The cache once ready, or as it is at ``deadline``."""
        while True:
            found = self.read(name)
            seen = (
                daemonset_state(found)
                if found is not None
                else protocol.CacheObservation(name, False, 0, 0, "its DaemonSet is gone")
            )
            if seen.ready or time.monotonic() >= deadline:
                return seen
            time.sleep(min(every_s, max(deadline - time.monotonic(), 0.0)))

    def delete(self, name: str) -> bool:
        return _deleted(
            self._apps.delete_namespaced_daemon_set, name, self.namespace, self._timeout
        )

    def apply_secret(self, manifest: Mapping[str, Any]) -> None:
        """Apply the Secret with a cache puller's token. A refusal is reported by its
        status and reason only: the API's answer could quote the body, which holds it."""
        name = manifest["metadata"]["name"]
        try:
            self._server_side_apply(self._core.patch_namespaced_secret, manifest)
        except ApiException as error:
            raise protocol.ClusterError(
                f"the API refused Secret {self.namespace}/{name} (HTTP {error.status} "
                f"{error.reason}); the service account must be allowed to apply Secrets there"
            ) from None

    def delete_secret(self, name: str) -> bool:
        return _deleted(self._core.delete_namespaced_secret, name, self.namespace, self._timeout)


def _deleted(delete: Any, name: str, namespace: str, timeout: float) -> bool:
    """Delete one object; False when it was not there."""
    try:
        delete(name, namespace, _request_timeout=timeout, _preload_content=False)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True
