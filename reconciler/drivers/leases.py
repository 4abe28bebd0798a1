"""Leases and handover ConfigMaps in the daemon's own namespace, through the kubernetes client.

The sharded daemon coordinates through the Kubernetes API only: one
``coordination.k8s.io/v1`` Lease per shard and one per replica (its heartbeat), written
with ``resourceVersion`` preconditions so that of two replicas racing for a lease exactly
one wins (the other gets :class:`LeaseConflict`), and one ConfigMap (or a few, when
large) per shard holding the shard's handover: what the next holder needs to continue
its objects' chains (reconciler.daemon.shard_handover writes and reads it).

This module only speaks the API: the election rules (who may take a lease when) are the
daemon's (reconciler.daemon.lease_elector). Every call is synchronous with a short
timeout, so a partitioned replica notices in seconds; callers run it on a thread.
Timestamps are written as the API's MicroTime (RFC 3339 with six fraction digits).
Failures leave as this module's own errors, never with the token in the message.
"""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeVar

import urllib3.exceptions
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.config import incluster_config
from kubernetes.config.config_exception import ConfigException

from reconciler.drivers.clusters import kubernetes_errors as errors
from reconciler.drivers.clusters.kubernetes import load_configuration
from reconciler.drivers.lease_records import (
    BlobRecord,
    LeaseConfigError,
    LeaseConflict,
    LeaseError,
    LeaseForbidden,
    LeaseRecord,
    LeaseUnavailable,
    LeaseWrite,
    micro_time,
    parse_time,
)

_T = TypeVar("_T")
USER_AGENT = "reconciler-sharding"


class CoordinationApi:
    """Leases and ConfigMaps of one namespace; see the module docstring.

    ``kubeconfig`` is kubeconfig YAML text (a secret's value); without it the pod's
    service account is used (in-cluster configuration).
    """

    def __init__(
        self,
        *,
        namespace: str,
        kubeconfig: str | None = None,
        context: str | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        try:
            if kubeconfig is not None:
                configuration = load_configuration(kubeconfig, context=context)
            else:
                configuration = client.Configuration()
                incluster_config.load_incluster_config(  # type: ignore[no-untyped-call]
                    client_configuration=configuration
                )
        except errors.KubeconfigError as exc:
            raise LeaseConfigError(f"sharding: {exc}") from None
        except ConfigException as exc:
            raise LeaseConfigError(
                f"sharding: no kubeconfig was given and this is not a pod with a service "
                f"account ({exc}); set sharding.kubeconfig or run the daemon in the cluster"
            ) from None
        configuration.retries = 0  # a lease call that fails is retried at the next tick
        token = str(configuration.api_key.get("authorization", "")) or str(
            configuration.api_key.get("BearerToken", "")
        )
        self._scrub = errors.Scrubber([token, token.removeprefix("Bearer ").strip()])
        self._api = client.ApiClient(configuration)
        self._api.user_agent = USER_AGENT  # names the daemon in the API server's audit log
        self._coordination: Any = client.CoordinationV1Api(self._api)
        self._core: Any = client.CoreV1Api(self._api)
        self.namespace = namespace
        self.timeout_s = timeout_s
        self.server = redact_url(str(configuration.host))

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]

    # -- leases --------------------------------------------------------------------------

    def get_lease(self, name: str) -> LeaseRecord | None:
        try:
            found = self._call(
                f"read Lease {self.namespace}/{name}",
                lambda: self._coordination.read_namespaced_lease(
                    name, self.namespace, _request_timeout=self.timeout_s
                ),
            )
        except _NotFound:
            return None
        return _lease(found)

    def list_leases(self, label_selector: str) -> list[LeaseRecord]:
        found = self._call(
            f"list Leases in {self.namespace} ({label_selector})",
            lambda: self._coordination.list_namespaced_lease(
                self.namespace, label_selector=label_selector, _request_timeout=self.timeout_s
            ),
        )
        return [_lease(item) for item in found.items]

    def create_lease(self, name: str, write: LeaseWrite) -> LeaseRecord:
        """Create it; LeaseConflict when it exists (someone else created it first)."""
        body = _lease_body(name, write, resource_version=None)
        created = self._call(
            f"create Lease {self.namespace}/{name}",
            lambda: self._coordination.create_namespaced_lease(
                self.namespace, body, _request_timeout=self.timeout_s
            ),
        )
        return _lease(created)

    def update_lease(self, current: LeaseRecord, write: LeaseWrite) -> LeaseRecord:
        """Replace it, provided it is still at ``current``'s resourceVersion."""
        body = _lease_body(current.name, write, resource_version=current.resource_version)
        updated = self._call(
            f"update Lease {self.namespace}/{current.name}",
            lambda: self._coordination.replace_namespaced_lease(
                current.name, self.namespace, body, _request_timeout=self.timeout_s
            ),
        )
        return _lease(updated)

    # -- handover blobs (ConfigMaps) -----------------------------------------------------

    def get_blob(self, name: str) -> BlobRecord | None:
        try:
            found = self._call(
                f"read ConfigMap {self.namespace}/{name}",
                lambda: self._core.read_namespaced_config_map(
                    name, self.namespace, _request_timeout=self.timeout_s
                ),
            )
        except _NotFound:
            return None
        return _blob(found)

    def list_blob_names(self, label_selector: str) -> list[str]:
        found = self._call(
            f"list ConfigMaps in {self.namespace} ({label_selector})",
            lambda: self._core.list_namespaced_config_map(
                self.namespace, label_selector=label_selector, _request_timeout=self.timeout_s
            ),
        )
        return [str(item.metadata.name) for item in found.items]

    def put_blob(
        self,
        name: str,
        data: Mapping[str, bytes],
        *,
        labels: Mapping[str, str],
        annotations: Mapping[str, str],
        expect: str | None,
    ) -> str:
        """Create (``expect`` None) or replace at resourceVersion ``expect``; returns the
        new resourceVersion. LeaseConflict when another writer got there first."""
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": dict(labels),
                "annotations": dict(annotations),
            },
            "binaryData": {key: base64.b64encode(value).decode() for key, value in data.items()},
        }
        if expect is None:
            written = self._call(
                f"create ConfigMap {self.namespace}/{name}",
                lambda: self._core.create_namespaced_config_map(
                    self.namespace, body, _request_timeout=self.timeout_s
                ),
            )
        else:
            body["metadata"]["resourceVersion"] = expect
            written = self._call(
                f"update ConfigMap {self.namespace}/{name}",
                lambda: self._core.replace_namespaced_config_map(
                    name, self.namespace, body, _request_timeout=self.timeout_s
                ),
            )
        return str(written.metadata.resource_version)

    def delete_blob(self, name: str) -> None:
        try:
            self._call(
                f"delete ConfigMap {self.namespace}/{name}",
                lambda: self._core.delete_namespaced_config_map(
                    name, self.namespace, _request_timeout=self.timeout_s
                ),
            )
        except _NotFound:
            return

    # -- errors --------------------------------------------------------------------------

    def _call(self, action: str, call: Callable[[], _T]) -> _T:
        """``call``, its failures as this module's errors; a 404 of a read is _NotFound
        (the readers' None), of a write a LeaseError naming the namespace."""
        try:
            return call()
        except ApiException as exc:
            if exc.status == 404 and action.startswith(("read ", "delete ")):
                raise _NotFound(action) from None
            if exc.status == 404:
                raise LeaseError(
                    self._scrub(
                        f"{action}: HTTP 404 {errors.describe(exc)} (does the "
                        f"namespace {self.namespace!r} exist?)"
                    )
                ) from None
            self._raise(exc, action)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise LeaseUnavailable(
                self._scrub(
                    f"{action}: the API server {self.server} did not answer ({type(exc).__name__})"
                )
            ) from None

    def _raise(self, exc: ApiException, action: str) -> NoReturn:
        status = exc.status or 0
        text = self._scrub(f"{action}: HTTP {status} {errors.describe(exc)}")
        if status == 409:
            raise LeaseConflict(text) from None
        if status in {401, 403}:
            raise LeaseForbidden(
                f"{text}; the service account needs the permissions of deploy/kubernetes/rbac.yaml"
            ) from None
        if status in {0, 429} or status >= 500:
            raise LeaseUnavailable(text) from None
        raise LeaseError(text) from None


