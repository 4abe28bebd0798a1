"""How a cloud Model may be served: by its provider, or through a gateway on a Cluster.

A Deployment of a ``cloud_model`` Model without ``spec.cluster`` runs nothing (the
provider serves it), so a ``template`` there would be ignored: an error. With a cluster
it runs a gateway, so its template must be one (the built-in ``cloud-gateway``, the
default, or a template whose command takes ``{upstream_url}``), and the Cluster must be
local: a gateway has no container image yet. A gateway template serves nothing else.
A Credential's ``base_url`` is for cloud providers only and carries the key in every
request, so it must be https (http only on a loopback address). Pure.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Mapping
from typing import Any

from reconciler.core import cloud_providers
from reconciler.core.builtin_templates import BUILTIN_TEMPLATES
from reconciler.core.diagnostics import Diagnostic
from reconciler.core.render import cloud_gateway
from reconciler.core.validation.objects import SpecObject

Index = Mapping[str, Mapping[str, SpecObject]]


def _template_spec(name: str, index: Index) -> Mapping[str, Any] | None:
    found = index.get("DeploymentTemplate", {}).get(name)
    return found.spec if found is not None else BUILTIN_TEMPLATES.get(name)


def deployment_problems(obj: SpecObject, index: Index, *, cloud: bool) -> list[Diagnostic]:
    """The serving rules for Deployment ``obj``; ``cloud``: its Model is a cloud model."""
    spec = obj.spec
    template = spec.get("template")
    cluster = spec.get("cluster")
    template_spec = _template_spec(template, index) if isinstance(template, str) else None
    gateway = cloud_gateway.is_gateway(template_spec)
    if not cloud:
        if gateway:
            return [
                obj.problem(
                    ("spec", "template"),
                    f"template '{template}' is a cloud gateway: it serves cloud models only",
                )
            ]
        return []
    problems: list[Diagnostic] = []
    if not isinstance(cluster, str):
        if isinstance(template, str):
            problems.append(
                obj.problem(
                    ("spec", "template"),
                    "a cloud model without spec.cluster is served by its provider and runs "
                    "nothing, so it takes no template; set spec.cluster to serve it through "
                    f"a gateway there ({cloud_gateway.GATEWAY_TEMPLATE} by default)",
                )
            )
        return problems
    if isinstance(template, str) and template_spec is not None and not gateway:
        problems.append(
            obj.problem(
                ("spec", "template"),
                f"template '{template}' serves model files; a cloud model on a cluster is "
                f"served through a gateway template: the built-in "
                f"{cloud_gateway.GATEWAY_TEMPLATE} (the default) or one whose runtime.command "
                "takes {upstream_url}",
            )
        )
    found = index.get("Cluster", {}).get(cluster)
    if found is not None and found.spec.get("driver") != "local":
        problems.append(
            obj.problem(
                ("spec", "cluster"),
                f"Cluster '{cluster}' is a {found.spec.get('driver')} cluster; the cloud "
                "gateway runs on local clusters only (it has no container image yet): use "
                "a local Cluster, or remove spec.cluster to use the provider's endpoint",
            )
        )
    return problems


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def credential_problems(obj: SpecObject) -> list[Diagnostic]:
    """A Credential's ``base_url``: a cloud provider's, over https (http on loopback)."""
    base_url = obj.spec.get("base_url")
    if not isinstance(base_url, str):
        return []
    provider = obj.spec.get("provider")
    if provider not in cloud_providers.PROVIDERS:
        return [
            obj.problem(
                ("spec", "base_url"),
                f"base_url is for cloud provider credentials; {provider!r} is not one "
                f"({', '.join(sorted(cloud_providers.PROVIDERS))})",
            )
        ]
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme != "https" and not _loopback(parts.hostname or ""):
        return [
            obj.problem(
                ("spec", "base_url"),
                f"base_url {base_url!r} would send the provider key in clear text: use https "
                "(http only on a loopback address)",
            )
        ]
    return []
