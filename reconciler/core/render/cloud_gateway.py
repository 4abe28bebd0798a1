"""What a cloud Model's gateway on a Cluster is given (pure).

A Deployment of a ``cloud_model`` Model with ``spec.cluster`` runs a gateway there: a
template whose command takes ``{upstream_url}`` (the built-in ``cloud-gateway``, the
default). This module says which templates are gateways and fills their placeholders:
the provider's base URL (the Credential's ``base_url`` when it has one), the provider
and the model id it is sent. The key is no placeholder: the step puts it in the
environment variable :data:`KEY_ENV` of the gateway's process only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.core.render import cloud_endpoints, placeholders

GATEWAY_TEMPLATE = "cloud-gateway"
"""The built-in gateway template, taken when a cloud Deployment on a Cluster names none."""
KEY_ENV = "RECONCILER_GATEWAY_API_KEY"
"""Where the gateway reads the provider key (reconciler.gateway.server reads the same)."""


def is_gateway(template: Mapping[str, Any] | None) -> bool:
    """Whether a template spec (as a mapping) serves cloud models: its runtime command
    takes ``{upstream_url}``."""
    runtime = template.get("runtime") if isinstance(template, Mapping) else None
    command = runtime.get("command") if isinstance(runtime, Mapping) else None
    if not isinstance(command, list):
        return False
    texts = [part for part in command if isinstance(part, str)]
    return placeholders.UPSTREAM_URL in placeholders.names_in(texts)


def upstream(*, provider: str, uri: str, base_url: str | None) -> cloud_endpoints.CloudEndpoint:
    """Where the gateway forwards to and the model id it sends; RenderError when the
    provider or the URI is not known. ``base_url`` (a Credential's) wins over the
    provider's public URL."""
    found = cloud_endpoints.cloud_endpoint(provider=provider, uri=uri)
    if base_url:
        return cloud_endpoints.CloudEndpoint(
            provider=found.provider, endpoint_url=base_url.rstrip("/"), model=found.model
        )
    return found


def gateway_values(found: cloud_endpoints.CloudEndpoint, *, daemon_python: str) -> dict[str, str]:
    """The placeholders a gateway template's command is filled with."""
    return {
        placeholders.DAEMON_PYTHON: daemon_python,
        placeholders.UPSTREAM_URL: found.endpoint_url,
        placeholders.PROVIDER: found.provider,
        placeholders.PROVIDER_MODEL: found.model,
    }
