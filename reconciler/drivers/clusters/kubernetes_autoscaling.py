"""The cluster's own autoscaler for a Kubernetes endpoint, and who owns ``replicas``.

A Deployment with ``autoscaling`` gets the HorizontalPodAutoscaler or KEDA ScaledObject
that core rendered (``EndpointSpec.manifests``), aimed at the Deployment of the revision
that serves (``NAME-REV``, a new name at each rollout: re-aimed once the rollout is done)
and removed when the spec drops autoscaling or the endpoint goes.

``spec.replicas`` is then the autoscaler's. The driver's applies leave it out (so the
manifest it records, which drift is found against, has none, and the autoscaler's changes
are never drift), and set it only under a field manager of its own,
``reconciler-replicas``, as Kubernetes advises for handing a field over: a new revision
starts with the serving revision's worker count (within the bounds), and a Deployment
that was applied with ``replicas`` before keeps its count when autoscaling takes over,
instead of falling back to one when the main manager stops applying the field.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from reconciler.drivers.clusters import protocol

HPA = "HorizontalPodAutoscaler"
SCALED_OBJECT = "ScaledObject"
KINDS = (HPA, SCALED_OBJECT)
KEDA_GROUP, KEDA_VERSION, KEDA_PLURAL = "keda.sh", "v1alpha1", "scaledobjects"
REPLICAS_MANAGER = "reconciler-replicas"
KIND_ANNOTATION = "reconciler/autoscaler"
"""On a revision's Deployment: the kind of autoscaler object aimed at it, if any."""
APPLY = "application/apply-patch+yaml"


def wanted(spec: protocol.EndpointSpec) -> dict[str, Any] | None:
    """The autoscaler object core rendered for ``spec`` (a copy), None without autoscaling."""
    if spec.autoscaling is None:
        return None
    for kind in KINDS:
        manifest = spec.manifests.get(kind)
        if manifest is not None:
            return copy.deepcopy(dict(manifest))
    raise protocol.InvalidEndpointError(
        f"endpoint {spec.name}: autoscaling is set, and no HorizontalPodAutoscaler or "
        "ScaledObject was rendered for it"
    )


def initial_replicas(spec: protocol.EndpointSpec, serving: Mapping[str, Any] | None) -> int:
    """A new revision's first worker count: the serving revision's, within the bounds."""
    policy = spec.autoscaling
    assert policy is not None
    count = spec.workers
    if serving is not None:
        count = int((serving.get("spec") or {}).get("replicas") or count)
    return min(max(count, policy.min_workers), policy.max_workers)


def _json(response: Any) -> dict[str, Any]:
    """The body of a call made with ``_preload_content=False``."""
    body = json.loads(response.data)
    if not isinstance(body, dict):
        raise protocol.ClusterError("the API server answered with a non-object body")
    return body


class Autoscalers:
    """Applies, reads and deletes one namespace's autoscaler objects (blocking calls)."""

    def __init__(
        self,
        api: client.ApiClient,
        *,
        namespace: str,
        field_manager: str,
        timeout_s: float,
        labels_selector: str,
    ) -> None:
        self._hpa: Any = client.AutoscalingV2Api(api)
        self._custom: Any = client.CustomObjectsApi(api)
        self._apps: Any = client.AppsV1Api(api)
        self.namespace = namespace
        self.field_manager = field_manager
        self._timeout = timeout_s
        self._selector = labels_selector

    def _options(self, manager: str) -> dict[str, Any]:
        return {
            "field_manager": manager,
            "force": True,
            "_content_type": APPLY,
            "_request_timeout": self._timeout,
        }

    def apply(self, manifest: Mapping[str, Any], *, target: str) -> dict[str, Any]:
        """Apply ``manifest`` aimed at Deployment ``target``; the object as stored."""
        body = copy.deepcopy(dict(manifest))
        body["metadata"]["namespace"] = self.namespace
        body["spec"]["scaleTargetRef"]["name"] = target
        name = body["metadata"]["name"]
        if body["kind"] == HPA:
            result = self._hpa.patch_namespaced_horizontal_pod_autoscaler(
                name, self.namespace, body, **self._options(self.field_manager)
            )
            return dict(self._hpa.api_client.sanitize_for_serialization(result))
        found = self._custom.patch_namespaced_custom_object(
            KEDA_GROUP,
            KEDA_VERSION,
            self.namespace,
            KEDA_PLURAL,
            name,
            body,
            _preload_content=False,  # the client would answer None for a custom object
            **self._options(self.field_manager),
        )
        return _json(found)

    def delete(self, kind: str, name: str) -> bool:
        """Delete ours of ``kind`` named ``name``; False when there was none (or no KEDA)."""
        try:
            if kind == HPA:
                self._hpa.delete_namespaced_horizontal_pod_autoscaler(
                    name, self.namespace, _request_timeout=self._timeout, _preload_content=False
                )
            else:
                self._custom.delete_namespaced_custom_object(
                    KEDA_GROUP,
                    KEDA_VERSION,
                    self.namespace,
                    KEDA_PLURAL,
                    name,
                    _request_timeout=self._timeout,
                    _preload_content=False,
                )
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    def sync(
        self, spec: protocol.EndpointSpec, *, target: str, previous: set[str]
    ) -> dict[str, Any] | None:
        """The autoscaler ``spec`` asks for, aimed at ``target``, and none of the
        ``previous`` kinds (those the endpoint's Deployments say they had) left beside it;
        the applied object (None: autoscaling is off)."""
        manifest = wanted(spec)
        keep = manifest["kind"] if manifest is not None else None
        for kind in KINDS:
            if kind != keep and kind in previous:
                self.delete(kind, spec.name)
        if manifest is None:
            return None
        return self.apply(manifest, target=target)

    def hand_over_replicas(self, name: str, replicas: int) -> dict[str, Any]:
        """Set Deployment ``name``'s replicas under REPLICAS_MANAGER (the main manager then
        leaves the field to it and to the autoscaler); the Deployment as stored."""
        body = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"replicas": replicas},
        }
        result = self._apps.patch_namespaced_deployment(
            name, self.namespace, body, _preload_content=False, **self._options(REPLICAS_MANAGER)
        )
        return _json(result)

    def prune(self, *, keep: set[str], owner_label: str, only: str | None) -> int:
        """Delete ours whose owner is not in ``keep`` (only ``only``'s when given)."""
        selector = self._selector if only is None else f"{self._selector}={only}"
        removed = 0
        listings: list[tuple[str, list[dict[str, Any]]]] = []
        hpas = self._hpa.list_namespaced_horizontal_pod_autoscaler(
            self.namespace, label_selector=selector, _request_timeout=self._timeout
        )
        raw = self._hpa.api_client.sanitize_for_serialization(hpas)
        listings.append((HPA, list(raw.get("items") or [])))
        try:
            scaled = self._custom.list_namespaced_custom_object(
                KEDA_GROUP,
                KEDA_VERSION,
                self.namespace,
                KEDA_PLURAL,
                label_selector=selector,
                _request_timeout=self._timeout,
                _preload_content=False,
            )
            listings.append((SCALED_OBJECT, list(_json(scaled).get("items") or [])))
        except ApiException as error:
            if error.status != 404:  # 404: KEDA is not installed, so none of ours
                raise
        for kind, items in listings:
            for item in items:
                labels = (item.get("metadata") or {}).get("labels") or {}
                if labels.get(owner_label) in keep:
                    continue
                removed += int(self.delete(kind, str(item["metadata"]["name"])))
        return removed
