"""What a wizard's fields mean in our specs: value checks per field, and the spec a
triggered wizard commits.

The reference's ids are our object names: ``model_id`` a Model, ``project_id`` a Project,
``credential_id`` and ``proprietary_credential_id`` a Credential, ``template_id`` a
DeploymentTemplate (or a built-in template), ``cluster_id`` a Cluster (for a cloud model,
optional: with one, the Deployment runs a gateway template there that forwards to the
provider; without, the provider's endpoint serves it), ``endpoint_id`` a
Deployment, ``provider_id`` a cloud provider of the catalogue, ``cloud_model_id`` that
provider's model URI. A display ``name`` becomes the object's ``metadata.name`` as a DNS
label (``"Microsoft phi local"`` -> ``microsoft-phi-local``) and its ``display_name``.
Checks name the field they refuse (422; 404 for a reference to nothing); only references
are looked up, in the last valid revision. Pure.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any, get_args

from reconciler.api.compat import wizard_flows as flows
from reconciler.api.problems import Conflict, NotFound, Unprocessable
from reconciler.core import cloud_providers
from reconciler.core.builtin_templates import BUILTIN_TEMPLATES
from reconciler.core.diff import ObjectState
from reconciler.core.render import cloud_gateway
from reconciler.specs.common import Modality

API_VERSION = "reconciler/v1"
MODALITIES = get_args(Modality)
LOCAL_PROVIDER_TYPES = ("hugging_face", "url", "disk")
_NON_LABEL = re.compile(r"[^a-z0-9]+")
_REFERENCES: Mapping[str, str] = {
    "model_id": "Model",
    "project_id": "Project",
    "credential_id": "Credential",
    "proprietary_credential_id": "Credential",
    "cluster_id": "Cluster",
    "endpoint_id": "Deployment",
}
_TEXT = ("name", "uri", "author", "icon", "endpoint_name", "ingress_url", "sha256")

Desired = Mapping[str, ObjectState]


def label(value: str, *, field: str) -> str:
    """``value`` as a metadata.name (lowercase DNS label); 422 naming ``field``."""
    name = _NON_LABEL.sub("-", value.lower()).strip("-")[:63].strip("-")
    if not name:
        raise Unprocessable(f"{field}: {value!r} gives no usable name (letters or digits)")
    return name


def _reference(field: str, value: object, desired: Desired) -> ObjectState:
    kind = _REFERENCES[field]
    if not isinstance(value, str) or not value:
        raise Unprocessable(f"{field}: expected the name of a {kind}")
    state = desired.get(f"{kind}/{value}")
    if state is None:
        raise NotFound(f"{field}: no {kind} {value!r} in the watched branch")
    return state


def model_source(state: ObjectState) -> Mapping[str, Any]:
    source = state.spec.get("source")
    return source if isinstance(source, Mapping) else {}


def check_value(
    flow: flows.Flow, field: str, value: object, *, gathered: Mapping[str, Any], desired: Desired
) -> None:
    """Refuse a value ``field`` cannot take in ``flow`` (422 naming it)."""
    optional = value is None and field in ("author", "icon")
    if field in _TEXT and not optional and (not isinstance(value, str) or not value.strip()):
        raise Unprocessable(f"{field}: expected a non-empty string")
    if field == "provider_type":
        allowed = ("cloud_model",) if flow is flows.ADD_CLOUD_MODEL else LOCAL_PROVIDER_TYPES
        if value not in allowed:
            raise Unprocessable(f"provider_type: {flow.name} takes {' or '.join(allowed)}")
    elif field == "provider_id":
        if not isinstance(value, str) or value not in cloud_providers.PROVIDERS:
            known = ", ".join(sorted(cloud_providers.PROVIDERS))
            raise Unprocessable(f"provider_id: {value!r} is not a cloud provider ({known})")
    elif field == "cloud_model_id" and value is not None:
        if not isinstance(value, str):
            raise Unprocessable("cloud_model_id: expected the provider's model URI, or null")
        _cloud_uri("cloud_model_id", str(gathered.get("provider_id")), value)
    elif field == "uri" and flow is flows.ADD_CLOUD_MODEL:
        provider = str(gathered.get("provider_id"))
        _cloud_uri("uri", provider, str(value))
        chosen = gathered.get("cloud_model_id")
        if chosen is not None and chosen != value:
            raise Unprocessable(f"uri: the cloud model chosen at step 3 is {chosen!r}")
    elif field == "modality" and value not in MODALITIES:
        raise Unprocessable(f"modality: expected one of {', '.join(MODALITIES)}")
    elif field == "tags":
        _check_tags(value)
    elif field == "cluster_id" and value is None and flow is flows.DEPLOY_CLOUD_MODEL:
        pass  # no cluster: the provider's own endpoint serves the model
    elif field in _REFERENCES and not (value is None and field == "proprietary_credential_id"):
        state = _reference(field, value, desired)
        cloud = model_source(state).get("provider_type") == "cloud_model"
        if field == "model_id" and flow is flows.SECURITY_SCAN and cloud:
            raise Unprocessable(f"model_id: {value!r} is a cloud model: it has no files to scan")
        if field == "endpoint_id" and state.spec.get("cluster") is None:
            raise Unprocessable(
                f"endpoint_id: {value!r} is a cloud endpoint: its provider scales it, it has no "
                "workers to add"
            )
    elif field == "template_id" and value is not None:
        _check_template(flow, value, desired)
    elif field == "deploy_config" and not isinstance(value, dict):
        raise Unprocessable("deploy_config: expected an object (concurrent_requests, ...)")
    elif field == "additional_concurrency":
        flows.whole_number(value, "additional_concurrency")


def _check_template(flow: flows.Flow, value: object, desired: Desired) -> None:
    """A template of the repo or a built-in one, of the kind the flow deploys: a cloud
    model's is a gateway (it runs on the cluster of step 6), a local model's is not."""
    state = desired.get(f"DeploymentTemplate/{value}") if isinstance(value, str) else None
    spec = state.spec if state is not None else BUILTIN_TEMPLATES.get(str(value))
    if not isinstance(value, str) or spec is None:
        raise NotFound(
            f"template_id: no DeploymentTemplate {value!r} in the watched branch and no "
            f"built-in template of that name ({', '.join(sorted(BUILTIN_TEMPLATES))})"
        )
    gateway = cloud_gateway.is_gateway(spec)
    if flow is flows.DEPLOY_CLOUD_MODEL and not gateway:
        raise Unprocessable(
            f"template_id: {value!r} serves model files; a cloud model deployed to a cluster "
            f"runs a gateway template (the built-in {cloud_gateway.GATEWAY_TEMPLATE}, or one "
            "whose runtime.command takes {upstream_url})"
        )
    if flow is flows.DEPLOY_LOCAL_MODEL and gateway:
        raise Unprocessable(f"template_id: {value!r} is a cloud gateway: it serves cloud models")


def _cloud_uri(field: str, provider: str, uri: str) -> None:
    try:
        cloud_providers.validate_uri(provider=provider, uri=uri)
    except cloud_providers.CloudUriError as exc:
        raise Unprocessable(f"{field}: {exc}") from None


def _check_tags(value: object) -> None:
    if not isinstance(value, list):
        raise Unprocessable("tags: expected a list of {name, color} objects")
    for index, tag in enumerate(value):
        if not isinstance(tag, dict) or set(tag) != {"name", "color"}:
            raise Unprocessable(f"tags[{index}]: expected an object with name and color")
        if not isinstance(tag["name"], str) or not isinstance(tag["color"], str):
            raise Unprocessable(f"tags[{index}]: name and color are strings")


# --- the spec a triggered wizard writes ---------------------------------------------------


Change = Callable[[dict[str, Any]], dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class Write:
    """What to commit: a new document (``document``) or a change of one (``change``);
    neither when nothing in Git needs to change (``note`` says why)."""

    kind: str
    name: str
    document: dict[str, Any] | None = None
    change: Change | None = None
    note: str = ""


def _new(kind: str, name: str, spec: Mapping[str, Any], desired: Desired, field: str) -> Write:
    if f"{kind}/{name}" in desired:
        raise Conflict(f"{field}: a {kind} named {name!r} already exists")
    clean = {k: v for k, v in spec.items() if v is not None}
    document = {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name},
                "spec": clean}  # fmt: skip
    return Write(kind, name, document=document)


def _model(data: Mapping[str, Any], source: dict[str, Any], desired: Desired) -> Write:
    spec = {
        "display_name": data["name"],
        "modality": data["modality"],
        "source": {k: v for k, v in source.items() if v is not None},
        "author": data.get("author"),
        "tags": data.get("tags"),
        "icon": data.get("icon"),
    }
    return _new("Model", label(data["name"], field="name"), spec, desired, "name")


def cloud_model(data: Mapping[str, Any], desired: Desired) -> Write:
    uri = data.get("cloud_model_id") or data.get("uri")
    if uri is None:
        raise Unprocessable("uri: no cloud model was chosen at step 3, so step 4 gives the uri")
    source = {"provider_type": "cloud_model", "provider": data["provider_id"], "uri": uri}
    return _model(data, source, desired)


def local_model(data: Mapping[str, Any], desired: Desired) -> Write:
    kind = data["provider_type"]
    source: dict[str, Any] = {"provider_type": kind, "uri": data["uri"]}
    if kind == "url":
        if not data.get("sha256"):
            raise Unprocessable("sha256: a url model is pinned by the SHA-256 of its file")
        source["sha256"] = data["sha256"]
    elif "sha256" in data:
        raise Unprocessable(f"sha256: only url models take a sha256, not {kind}")
    credential = data.get("proprietary_credential_id")
    if credential is not None:
        if kind == "disk":
            raise Unprocessable("proprietary_credential_id: a disk model takes no credential")
        source["credential"] = credential
    return _model(data, source, desired)


def deployment(data: Mapping[str, Any], desired: Desired) -> Write:
    cloud = model_source(desired[f"Model/{data['model_id']}"]).get("provider_type") == (
        "cloud_model"
    )
    if cloud and data.get("template_id") is not None and data.get("cluster_id") is None:
        raise Unprocessable(
            "cluster_id: a cloud model's template runs on a cluster; give the cluster_id of "
            "step 6, or a null template_id to use the provider's endpoint"
        )
    spec = {
        "project": data.get("project_id"),
        "model": data["model_id"],
        "cluster": data.get("cluster_id"),
        "template": data.get("template_id"),
        "credential": data.get("credential_id"),
        "endpoint_name": data["endpoint_name"],
        "deploy_config": data["deploy_config"],
    }
    name = label(data["endpoint_name"], field="endpoint_name")
    return _new("Deployment", name, spec, desired, "endpoint_name")


def cluster(data: Mapping[str, Any], desired: Desired, *, secret: str) -> Write:
    spec = {
        "display_name": data["name"],
        "driver": "kubernetes",
        "ingress_url": data["ingress_url"],
        "icon": data.get("icon"),
        "kubeconfig": {"secret": secret},
    }
    return _new("Cluster", label(data["name"], field="name"), spec, desired, "name")


def security_scan(data: Mapping[str, Any], desired: Desired) -> Write:
    name = str(data["model_id"])
    state = desired[f"Model/{name}"]
    if state.spec.get("security_scan", "required") == "required":
        return Write(
            "Model",
            name,
            note="security_scan is already required: nothing to commit; a resync was "
            "requested and the Model's last scan result is reported",
        )

    def change(document: dict[str, Any]) -> dict[str, Any]:
        spec = document.get("spec")
        return {**document, "spec": {**(spec if isinstance(spec, dict) else {}),
                                     "security_scan": "required"}}  # fmt: skip

    return Write("Model", name, change=change)


def add_worker(data: Mapping[str, Any], desired: Desired) -> Write:
    name = str(data["endpoint_id"])
    state = desired[f"Deployment/{name}"]
    if state.spec.get("workers") is not None:
        raise Unprocessable(
            f"additional_concurrency: Deployment {name!r} pins workers: "
            f"{state.spec['workers']}, so more concurrency would add no worker; change "
            "spec.workers in Git instead"
        )
    extra = flows.whole_number(data["additional_concurrency"], "additional_concurrency")

    def change(document: dict[str, Any]) -> dict[str, Any]:
        spec = dict(document.get("spec") or {})
        config = dict(spec.get("deploy_config") or {})
        config["concurrent_requests"] = int(config.get("concurrent_requests") or 0) + extra
        spec["deploy_config"] = config
        return {**document, "spec": spec}

    return Write("Deployment", name, change=change)


def deploy_flow(model: ObjectState) -> flows.Flow:
    """The deploy wizard a Model takes: cloud models have the credential step."""
    if model_source(model).get("provider_type") == "cloud_model":
        return flows.DEPLOY_CLOUD_MODEL
    return flows.DEPLOY_LOCAL_MODEL
