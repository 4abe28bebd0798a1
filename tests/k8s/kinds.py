"""The kinds the API double serves: their discovery entries, defaults and validation.

Defaults and validation follow what the real kube-apiserver does for the fields the
reconciler writes (a Deployment's selector must match its template's labels, every
container needs an image, a Job restarts Never or OnFailure, selectors are immutable),
and errors come back as the same ``Status`` causes (``field``, ``reason``, ``message``).
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclasses.dataclass(frozen=True)
class Kind:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    has_generation: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``deployments.apps``: how error messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


COORDINATION_KINDS: tuple[Kind, ...] = (
    Kind("coordination.k8s.io", "v1", "leases", "Lease", True),
    Kind("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
)
"""What the sharded daemon coordinates through: a Lease per shard and per replica, a
ConfigMap per shard holding its handover (reconciler.drivers.leases)."""

INSTALL_KINDS: tuple[Kind, ...] = (
    Kind("", "v1", "secrets", "Secret", True),
    Kind("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",)),
    Kind("apps", "v1", "statefulsets", "StatefulSet", True, ("sts",), ("status", "scale"), True),
    Kind(
        "policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ("pdb",), ("status",)
    ),
    Kind("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    Kind("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
)
"""What deploy/kubernetes/ installs the daemon with; stored and validated, run by nothing."""

KINDS: tuple[Kind, ...] = (
    Kind("", "v1", "namespaces", "Namespace", False, ("ns",), ("status",)),
    Kind("", "v1", "nodes", "Node", False, ("no",), ("status",)),
    Kind("", "v1", "pods", "Pod", True, ("po",), ("status", "log", "proxy")),
    Kind("", "v1", "services", "Service", True, ("svc",), ("status",)),
    Kind("apps", "v1", "deployments", "Deployment", True, ("deploy",), ("status", "scale"), True),
    Kind("batch", "v1", "jobs", "Job", True, (), ("status",), True),
    Kind("apps", "v1", "daemonsets", "DaemonSet", True, ("ds",), ("status",), True),
    Kind(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        True,
        ("hpa",),
        ("status",),
    ),
    # A custom resource: as on a cluster where KEDA's CRD is installed.
    Kind("keda.sh", "v1alpha1", "scaledobjects", "ScaledObject", True, ("so",), ("status",), True),
    Kind("networking.k8s.io", "v1", "ingresses", "Ingress", True, ("ing",), ("status",), True),
    *COORDINATION_KINDS,
    *INSTALL_KINDS,
)


def find_kind(group: str, version: str, plural: str) -> Kind | None:
    for kind in KINDS:
        if (kind.group, kind.version, kind.plural) == (group, version, plural):
            return kind
    return None


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    """The APIResourceList of one group version, as discovery serves it."""
    kinds = [k for k in KINDS if (k.group, k.version) == (group, version)]
    if not kinds:
        return None
    resources: list[dict[str, Any]] = []
    verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    for kind in kinds:
        resources.append(
            {
                "name": kind.plural,
                "singularName": kind.kind.lower(),
                "namespaced": kind.namespaced,
                "kind": kind.kind,
                "verbs": verbs,
                "shortNames": list(kind.short_names),
            }
        )
        for sub in kind.subresources:
            resources.append(
                {
                    "name": f"{kind.plural}/{sub}",
                    "singularName": "",
                    "namespaced": kind.namespaced,
                    "kind": "Scale" if sub == "scale" else kind.kind,
                    "verbs": ["get"] if sub == "log" else ["get", "patch", "update"],
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def _default_container(container: dict[str, Any]) -> None:
    image = container.get("image")
    if isinstance(image, str):
        latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for probe_name in ("readinessProbe", "livenessProbe"):
        probe = container.get(probe_name)
        if isinstance(probe, dict):
            probe.setdefault("timeoutSeconds", 1)
            probe.setdefault("periodSeconds", 10)
            probe.setdefault("successThreshold", 1)
            probe.setdefault("failureThreshold", 3)
            http = probe.get("httpGet")
            if isinstance(http, dict):
                http.setdefault("scheme", "HTTP")


def _default_pod_spec(spec: dict[str, Any], *, restart: str) -> None:
    spec.setdefault("restartPolicy", restart)
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for container in spec.get("containers") or []:
        if isinstance(container, dict):
            _default_container(container)


def apply_defaults(kind: Kind, obj: dict[str, Any], *, cluster_ip: str) -> None:
    """Fill the fields the real server defaults, in place."""
    spec = obj.get("spec")
    if kind.kind == "Deployment" and isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault(
            "strategy",
            {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
            },
        )
        template_spec = (spec.get("template") or {}).get("spec")
        if isinstance(template_spec, dict):
            _default_pod_spec(template_spec, restart="Always")
    elif kind.kind == "DaemonSet" and isinstance(spec, dict):
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault(
            "updateStrategy",
            {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
        )
        template_spec = (spec.get("template") or {}).get("spec")
        if isinstance(template_spec, dict):
            _default_pod_spec(template_spec, restart="Always")
    elif kind.kind == "Job" and isinstance(spec, dict):
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completions", 1)
        spec.setdefault("parallelism", 1)
        template_spec = (spec.get("template") or {}).get("spec")
        if isinstance(template_spec, dict):
            _default_pod_spec(template_spec, restart="Never")
    elif kind.kind == "Pod" and isinstance(spec, dict):
        _default_pod_spec(spec, restart="Always")
    elif kind.kind == "Service" and isinstance(spec, dict):
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("clusterIP", cluster_ip)
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))
    elif kind.kind == "Namespace":
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj.setdefault("status", {"phase": "Active"})
        labels = obj.setdefault("metadata", {}).setdefault("labels", {})
        labels.setdefault("kubernetes.io/metadata.name", obj["metadata"].get("name"))


JOB_UID_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid")
JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")


def generate_job_selector(obj: dict[str, Any]) -> None:
    """What the server adds to a new Job (without ``manualSelector``): a selector on its
    uid, and the uid and name labels on its pod template (so on every pod it makes)."""
    meta, spec = obj["metadata"], obj.get("spec")
    if not isinstance(spec, dict) or spec.get("manualSelector"):
        return
    generated = {label: meta["uid"] for label in JOB_UID_LABELS}
    generated.update({label: meta["name"] for label in JOB_NAME_LABELS})
    spec["selector"] = {"matchLabels": {JOB_UID_LABELS[0]: meta["uid"]}}
    template_meta = (spec.get("template") or {}).setdefault("metadata", {})
    template_meta["labels"] = {**(template_meta.get("labels") or {}), **generated}
    if not meta.get("labels"):
        meta["labels"] = dict(template_meta["labels"])


Cause = dict[str, str]


def _required(field: str) -> Cause:
    return {"reason": "FieldValueRequired", "message": "Required value", "field": field}


def _invalid(field: str, value: Any, detail: str) -> Cause:
    return {
        "reason": "FieldValueInvalid",
        "message": f"Invalid value: {json.dumps(value)}: {detail}",
        "field": field,
    }


def _check_containers(containers: Any, prefix: str) -> list[Cause]:
    if not isinstance(containers, list) or not containers:
        return [_required(f"{prefix}.containers")]
    causes: list[Cause] = []
    for index, container in enumerate(containers):
        where = f"{prefix}.containers[{index}]"
        if not isinstance(container, dict):
            causes.append(_invalid(where, container, "must be an object"))
            continue
        name = container.get("name")
        if not name:
            causes.append(_required(f"{where}.name"))
        elif not isinstance(name, str) or not _DNS_LABEL.match(name):
            causes.append(_invalid(f"{where}.name", name, "a lowercase RFC 1123 label"))
        if not container.get("image"):
            causes.append(_required(f"{where}.image"))
        limits = (container.get("resources") or {}).get("limits") or {}
        for resource, amount in limits.items():
            if resource == "nvidia.com/gpu" and not re.fullmatch(r"[0-9]+", str(amount)):
                causes.append(
                    _invalid(
                        f"{where}.resources.limits[{resource}]",
                        amount,
                        "must be an integer",
                    )
                )
    return causes


def _check_name(kind: Kind, name: Any) -> list[Cause]:
    if not name:
        return [_required("metadata.name")]
    pattern = _DNS_LABEL if kind.kind in {"Namespace", "Service"} else _DNS_SUBDOMAIN
    if not isinstance(name, str) or len(name) > 253 or not pattern.match(name):
        return [
            _invalid(
                "metadata.name",
                name,
                "a lowercase RFC 1123 name must consist of lower case alphanumeric "
                "characters, '-' or '.'",
            )
        ]
    return []


_PATH_TYPES = ("Exact", "Prefix", "ImplementationSpecific")


def _check_ingress(spec: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    for r_index, rule in enumerate(spec.get("rules") or []):
        host = rule.get("host")
        if host is not None and (
            not _DNS_SUBDOMAIN.match(str(host)) or re.fullmatch(r"[0-9.]+", str(host))
        ):
            causes.append(
                _invalid(f"spec.rules[{r_index}].host", host, "must be a DNS name, not an IP")
            )
        for p_index, path in enumerate((rule.get("http") or {}).get("paths") or []):
            where = f"spec.rules[{r_index}].http.paths[{p_index}]"
            if path.get("pathType") not in _PATH_TYPES:
                causes.append(
                    {
                        "reason": "FieldValueNotSupported",
                        "message": f'Unsupported value: "{path.get("pathType")}": supported '
                        'values: "Exact", "ImplementationSpecific", "Prefix"',
                        "field": f"{where}.pathType",
                    }
                )
            if not str(path.get("path") or "").startswith("/"):
                causes.append(
                    _invalid(f"{where}.path", path.get("path"), "must be an absolute path")
                )
            service = (path.get("backend") or {}).get("service") or {}
            if not service.get("name"):
                causes.append(_required(f"{where}.backend.service.name"))
    return causes


def validate(kind: Kind, obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """The causes that make ``obj`` invalid (empty when it is valid)."""
    causes = _check_name(kind, (obj.get("metadata") or {}).get("name"))
    spec = obj.get("spec") or {}
    if kind.kind == "Deployment":
        selector = (spec.get("selector") or {}).get("matchLabels")
        template = spec.get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        if not selector:
            causes.append(_required("spec.selector"))
        elif any(labels.get(k) != v for k, v in selector.items()):
            causes.append(
                _invalid(
                    "spec.template.metadata.labels",
                    labels,
                    "`selector` does not match template `labels`",
                )
            )
        replicas = spec.get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            causes.append(_invalid("spec.replicas", replicas, "must be greater than or equal to 0"))
        causes += _check_containers(
            (template.get("spec") or {}).get("containers"), "spec.template.spec"
        )
        if old is not None and (old.get("spec") or {}).get("selector") != spec.get("selector"):
            causes.append(_invalid("spec.selector", spec.get("selector"), "field is immutable"))
    elif kind.kind == "DaemonSet":
        selector = (spec.get("selector") or {}).get("matchLabels")
        template = spec.get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        if not selector:
            causes.append(_required("spec.selector"))
        elif any(labels.get(k) != v for k, v in selector.items()):
            causes.append(
                _invalid(
                    "spec.template.metadata.labels",
                    labels,
                    "`selector` does not match template `labels`",
                )
            )
        causes += _check_containers(
            (template.get("spec") or {}).get("containers"), "spec.template.spec"
        )
        if old is not None and (old.get("spec") or {}).get("selector") != spec.get("selector"):
            causes.append(_invalid("spec.selector", spec.get("selector"), "field is immutable"))
    elif kind.kind == "Job":
        template_spec = (spec.get("template") or {}).get("spec") or {}
        causes += _check_containers(template_spec.get("containers"), "spec.template.spec")
        restart = template_spec.get("restartPolicy")
        if restart not in {"Never", "OnFailure"}:
            causes.append(
                {
                    "reason": "FieldValueNotSupported",
                    "message": f'Unsupported value: "{restart}": supported values: '
                    '"OnFailure", "Never"',
                    "field": "spec.template.spec.restartPolicy",
                }
            )
        if old is not None and (old.get("spec") or {}).get("template") != spec.get("template"):
            causes.append(_invalid("spec.template", spec.get("template"), "field is immutable"))
    elif kind.kind == "Pod":
        causes += _check_containers(spec.get("containers"), "spec")
    elif kind.kind == "Ingress":
        causes += _check_ingress(spec)
    elif kind.kind in RULES:
        causes += RULES[kind.kind](obj, old)
    elif kind.kind == "Service":
        ports = spec.get("ports")
        if spec.get("type", "ClusterIP") != "ExternalName" and not ports:
            causes.append(_required("spec.ports"))
        for index, port in enumerate(ports or []):
            number = port.get("port") if isinstance(port, dict) else None
            if not isinstance(number, int) or not 1 <= number <= 65535:
                causes.append(
                    _invalid(f"spec.ports[{index}].port", number, "must be between 1 and 65535")
                )
    elif kind.kind in ("HorizontalPodAutoscaler", "ScaledObject"):
        causes += _check_autoscaler(kind, spec)
    return causes


def _check_autoscaler(kind: Kind, spec: dict[str, Any]) -> list[Cause]:
    """What the real server (HPA validation, or KEDA's CRD schema and webhook) refuses."""
    causes: list[Cause] = []
    if not (spec.get("scaleTargetRef") or {}).get("name"):
        causes.append(_required("spec.scaleTargetRef.name"))
    low_field, high_field = (
        ("minReplicas", "maxReplicas")
        if kind.kind == "HorizontalPodAutoscaler"
        else ("minReplicaCount", "maxReplicaCount")
    )
    low, high = spec.get(low_field, 1), spec.get(high_field)
    if kind.kind == "HorizontalPodAutoscaler" and not isinstance(high, int):
        causes.append(_required(f"spec.{high_field}"))
    elif isinstance(high, int) and isinstance(low, int) and high < low:
        causes.append(
            _invalid(f"spec.{high_field}", high, f"must be greater than or equal to `{low_field}`")
        )
    if kind.kind == "ScaledObject" and not spec.get("triggers"):
        causes.append(_required("spec.triggers"))
    return causes


# --- coordination and install kinds ------------------------------------------------------

_MICRO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
MAX_CONFIGMAP_BYTES = 1024 * 1024


def _lease(obj: dict[str, Any], _old: dict[str, Any] | None) -> list[Cause]:
    """coordination.k8s.io/v1 validation: positive duration, non-negative transitions,
    MicroTime timestamps (RFC 3339 with microseconds)."""
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and (not isinstance(duration, int) or duration <= 0):
        causes.append(_invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if transitions is not None and (not isinstance(transitions, int) or transitions < 0):
        causes.append(
            _invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0")
        )
    for field in ("acquireTime", "renewTime"):
        value = spec.get(field)
        if value is not None and (not isinstance(value, str) or not _MICRO_TIME.match(value)):
            causes.append(_invalid(f"spec.{field}", value, "must be an RFC 3339 MicroTime"))
    return causes


def _configmap(obj: dict[str, Any], _old: dict[str, Any] | None) -> list[Cause]:
    """Keys of data and binaryData: config keys, not in both; at most 1 MiB in all."""
    causes: list[Cause] = []
    data = obj.get("data") or {}
    binary = obj.get("binaryData") or {}
    size = 0
    for field, values in (("data", data), ("binaryData", binary)):
        for key, value in values.items():
            if not _CONFIG_KEY.match(key) or len(key) > 253:
                causes.append(
                    _invalid(
                        f"{field}[{key}]",
                        key,
                        "a valid config key must consist of alphanumeric characters, "
                        "'-', '_' or '.'",
                    )
                )
            size += len(key) + len(str(value)) * (3 if field == "binaryData" else 4) // 4
    for key in sorted(set(data) & set(binary)):
        causes.append(_invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
    if size > MAX_CONFIGMAP_BYTES:
        causes.append(
            {
                "reason": "FieldValueTooLong",
                "message": f"Too long: must have at most {MAX_CONFIGMAP_BYTES} bytes",
                "field": "[]",
            }
        )
    return causes


def _statefulset(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    spec = obj.get("spec") or {}
    template = spec.get("template") or {}
    causes: list[Cause] = []
    selector = (spec.get("selector") or {}).get("matchLabels")
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not selector:
        causes.append(_required("spec.selector"))
    elif any(labels.get(k) != v for k, v in selector.items()):
        causes.append(
            _invalid(
                "spec.template.metadata.labels",
                labels,
                "`selector` does not match template `labels`",
            )
        )
    causes += _check_containers(
        (template.get("spec") or {}).get("containers"), "spec.template.spec"
    )
    if old is not None:
        for field in ("selector", "serviceName", "volumeClaimTemplates", "podManagementPolicy"):
            if (old.get("spec") or {}).get(field) != spec.get(field):
                causes.append(
                    _invalid(
                        "spec",
                        field,
                        "updates to statefulset spec for fields other than 'replicas', "
                        "'ordinals', 'template', 'updateStrategy', "
                        "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are "
                        "forbidden",
                    )
                )
    return causes


def _rules(obj: dict[str, Any], _old: dict[str, Any] | None) -> list[Cause]:
    causes: list[Cause] = []
    for index, rule in enumerate(obj.get("rules") or []):
        if not rule.get("verbs"):
            causes.append(_required(f"rules[{index}].verbs"))
    return causes


def _binding(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    ref = obj.get("roleRef") or {}
    causes = [_required(f"roleRef.{f}") for f in ("apiGroup", "kind", "name") if f not in ref]
    if old is not None and old.get("roleRef") != ref:
        causes.append(_invalid("roleRef", ref, "cannot change roleRef"))
    return causes


def _pdb(obj: dict[str, Any], _old: dict[str, Any] | None) -> list[Cause]:
    spec = obj.get("spec") or {}
    if "minAvailable" in spec and "maxUnavailable" in spec:
        return [_invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set")]
    return []


RULES = {
    "Lease": _lease,
    "ConfigMap": _configmap,
    "StatefulSet": _statefulset,
    "Role": _rules,
    "RoleBinding": _binding,
    "PodDisruptionBudget": _pdb,
}
"""Validation of the kinds the sharded daemon and its install use, by kind."""