class _NotFound(Exception):
    """404, turned into None by the readers."""


def redact_url(url: str) -> str:
    """``url`` without user information."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urllib.parse.urlunsplit((parts.scheme, host + port, parts.path, "", ""))


def _lease_body(name: str, write: LeaseWrite, *, resource_version: str | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "labels": dict(write.labels),
        "annotations": dict(write.annotations),
    }
    if resource_version is not None:
        metadata["resourceVersion"] = resource_version
    spec: dict[str, Any] = {
        "leaseDurationSeconds": write.duration_s,
        "leaseTransitions": write.transitions,
    }
    if write.holder:
        spec["holderIdentity"] = write.holder
    if write.acquire_time is not None:
        spec["acquireTime"] = micro_time(write.acquire_time)
    if write.renew_time is not None:
        spec["renewTime"] = micro_time(write.renew_time)
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": spec,
    }


def _lease(obj: Any) -> LeaseRecord:
    spec = obj.spec
    meta = obj.metadata
    return LeaseRecord(
        name=str(meta.name),
        holder=(spec.holder_identity or None) if spec is not None else None,
        duration_s=int((spec.lease_duration_seconds if spec is not None else None) or 0),
        transitions=int((spec.lease_transitions if spec is not None else None) or 0),
        acquire_time=parse_time(spec.acquire_time) if spec is not None else None,
        renew_time=parse_time(spec.renew_time) if spec is not None else None,
        resource_version=str(meta.resource_version),
        labels=dict(meta.labels or {}),
        annotations=dict(meta.annotations or {}),
    )


def _blob(obj: Any) -> BlobRecord:
    meta = obj.metadata
    raw = obj.binary_data or {}
    return BlobRecord(
        name=str(meta.name),
        data={key: base64.b64decode(value) for key, value in raw.items()},
        labels=dict(meta.labels or {}),
        annotations=dict(meta.annotations or {}),
        resource_version=str(meta.resource_version),
    )
