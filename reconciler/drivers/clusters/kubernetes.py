"""The cluster driver for Kubernetes, through the official client.

It applies the manifests that core rendered (a Deployment and a Service per endpoint)
with server-side apply under our field manager and ``force=true``, as Kubernetes advises
controllers; the take-over of a field another manager changed is what drift reports.
The kubeconfig comes as YAML text (the secret's value): nothing is read from
``KUBECONFIG``, ``~/.kube`` or the in-cluster account. The client is synchronous, so each
call runs in a worker thread; every failure leaves as a ``ClusterError`` whose message
never holds the token.

``strategy: green`` keeps one Deployment per revision (``NAME-REV``, REV a hash of the pod
template): the Service keeps selecting the serving revision until the new one is ready,
then switches to it and the old revisions are removed; a failed rollout removes the new
revision and leaves the old one serving. ``recreate`` keeps one Deployment, ``NAME``.
With autoscaling, the rendered HPA or ScaledObject is aimed at the serving revision's
Deployment after each rollout, and ``replicas`` is left to it (kubernetes_autoscaling).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import yaml
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.config import kube_config
from kubernetes.config.config_exception import ConfigException

from reconciler.drivers.clusters import kubernetes_autoscaling as autoscalers
from reconciler.drivers.clusters import (
    kubernetes_cache,
    kubernetes_gate,
    kubernetes_jobs,
    kubernetes_scale,
    kubernetes_watch,
    protocol,
    rollout_gate,
)
from reconciler.drivers.clusters import kubernetes_drift as drift
from reconciler.drivers.clusters import kubernetes_errors as errors

FIELD_MANAGER = "reconciler"
_log = logging.getLogger("reconciler.drivers.kubernetes")
OWNER_LABEL = "reconciler/deployment"
REVISION_LABEL = "reconciler/revision"
TARGET_ANNOTATION = "reconciler/target-revision"
INGRESS_ANNOTATION = "reconciler/ingress"
"""On the Service: an Ingress of that name leads to it (removed when the Cluster's
ingress_url goes)."""
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
APPLY = "application/apply-patch+yaml"
_T = TypeVar("_T")


def _manifest(spec: protocol.EndpointSpec, kind: str) -> dict[str, Any]:
    """A copy of the ``kind`` manifest core rendered for ``spec``; InvalidEndpointError if none."""
    manifest = spec.manifests.get(kind)
    if manifest is None:
        raise protocol.InvalidEndpointError(
            f"endpoint {spec.name}: the kubernetes driver applies rendered manifests, and "
            f"none of kind {kind} was given (it has: {', '.join(sorted(spec.manifests)) or 'none'})"
        )
    return copy.deepcopy(dict(manifest))


def load_configuration(kubeconfig: str, *, context: str | None) -> client.Configuration:
    """A client configuration from kubeconfig YAML text (``context`` or current-context)."""
    try:
        document = yaml.safe_load(kubeconfig)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise errors.KubeconfigError(f"the kubeconfig is not valid YAML{where}") from None
    if not isinstance(document, dict):
        raise errors.KubeconfigError("the kubeconfig is not a YAML mapping")
    contexts = [c.get("name") for c in document.get("contexts") or [] if isinstance(c, dict)]
    if context is not None and context not in contexts:
        raise errors.KubeconfigError(
            f"the kubeconfig has no context {context!r} (it has: {', '.join(map(str, contexts))})"
        )
    if context is None and not document.get("current-context"):
        raise errors.KubeconfigError(
            "the kubeconfig sets no current-context; name one in the Cluster's kubeconfig.context"
        )
    configuration = client.Configuration()
    try:
        loader = kube_config.KubeConfigLoader(  # type: ignore[no-untyped-call]
            config_dict=document, active_context=context
        )
        loader.load_and_set(configuration)  # type: ignore[no-untyped-call]
    except (ConfigException, ValueError, KeyError, TypeError) as error:
        raise errors.KubeconfigError(
            f"the kubeconfig cannot be used: {type(error).__name__}"
        ) from None
    configuration.debug = False
    return configuration


def revision_of(manifest: Mapping[str, Any]) -> str:
    """A short hash of the pod template: a new one means a new revision (replicas excluded)."""
    template = manifest.get("spec", {}).get("template", {})
    encoded = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:10]


def rollout_state(obj: Mapping[str, Any]) -> tuple[bool, str | None, str]:
    """(complete, failure reason or None, progress message) of a Deployment as a dict."""
    meta, spec, status = obj.get("metadata", {}), obj.get("spec", {}), obj.get("status") or {}
    desired = int(spec.get("replicas", 1))
    generation = int(meta.get("generation", 1))
    observed = int(status.get("observedGeneration") or 0)
    counts = {k: int(status.get(k) or 0) for k in ("replicas", "updatedReplicas")}
    counts |= {k: int(status.get(k) or 0) for k in ("readyReplicas", "availableReplicas")}
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == (
            "ProgressDeadlineExceeded"
        ):
            return False, f"{condition.get('reason')}: {condition.get('message')}", ""
    if observed < generation:
        return False, None, f"waiting for generation {generation} to be observed ({observed})"
    complete = all(value == desired for value in counts.values())
    message = (
        f"{counts['updatedReplicas']} updated, {counts['readyReplicas']} ready, "
        f"{counts['availableReplicas']} available of {desired}"
    )
    return complete, None, message


def _settled(obj: Mapping[str, Any]) -> bool:
    """Whether a Deployment's rollout is over: complete, or failed."""
    complete, failure, _ = rollout_state(obj)
    return complete or failure is not None


def _name(obj: Mapping[str, Any]) -> str:
    return str(obj["metadata"]["name"])


def _autoscaler_status(scaler: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What a Deployment's status says of its autoscaler object (None: it has none)."""
    if scaler is None:
        return None
    spec = scaler.get("spec") or {}
    status = scaler.get("status") or {}
    found: dict[str, Any] = {
        "kind": scaler.get("kind"),
        "name": (scaler.get("metadata") or {}).get("name"),
        "target": (spec.get("scaleTargetRef") or {}).get("name"),
        "min_workers": spec.get("minReplicas", spec.get("minReplicaCount")),
        "max_workers": spec.get("maxReplicas", spec.get("maxReplicaCount")),
    }
    for key, field in (
        ("current_workers", "currentReplicas"),
        ("desired_workers", "desiredReplicas"),
    ):
        if status.get(field) is not None:
            found[key] = status[field]
    return found


class KubernetesDriver:
    """One Kubernetes cluster; endpoints live in ``namespace`` (created when missing)."""

    def __init__(
        self,
        *,
        kubeconfig: str,
        context: str | None,
        namespace: str,
        field_manager: str = FIELD_MANAGER,
        request_timeout_s: float = 30.0,
        watch_chunk_s: int = 30,
        max_threads: int = 32,
    ) -> None:
        configuration = load_configuration(kubeconfig, context=context)
        configuration.connection_pool_maxsize = max_threads
        token = configuration.api_key.get("BearerToken", "")
        self._scrub = errors.Scrubber([token, token.removeprefix("Bearer ").strip()])
        self._api = client.ApiClient(configuration)
        # Typed loosely: the driver speaks JSON-shaped dicts to the API (apply bodies,
        # sanitized results), which the generated signatures do not describe.
        self._core: Any = client.CoreV1Api(self._api)
        self._apps: Any = client.AppsV1Api(self._api)
        self._batch: Any = client.BatchV1Api(self._api)
        self._networking: Any = client.NetworkingV1Api(self._api)
        self.namespace = namespace
        self.field_manager = field_manager
        self._timeout = request_timeout_s
        self._watch_chunk_s = watch_chunk_s
        self._namespace_ready = False
        # Blocking client calls (a readiness watch holds one for its whole wait) run on
        # threads of this cluster's own, not the loop's small default pool.
        self._threads = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_threads, thread_name_prefix=f"k8s-{namespace}"
        )
        self._relists = 0
        self._autoscalers = autoscalers.Autoscalers(
            self._api,
            namespace=namespace,
            field_manager=field_manager,
            timeout_s=request_timeout_s,
            labels_selector=f"app.kubernetes.io/managed-by=reconciler,{OWNER_LABEL}",
        )
        self._caches = kubernetes_cache.NodeCaches(
            self._api,
            namespace=namespace,
            field_manager=field_manager,
            timeout_s=request_timeout_s,
        )
        self._rollouts = kubernetes_watch.DeploymentWatch(
            lister=self._apps.list_namespaced_deployment,
            namespace=namespace,
            label_selector=OWNER_LABEL,
            settled=_settled,
            chunk_s=watch_chunk_s,
            request_timeout_s=request_timeout_s,
        )
        self._scales = kubernetes_scale.ScaleTracker(
            owner_label=OWNER_LABEL,
            ours=frozenset({field_manager, autoscalers.REPLICAS_MANAGER}),
        )
        self._scale_listeners: list[protocol.ScaleListener] = []
        self._rollouts.on_any = self._seen_replicas

    def add_scale_listener(self, listener: protocol.ScaleListener) -> None:
        """Tell ``listener(endpoint, observation)`` (on the watch's thread) when the
        cluster's autoscaler changes a serving Deployment's replicas; the observation is
        the Deployment as the watch saw it, its newest scale event last."""
        self._scale_listeners.append(listener)
        self._rollouts.start()

    def _seen_replicas(self, name: str, obj: dict[str, Any] | None, quiet: bool) -> None:
        found = self._scales.seen(name, obj, ours_changing=quiet)
        if found is None or obj is None:
            return
        endpoint, _ = found
        complete, _, _ = rollout_state(obj)
        seen = protocol.EndpointObservation(
            name=endpoint,
            exists=True,
            workers_desired=int((obj.get("spec") or {}).get("replicas", 1)),
            workers_ready=int((obj.get("status") or {}).get("readyReplicas") or 0),
            ready=complete,
            endpoint_url=None,
            message="scaled by the cluster's autoscaler",
            scale_events=self._scales.events(endpoint),
        )
        for listener in list(self._scale_listeners):
            try:
                listener(endpoint, seen)
            except Exception:
                _log.exception("endpoint %s: a scale listener failed", endpoint)

    def watch_drift(self, listener: protocol.DriftListener) -> None:
        """Report drift of managed Deployments as the watch sees it (on the watch's thread,
        or a rollout's): a field we applied changed, or the object was deleted, while no
        rollout of ours was changing it; or a change a rollout's apply overwrote before
        the watch showed it (``reapplied``). The listener gets the endpoint's name (our
        Deployment's)."""

        def seen(_name: str, obj: dict[str, Any] | None, replaced: bool) -> None:
            if obj is None:
                return  # a deletion names no owner here; the resync re-applies it
            labels = (obj.get("metadata") or {}).get("labels") or {}
            owner = labels.get(OWNER_LABEL)
            if not isinstance(owner, str):
                return
            found = drift.find_drift(obj, ours=self.field_manager)
            if found:
                listener(owner, [dataclasses.replace(d, reapplied=replaced) for d in found])

        self._rollouts.on_event = seen
        self._rollouts.start()

    @property
    def relists(self) -> int:
        """How often a readiness watch had to re-list (410 Gone or an ended watch)."""
        return self._relists + self._rollouts.relists

    # ------------------------------------------------------------------ plumbing
    async def _call(self, action: str, function: Callable[[], _T]) -> _T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._threads, function)
        except Exception as error:
            if isinstance(error, protocol.ClusterError):
                raise
            errors.raise_for(error, action=action, scrub=self._scrub)

    def _stage(self, action: str, function: Callable[[], _T]) -> _T:
        """``function`` in a worker thread already, its failure named by ``action``."""
        try:
            return function()
        except Exception as error:
            if isinstance(error, protocol.ClusterError):
                raise
            errors.raise_for(error, action=action, scrub=self._scrub)

    @staticmethod
    def _json(response: Any) -> dict[str, Any]:
        """The body of a call made with ``_preload_content=False``, as JSON: the client's
        model objects are skipped, which costs most of a call's CPU for large objects."""
        body = json.loads(response.data)
        if not isinstance(body, dict):
            raise protocol.ClusterError("the API server answered with a non-object body")
        return body

    def _dict(self, obj: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._api.sanitize_for_serialization(  # type: ignore[no-untyped-call]
            obj
        )
        return result

    def _apply_sync(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(dict(manifest))
        body["metadata"]["namespace"] = self.namespace
        annotations = body["metadata"].get("annotations") or {}
        annotations.pop(drift.APPLIED_ANNOTATION, None)
        if not annotations:
            body["metadata"].pop("annotations", None)
        applied = json.dumps(body, sort_keys=True)
        body["metadata"].setdefault("annotations", {})[drift.APPLIED_ANNOTATION] = applied
        name = body["metadata"]["name"]
        options = {
            "field_manager": self.field_manager,
            "force": True,
            "_content_type": APPLY,
            "_request_timeout": self._timeout,
            "_preload_content": False,
        }
        if body["kind"] == "Deployment":
            result = self._apps.patch_namespaced_deployment(name, self.namespace, body, **options)
        elif body["kind"] == "Service":
            result = self._core.patch_namespaced_service(name, self.namespace, body, **options)
        elif body["kind"] == "Ingress":
            ingresses = self._networking
            result = ingresses.patch_namespaced_ingress(name, self.namespace, body, **options)
        else:
            raise protocol.InvalidEndpointError(f"cannot apply a {body['kind']}")
        return self._json(result)

    async def _apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        await self._ensure_namespace()
        return await self._call(self._apply_action(manifest), lambda: self._apply_sync(manifest))

    def _apply_action(self, manifest: Mapping[str, Any]) -> str:
        return f"apply {manifest['kind']} {self.namespace}/{manifest['metadata']['name']}"

    async def _ensure_namespace(self) -> None:
        if self._namespace_ready:
            return
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}

        def create() -> None:
            try:
                self._core.read_namespace(self.namespace, _request_timeout=self._timeout)
            except ApiException as error:
                if error.status != 404:
                    raise
                self._core.patch_namespace(
                    self.namespace,
                    body,
                    field_manager=self.field_manager,
                    _content_type=APPLY,
                    _request_timeout=self._timeout,
                )

        await self._call(f"create namespace {self.namespace}", create)
        self._namespace_ready = True

    def _list_deployments(self, name: str) -> list[dict[str, Any]]:
        listing = self._json(
            self._apps.list_namespaced_deployment(
                self.namespace,
                label_selector=f"{OWNER_LABEL}={name}",
                _request_timeout=self._timeout,
                _preload_content=False,
            )
        )
        return [dict(item) for item in listing.get("items") or []]

    def _read_service(self, name: str) -> dict[str, Any] | None:
        try:
            return self._json(
                self._core.read_namespaced_service(
                    name, self.namespace, _request_timeout=self._timeout, _preload_content=False
                )
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    # ----------------------------------------------------------------- protocol
    async def check(self) -> protocol.ClusterCheck:
        def version() -> str:
            return str(
                client.VersionApi(self._api).get_code(_request_timeout=self._timeout).git_version
            )

        try:
            return protocol.ClusterCheck(reachable=True, version=await self._call("check", version))
        except protocol.ClusterUnreachableError as error:
            return protocol.ClusterCheck(reachable=False, message=str(error))

    async def inventory(self) -> protocol.Inventory:
        def collect() -> protocol.Inventory:
            nodes = self._core.list_node(_request_timeout=self._timeout).items
            pods = self._core.list_pod_for_all_namespaces(_request_timeout=self._timeout).items
            used: dict[str, int] = {}
            for pod in pods:
                if pod.status is not None and pod.status.phase in {"Succeeded", "Failed"}:
                    continue
                node = pod.spec.node_name if pod.spec is not None else None
                if not node:
                    continue
                for container in pod.spec.containers or []:
                    limits = (container.resources.limits if container.resources else None) or {}
                    used[node] = used.get(node, 0) + int(limits.get(GPU_RESOURCE, 0))
            totals: dict[str, list[int]] = {}
            for node in nodes:
                allocatable = (node.status.allocatable if node.status else None) or {}
                count = int(allocatable.get(GPU_RESOURCE, 0))
                if not count:
                    continue
                gpu_type = (node.metadata.labels or {}).get(GPU_PRODUCT_LABEL, "unknown")
                entry = totals.setdefault(gpu_type, [0, 0])
                entry[0] += count
                entry[1] += max(count - used.get(node.metadata.name, 0), 0)
            return protocol.Inventory(
                gpus={
                    t: protocol.GpuCount(gpu_type=t, total=total, free=free)
                    for t, (total, free) in sorted(totals.items())
                }
            )

        return await self._call("list GPU nodes", collect)

    async def apply_endpoint(self, spec: protocol.EndpointSpec) -> protocol.EndpointObservation:
        """Apply the new revision (and, on first deploy, its Service); do not wait."""
        await self._ensure_namespace()
        deployments, service = await self._call(
            f"observe endpoint {spec.name}",
            lambda: (self._list_deployments(spec.name), self._read_service(spec.name)),
        )
        await self._call(
            f"apply endpoint {spec.name}",
            lambda: self._apply_revision(spec, service=service, deployments=deployments),
        )
        return await self.observe_endpoint(spec.name)

    def _apply_revision(
        self,
        spec: protocol.EndpointSpec,
        *,
        service: dict[str, Any] | None,
        deployments: list[dict[str, Any]],
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Apply the revision's Deployment, then the Service, which keeps selecting the
        revision the live ``service`` serves (the new one when there is none yet); both
        objects as the server answered the applies. Runs in a worker thread. With
        autoscaling, ``replicas`` is set only under the hand-over manager: kept for a
        Deployment that exists (``deployments``: the endpoint's, as listed), the serving
        revision's count for a new one."""
        deployment, revision = self._revision_manifest(spec)
        name = _name(deployment)
        serving = None
        if service is not None:
            serving = (service.get("spec", {}).get("selector") or {}).get(REVISION_LABEL)
        live = next((d for d in deployments if _name(d) == name), None)
        hand_over = self._autoscalers.hand_over_replicas
        if spec.autoscaling is not None and live is not None:
            replicas = int((live.get("spec") or {}).get("replicas") or spec.workers)
            self._stage(f"keep the replicas of {name}", lambda: hand_over(name, replicas))
        applied = self._stage(self._apply_action(deployment), lambda: self._apply_sync(deployment))
        if spec.autoscaling is not None and live is None:
            old = next(
                (d for d in deployments if d["metadata"]["labels"].get(REVISION_LABEL) == serving),
                None,
            )
            first = autoscalers.initial_replicas(spec, old)
            applied = self._stage(f"set the replicas of {name}", lambda: hand_over(name, first))
        selector = self._service_manifest(spec, select=serving or revision, target=revision)
        live_notes = kubernetes_gate.annotations_of(service)
        for kept in kubernetes_gate.KEPT_ANNOTATIONS:  # the last gate's verdict stays
            if kept in live_notes:
                selector["metadata"]["annotations"][kept] = live_notes[kept]
        routed = "Ingress" in spec.manifests  # the Cluster's ingress_url leads to the Service
        if routed:
            selector["metadata"]["annotations"][INGRESS_ANNOTATION] = spec.name
        selecting = self._stage(self._apply_action(selector), lambda: self._apply_sync(selector))
        if routed:
            ingress = _manifest(spec, "Ingress")
            self._stage(self._apply_action(ingress), lambda: self._apply_sync(ingress))
        elif INGRESS_ANNOTATION in ((service or {}).get("metadata", {}).get("annotations") or {}):
            self._stage(f"delete Ingress {spec.name}", lambda: self._delete_ingress(spec.name))
        return applied, selecting

    def _delete_ingress(self, name: str) -> None:
        self._delete_if_there(self._networking.delete_namespaced_ingress, name)

    def _delete_if_there(self, delete: Callable[..., Any], name: str) -> None:
        """``delete`` the object ``name`` in our namespace; one already gone is fine."""
        try:
            delete(name, self.namespace, _request_timeout=self._timeout)
        except ApiException as error:
            if error.status != 404:
                raise

    def _revision_manifest(self, spec: protocol.EndpointSpec) -> tuple[dict[str, Any], str]:
        manifest = _manifest(spec, "Deployment")
        manifest["spec"]["replicas"] = spec.workers
        scaler = autoscalers.wanted(spec)
        if scaler is not None:
            del manifest["spec"]["replicas"]  # the autoscaler's (kubernetes_autoscaling)
            annotations = manifest["metadata"].setdefault("annotations", {})
            annotations[autoscalers.KIND_ANNOTATION] = scaler["kind"]
        labels = {
            **manifest["metadata"].get("labels", {}),
            **spec.owner_labels,
            OWNER_LABEL: spec.name,
        }
        manifest["metadata"]["labels"] = labels
        template_labels = manifest["spec"]["template"]["metadata"].setdefault("labels", {})
        template_labels.update(labels)
        if spec.strategy == "recreate":
            manifest["metadata"]["name"] = spec.name
            manifest["spec"]["strategy"] = {"type": "Recreate"}
            manifest["spec"]["selector"] = {"matchLabels": {OWNER_LABEL: spec.name}}
            return manifest, ""
        revision = revision_of(manifest)
        manifest["metadata"]["name"] = f"{spec.name}-{revision}"
        manifest["metadata"]["labels"][REVISION_LABEL] = revision
        template_labels[REVISION_LABEL] = revision
        manifest["spec"]["selector"] = {
            "matchLabels": {OWNER_LABEL: spec.name, REVISION_LABEL: revision}
        }
        return manifest, revision

    def _service_manifest(
        self, spec: protocol.EndpointSpec, *, select: str, target: str
    ) -> dict[str, Any]:
        manifest = _manifest(spec, "Service")
        manifest["metadata"]["name"] = spec.name
        manifest["metadata"]["labels"] = {
            **manifest["metadata"].get("labels", {}),
            **spec.owner_labels,
            OWNER_LABEL: spec.name,
        }
        manifest["metadata"].setdefault("annotations", {})[TARGET_ANNOTATION] = target
        selector = {OWNER_LABEL: spec.name}
        if select:
            selector[REVISION_LABEL] = select
        manifest["spec"]["selector"] = selector
        return manifest

    async def observe_endpoint(self, name: str) -> protocol.EndpointObservation:
        def gather() -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
            return self._list_deployments(name), self._read_service(name)

        deployments, service = await self._call(f"observe endpoint {name}", gather)
        return self._observation(name, deployments, service)

    def _observation(
        self, name: str, deployments: list[dict[str, Any]], service: dict[str, Any] | None
    ) -> protocol.EndpointObservation:
        if not deployments and service is None:
            return protocol.EndpointObservation(
                name=name,
                exists=False,
                workers_desired=0,
                workers_ready=0,
                ready=False,
                endpoint_url=None,
                message="not found",
            )
        annotations = (service or {}).get("metadata", {}).get("annotations") or {}
        target = annotations.get(TARGET_ANNOTATION, "")
        serving = ((service or {}).get("spec", {}).get("selector") or {}).get(REVISION_LABEL, "")
        by_revision = {
            d["metadata"].get("labels", {}).get(REVISION_LABEL, ""): d for d in deployments
        }
        current = by_revision.get(target)
        drifts = self._drift(deployments, service)
        if current is None:
            return protocol.EndpointObservation(
                name=name,
                exists=True,
                workers_desired=0,
                workers_ready=0,
                ready=False,
                endpoint_url=None,
                drift=tuple(drifts),
                message=f"revision {target or '(none)'} has no Deployment",
            )
        complete, failure, progress = rollout_state(current)
        desired = int(current.get("spec", {}).get("replicas", 1))
        ready_count = int((current.get("status") or {}).get("readyReplicas") or 0)
        switched = serving == target and len(deployments) == 1
        ready = complete and switched and service is not None
        if failure:
            message = f"revision {target or name} failed: {failure}"
        elif not complete:
            message = f"rolling out revision {target or name}: {progress}"
        elif not switched:
            message = f"revision {target} ready; Service still selects {serving or '(none)'}"
        else:
            message = "ready"
        port = ((service or {}).get("spec", {}).get("ports") or [{}])[0].get("port")
        url = f"http://{name}.{self.namespace}.svc:{port}/v1" if ready and port else None
        container = (current["spec"]["template"]["spec"].get("containers") or [{}])[0]
        limits = (container.get("resources") or {}).get("limits") or {}
        requests = (container.get("resources") or {}).get("requests") or {}
        resources = protocol.WorkerResources(
            gpus=int(limits.get(GPU_RESOURCE, 0)),
            cpu=requests.get("cpu"),
            memory=limits.get("memory") or requests.get("memory"),
        )
        applied = tuple(
            protocol.AppliedObject(
                kind=kind,
                namespace=self.namespace,
                name=obj["metadata"]["name"],
            )
            for kind, obj in [*(("Deployment", d) for d in deployments), ("Service", service)]
            if obj is not None
        )
        return protocol.EndpointObservation(
            name=name,
            exists=True,
            workers_desired=desired,
            workers_ready=ready_count,
            ready=ready,
            endpoint_url=url,
            resources=resources,
            drift=tuple(drifts),
            message=message,
            applied=applied,
            scale_events=self._scales.events(name),
            rollout=kubernetes_gate.report_in(service),
        )

    def _drift(
        self, deployments: list[dict[str, Any]], service: dict[str, Any] | None
    ) -> tuple[protocol.Drift, ...]:
        return tuple(
            d
            for obj in [*deployments, service]
            if obj
            for d in drift.find_drift(obj, ours=self.field_manager)
        )

    async def wait_endpoint_ready(
        self, name: str, *, timeout_s: float
    ) -> protocol.EndpointObservation:
        """Watch the target revision until its rollout completes or fails, or time runs out.

        A watch that ends or answers 410 Gone is followed by a fresh list, then a new watch.
        Returns the observation at that point (``message`` says what is missing).
        """
        deadline = time.monotonic() + timeout_s
        service = await self._call("read Service", lambda: self._read_service(name))
        target = ((service or {}).get("metadata", {}).get("annotations") or {}).get(
            TARGET_ANNOTATION
        )
        deployment_name = f"{name}-{target}" if target else name
        await self._call(
            f"wait for Deployment {self.namespace}/{deployment_name}",
            lambda: self._watch_rollout(deployment_name, deadline),
        )
        return await self.observe_endpoint(name)

    def _watch_rollout(self, deployment_name: str, deadline: float) -> dict[str, Any] | None:
        """Watch one Deployment until its rollout completes or fails, or ``deadline``.

        Returns the Deployment as last seen (None: not seen). A watch that ends or answers
        410 Gone re-lists and goes on.
        """
        selector = f"metadata.name={deployment_name}"
        seen: dict[str, Any] | None = None
        version: str | None = None
        while seen is None or not _settled(seen):
            if time.monotonic() >= deadline:
                return seen
            if version is None:
                listing = self._json(
                    self._apps.list_namespaced_deployment(
                        self.namespace,
                        field_selector=selector,
                        _request_timeout=self._timeout,
                        _preload_content=False,
                    )
                )
                items = listing.get("items") or []
                seen = dict(items[0]) if items else None
                version = str(listing["metadata"]["resourceVersion"])
                continue
            remaining = max(int(deadline - time.monotonic()), 1)
            # Events as plain JSON: the client's model objects are not needed here.
            stream = watch.Watch(return_type="object").stream(  # type: ignore[no-untyped-call]
                self._apps.list_namespaced_deployment,
                self.namespace,
                field_selector=selector,
                resource_version=version,
                timeout_seconds=min(remaining, self._watch_chunk_s),
                _request_timeout=min(remaining, self._watch_chunk_s) + self._timeout,
            )
            try:
                for event in stream:
                    if event["type"] in {"ADDED", "MODIFIED"}:
                        seen = dict(event["raw_object"])
                        if _settled(seen):
                            return seen
                    elif event["type"] == "DELETED":
                        seen = None
                    if time.monotonic() >= deadline:
                        return seen
            except ApiException as error:
                if error.status != 410:
                    raise
            self._relists += 1
            version = None
        return seen

    async def _wait_settled(
        self, waiting: kubernetes_watch.Waiter, deadline: float
    ) -> dict[str, Any] | None:
        """The Deployment once its rollout is over, or as last seen at ``deadline``."""
        remaining = max(deadline - time.monotonic(), 0.0)
        # asyncio.wait, not wait_for: the future is the watch thread's to end, never cancelled
        settled = asyncio.wrap_future(waiting.future)
        done, _ = await asyncio.wait([settled], timeout=remaining)
        if not done:
            return waiting.latest
        try:
            return settled.result()  # the wrapper's: its error is retrieved, not left to warn
        except Exception as error:
            errors.raise_for(
                error,
                action=f"wait for Deployment {self.namespace}/{waiting.name}",
                scrub=self._scrub,
            )

    async def promote_endpoint(self, name: str) -> protocol.EndpointObservation:
        """Point the Service at the ready target revision and remove the other revisions.

        If the target revision failed or is not ready, remove it instead and keep the
        serving one; raises RolloutFailedError saying why.
        """
        deployments, service = await self._call(
            f"observe endpoint {name}",
            lambda: (self._list_deployments(name), self._read_service(name)),
        )
        if service is None:
            raise protocol.EndpointNotFoundError(f"endpoint {name}: no Service in {self.namespace}")
        target = (service["metadata"].get("annotations") or {}).get(TARGET_ANNOTATION, "")
        serving = (service["spec"].get("selector") or {}).get(REVISION_LABEL, "")
        by_revision = {d["metadata"]["labels"].get(REVISION_LABEL, ""): d for d in deployments}
        current = by_revision.get(target)
        complete, failure, progress = rollout_state(current) if current else (False, None, "gone")
        if not complete:
            why = failure or f"not ready: {progress}"
            if serving and serving != target and serving in by_revision:
                await self._delete_deployment(f"{name}-{target}")
                await self._retarget(service, select=serving, target=serving)
                raise errors.RolloutFailedError(
                    f"endpoint {name}: revision {target} {why}; revision {serving} keeps serving"
                )
            raise errors.RolloutFailedError(f"endpoint {name}: revision {target or name} {why}")
        if serving != target and target:
            await self._retarget(service, select=target, target=target)
        for revision, deployment in by_revision.items():
            if revision != target:
                await self._delete_deployment(deployment["metadata"]["name"])
        return await self.observe_endpoint(name)

    async def _retarget(
        self,
        service: dict[str, Any],
        *,
        select: str,
        target: str,
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        applied = drift.applied_manifest(service)
        if applied is None:
            raise protocol.EndpointConflictError(
                f"Service {self.namespace}/{service['metadata']['name']} was not applied by us"
            )
        applied["metadata"]["annotations"].update(annotations or {})
        applied["metadata"]["annotations"][TARGET_ANNOTATION] = target
        applied["spec"]["selector"][REVISION_LABEL] = select
        await self._apply(applied)

    async def _delete_deployment(self, name: str) -> None:
        def delete() -> None:
            try:
                self._apps.delete_namespaced_deployment(
                    name,
                    self.namespace,
                    propagation_policy="Foreground",
                    _request_timeout=self._timeout,
                )
            except ApiException as error:
                if error.status != 404:
                    raise

        await self._call(f"delete Deployment {self.namespace}/{name}", delete)

    async def rollout(
        self, spec: protocol.EndpointSpec, *, timeout_s: float
    ) -> protocol.EndpointObservation:
        """Apply, wait until the new revision is ready, then switch to it (or roll back).

        The live objects are read once, first: their drift is what this apply re-applies
        (the observation's ``healed``), and the Service there says which revision serves.
        The wait is on the namespace's one shared watch of our Deployments, and the
        observation is made of what the applies and that watch returned; only a rollout
        that is not done at that point (an old revision to remove, a failure, a timeout)
        reads the live objects again.
        """
        deadline = time.monotonic() + timeout_s
        await self._ensure_namespace()
        manifest, revision = self._revision_manifest(spec)
        name = _name(manifest)

        def roll() -> tuple[tuple[protocol.Drift, ...], list[dict[str, Any]], dict[str, Any]]:
            # One worker thread for the read and the applies: a hop to a thread per call
            # cost the event loop more than the calls themselves with many rollouts.
            deployments, service = self._stage(
                f"observe endpoint {spec.name}",
                lambda: (self._list_deployments(spec.name), self._read_service(spec.name)),
            )
            if spec.gate is not None and kubernetes_gate.rejected(
                service, revision=revision, gate=spec.gate
            ):
                raise self._rejected(spec.name, revision, service)
            healed = self._drift(deployments, service)
            applied, selecting = self._apply_revision(
                spec, service=service, deployments=deployments
            )
            self._rollouts.applied(waiting, applied)
            return healed, deployments, selecting

        # registered before the apply, so no event of the new generation goes unseen
        waiting = self._rollouts.expect(name)
        try:
            healed, deployments, selecting = await self._call(
                f"roll out endpoint {spec.name}", roll
            )
            seen = await self._wait_settled(waiting, deadline)
        finally:
            self._rollouts.forget(waiting)
        current = [d for d in deployments if _name(d) != name]
        current = sorted([*current, *([seen] if seen is not None else [])], key=_name)
        observation = self._observation(spec.name, current, selecting)
        serving = (selecting.get("spec", {}).get("selector") or {}).get(REVISION_LABEL, "")
        gated = spec.gate is not None and serving not in {"", revision}
        if gated and seen is not None and rollout_state(seen)[0]:
            observation = await self._gated(
                spec, revision=revision, serving=serving, service=selecting
            )
        elif not observation.ready:
            try:
                observation = await self.promote_endpoint(spec.name)
            except errors.RolloutFailedError as error:
                if " failed: " in observation.message:
                    raise
                raise errors.RolloutTimeoutError(f"{error}, after waiting {timeout_s:g}s") from None
        previous = {
            str(kind)
            for d in deployments
            if (kind := (d["metadata"].get("annotations") or {}).get(autoscalers.KIND_ANNOTATION))
        }
        scaler = None
        if spec.autoscaling is not None or previous:
            scaler = await self._call(
                f"aim the autoscaler of {spec.name} at {name}",
                lambda: self._autoscalers.sync(spec, target=name, previous=previous),
            )
        return dataclasses.replace(
            observation, healed=healed, autoscaler=_autoscaler_status(scaler)
        )

    def _rejected(
        self, name: str, revision: str, service: dict[str, Any] | None
    ) -> errors.RolloutFailedError:
        report = kubernetes_gate.report_in(service)
        why = "; ".join(report.reasons) if report is not None else "its gate failed"
        return errors.RolloutFailedError(
            f"endpoint {name}: revision {revision} was rolled back: {why} (the same spec is "
            "not tried again; change it to roll out anew)",
            report=report,
        )

    async def _gated(
        self, spec: protocol.EndpointSpec, *, revision: str, serving: str, service: dict[str, Any]
    ) -> protocol.EndpointObservation:
        """Measure the ready ``revision`` on its share of the traffic beside ``serving``,
        then promote it or roll it back (kubernetes_gate)."""
        gate = spec.gate
        assert gate is not None
        if "Ingress" not in spec.manifests:
            raise protocol.InvalidEndpointError(
                f"endpoint {spec.name}: a rollout_gate on Kubernetes weights the traffic at "
                "the Cluster's ingress, and the Cluster has no ingress_url"
            )
        selecting = self._service_manifest(spec, select=revision, target=revision)
        canary = kubernetes_gate.canary_service(selecting)
        weighted = kubernetes_gate.canary_ingress(
            _manifest(spec, "Ingress"), weight=gate.traffic_percent
        )
        selector = f"{OWNER_LABEL}={spec.name},{REVISION_LABEL}={revision}"

        async def scrape() -> Mapping[str, str]:
            return await self._call(
                f"read the metrics of endpoint {spec.name} revision {revision}",
                lambda: kubernetes_gate.read_metrics(
                    self._core,
                    namespace=self.namespace,
                    selector=selector,
                    port=spec.port,
                    timeout=self._timeout,
                ),
            )

        try:
            await self._call(
                f"open the canary of endpoint {spec.name}",
                lambda: (self._apply_sync(canary), self._apply_sync(weighted)),
            )
            _log.info(
                "endpoint %s: revision %s takes %d%% of the ingress traffic for %gs",
                spec.name,
                revision,
                gate.traffic_percent,
                gate.window_s,
            )
            report = await kubernetes_gate.measure(gate, revision=revision, scrape=scrape)
        finally:
            await self._close_canary(spec.name)
        verdict = {kubernetes_gate.ROLLOUT_ANNOTATION: kubernetes_gate.report_annotation(report)}
        if report.verdict == "rolled_back":
            verdict[kubernetes_gate.REJECTED_ANNOTATION] = rollout_gate.rollout_key(revision, gate)
            await self._retarget(service, select=serving, target=serving, annotations=verdict)
            await self._delete_deployment(f"{spec.name}-{revision}")
            reasons = "; ".join(report.reasons)
            _log.warning("endpoint %s: revision %s rolled back: %s", spec.name, revision, reasons)
            raise errors.RolloutFailedError(
                f"endpoint {spec.name}: revision {revision} was rolled back: {reasons}; "
                f"revision {serving} keeps serving",
                report=report,
            )
        await self._retarget(service, select=revision, target=revision, annotations=verdict)
        return await self.promote_endpoint(spec.name)

    async def _close_canary(self, name: str) -> None:
        """The canary Ingress first (its share returns to the endpoint's Service), then
        the canary Service."""
        canary = kubernetes_gate.canary_name(name)

        def close() -> None:
            self._delete_ingress(canary)
            self._delete_if_there(self._core.delete_namespaced_service, canary)

        await self._call(f"close the canary of endpoint {name}", close)

    async def delete_endpoint(self, name: str) -> bool:
        self._scales.forget(name)
        removed = await self.prune(keep=set(), only=name)
        scalers = await self._call(
            f"delete the autoscaler of {name}",
            lambda: self._autoscalers.prune(keep=set(), owner_label=OWNER_LABEL, only=name),
        )
        return removed + scalers > 0

    async def prune(self, *, keep: set[str], only: str | None = None) -> int:
        """Delete our Deployments, Services (the count) and Ingresses whose owner is not
        in ``keep``."""
        selector = f"app.kubernetes.io/managed-by=reconciler,{OWNER_LABEL}"
        if only is not None:
            selector = f"app.kubernetes.io/managed-by=reconciler,{OWNER_LABEL}={only}"

        def remove() -> int:
            removed = 0
            try:
                deployments = self._apps.list_namespaced_deployment(
                    self.namespace, label_selector=selector, _request_timeout=self._timeout
                ).items
                services = self._core.list_namespaced_service(
                    self.namespace, label_selector=selector, _request_timeout=self._timeout
                ).items
                ingresses = self._networking.list_namespaced_ingress(
                    self.namespace, label_selector=selector, _request_timeout=self._timeout
                ).items
            except ApiException as error:
                if error.status == 404:
                    return 0
                raise
            for ingress in ingresses:
                if (ingress.metadata.labels or {}).get(OWNER_LABEL) not in keep:
                    self._delete_ingress(ingress.metadata.name)
            for item in [*deployments, *services]:
                if (item.metadata.labels or {}).get(OWNER_LABEL) in keep:
                    continue
                delete = (
                    self._apps.delete_namespaced_deployment
                    if isinstance(item, client.V1Deployment)
                    else self._core.delete_namespaced_service
                )
                try:
                    delete(item.metadata.name, self.namespace, _request_timeout=self._timeout)
                    removed += 1
                except ApiException as error:
                    if error.status != 404:
                        raise
            return removed

        return await self._call(f"prune {self.namespace}", remove)

    async def scale_endpoint(self, name: str, workers: int) -> protocol.EndpointObservation:
        deployments, service = await self._call(
            f"observe endpoint {name}",
            lambda: (self._list_deployments(name), self._read_service(name)),
        )
        target = ((service or {}).get("metadata", {}).get("annotations") or {}).get(
            TARGET_ANNOTATION
        )
        current = [
            d
            for d in deployments
            if d["metadata"]["labels"].get(REVISION_LABEL, "") == (target or "")
        ]
        if not current:
            raise protocol.EndpointNotFoundError(
                f"endpoint {name}: no Deployment in {self.namespace}"
            )
        applied = drift.applied_manifest(current[0])
        if applied is None:
            raise protocol.EndpointConflictError(
                f"Deployment {self.namespace}/{current[0]['metadata']['name']} "
                "was not applied by us"
            )
        applied["spec"]["replicas"] = workers
        await self._apply(applied)
        return await self.observe_endpoint(name)

    # ------------------------------------------------------------- model caches
    async def fill_cache(
        self,
        manifest: Mapping[str, Any],
        *,
        timeout_s: float,
        secret: Mapping[str, Any] | None = None,
    ) -> protocol.CacheObservation:
        """Apply a model cache's DaemonSet (kubernetes_cache), after the Secret with its
        puller's token when there is one, and wait until every node it runs on holds
        the files, or ``timeout_s``."""
        await self._ensure_namespace()
        name = str(manifest["metadata"]["name"])
        deadline = time.monotonic() + timeout_s

        def fill() -> protocol.CacheObservation:
            if secret is not None:
                self._caches.apply_secret(secret)
            else:
                self._caches.delete_secret(name)  # the repo no longer needs a token
            self._caches.apply(manifest)
            return self._caches.wait(name, deadline=deadline)

        return await self._call(f"fill model cache {self.namespace}/{name}", fill)

    async def drop_cache(self, name: str) -> bool:
        def drop() -> bool:
            removed = self._caches.delete(name)
            return self._caches.delete_secret(name) or removed

        return await self._call(f"delete model cache {self.namespace}/{name}", drop)

    # ---------------------------------------------------------------------- jobs
    async def run_job(self, spec: protocol.JobSpec) -> protocol.JobHandle:
        labels = {**spec.owner_labels, "app.kubernetes.io/managed-by": "reconciler"}
        container: dict[str, Any] = {"name": "job", "image": spec.image}
        if spec.command:
            container["command"] = list(spec.command)
        if spec.args:
            container["args"] = list(spec.args)
        if spec.env:
            container["env"] = [{"name": k, "value": v} for k, v in sorted(spec.env.items())]
        if spec.resources.gpus:
            gpus = str(spec.resources.gpus)
            container["resources"] = {"limits": {GPU_RESOURCE: gpus}}
        job_spec: dict[str, Any] = {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": labels},
                "spec": {"restartPolicy": "Never", "containers": [container]},
            },
        }
        if spec.timeout_s is not None:
            job_spec["activeDeadlineSeconds"] = max(int(spec.timeout_s), 1)
        body = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": spec.name, "namespace": self.namespace, "labels": labels},
            "spec": job_spec,
        }
        await self._ensure_namespace()
        await self._call(
            f"create Job {self.namespace}/{spec.name}",
            lambda: self._batch.create_namespaced_job(
                self.namespace,
                body,
                field_manager=self.field_manager,
                _request_timeout=self._timeout,
            ),
        )
        return protocol.JobHandle(name=spec.name, namespace=self.namespace)

    def _job_pod(self, handle: protocol.JobHandle) -> Any | None:
        pods = self._core.list_namespaced_pod(
            handle.namespace or self.namespace,
            label_selector=f"job-name={handle.name}",
            _request_timeout=self._timeout,
        ).items
        return pods[-1] if pods else None

    async def job_status(self, handle: protocol.JobHandle) -> protocol.JobStatus:
        def read() -> protocol.JobStatus:
            try:
                job = self._batch.read_namespaced_job(
                    handle.name, handle.namespace or self.namespace, _request_timeout=self._timeout
                )
            except ApiException as error:
                if error.status == 404:
                    raise protocol.JobNotFoundError(f"job {handle.name} not found") from error
                raise
            status = job.status or client.V1JobStatus()
            exit_code = None
            pod = self._job_pod(handle)
            for container in (pod.status.container_statuses or []) if pod and pod.status else []:
                if container.state and container.state.terminated:
                    exit_code = container.state.terminated.exit_code
            conditions = {c.type: c for c in (status.conditions or []) if c.status == "True"}
            if "Complete" in conditions or (status.succeeded or 0) > 0:
                return protocol.JobStatus(state="succeeded", exit_code=exit_code)
            if "Failed" in conditions:
                failed = conditions["Failed"]
                return protocol.JobStatus(
                    state="failed",
                    exit_code=exit_code,
                    message=f"{failed.reason}: {failed.message}",
                )
            return protocol.JobStatus(state="running" if status.active else "pending")

        return await self._call(f"read Job {handle.name}", read)

    async def job_logs(self, handle: protocol.JobHandle, *, tail_bytes: int | None = None) -> str:
        def read() -> str:
            pod = self._job_pod(handle)
            if pod is None:
                return ""
            text = str(
                self._core.read_namespaced_pod_log(
                    pod.metadata.name,
                    handle.namespace or self.namespace,
                    _request_timeout=self._timeout,
                )
            )
            if tail_bytes is not None:
                return text.encode()[-tail_bytes:].decode("utf-8", errors="replace")
            return text

        return await self._call(f"read logs of Job {handle.name}", read)

    def job_runner(self) -> kubernetes_jobs.KubernetesJobRunner:
        """Jobs run to their end in this cluster's namespace, on this driver's client."""
        return kubernetes_jobs.KubernetesJobRunner(
            api=self._api,
            namespace=self.namespace,
            call=self._call,
            ensure_namespace=self._ensure_namespace,
        )

    def retire(self, reason: str) -> None:
        """Stop watching, for a driver that another replaces: rollouts waiting here fail
        with ``reason`` (their step is retried on the new driver) and no drift or scale
        event that arrives from here on is reported. Calls in flight finish; ``close``
        ends the rest."""
        self._rollouts.close(reason)

    async def close(self) -> None:
        self._rollouts.close("the driver was closed")
        await asyncio.get_running_loop().run_in_executor(self._threads, self._api.close)
        self._threads.shutdown(wait=False)
