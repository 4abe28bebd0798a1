"""Which cloud provider and model a flow-framework connector points at (pure).

A flow-framework template's ``create_connector`` describes a remote model service by its
``parameters`` and the URLs of its ``actions`` (``https://${parameters.endpoint}/v1/chat/
completions``). Here such a connector becomes what the rest of the daemon knows how to
serve: a provider of :mod:`reconciler.core.cloud_providers` and a ``cloud_model`` URI of
that provider's form (``openai/gpt-3.5-turbo``), so the connector is a Credential and
the model registered through it a cloud Model. The provider is told by the host the
actions call (``api.openai.com``, ``bedrock-runtime.us-east-1.amazonaws.com``, ...); the
model by ``parameters.model`` or, failing that, the URL's path. A connector to a host
that is none of those providers is a ConnectorError naming the host and the known ones.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from reconciler.core import cloud_providers

_PLACEHOLDER = re.compile(r"\$\{parameters\.([A-Za-z0-9_.-]+)\}")
_AZURE = re.compile(r"^(?P<resource>[a-z0-9][a-z0-9-]{1,62})\.openai\.azure\.com$")
_BEDROCK = re.compile(r"^bedrock-runtime\.(?P<region>[a-z]{2}(-gov)?-[a-z]+-\d)\.amazonaws\.com$")
_VERTEX = re.compile(r"^(?P<location>[a-z]+(-[a-z]+\d?)*)-aiplatform\.googleapis\.com$")
_PLAIN_HOSTS: dict[str, str] = {
    "api.openai.com": "openai",
    "api.anthropic.com": "anthropic",
    "api.together.xyz": "together",
    "api.groq.com": "groq",
    "api.mistral.ai": "mistral",
    "api.cohere.ai": "cohere",
    "api.cohere.com": "cohere",
}
KNOWN_HOSTS: tuple[str, ...] = (
    *sorted(_PLAIN_HOSTS),
    "<resource>.openai.azure.com",
    "bedrock-runtime.<region>.amazonaws.com",
    "<location>-aiplatform.googleapis.com",
)


class ConnectorError(ValueError):
    """A connector whose service is not a cloud provider this daemon serves."""


@dataclasses.dataclass(frozen=True)
class ConnectorTarget:
    """The provider a connector calls, the URL it was told by, and its model's URI."""

    provider: str
    uri: str
    url: str

    def source(self, credential: str) -> dict[str, str]:
        """A cloud Model's ``spec.source`` for this target, authorised by ``credential``."""
        return {
            "provider_type": "cloud_model",
            "provider": self.provider,
            "uri": self.uri,
            "credential": credential,
        }


def expand(text: str, parameters: Mapping[str, Any]) -> str:
    """``text`` with each ``${parameters.name}`` replaced by that parameter (as the flow
    framework does when it calls an action); an unknown name is left as it is."""

    def value(match: re.Match[str]) -> str:
        found = parameters.get(match.group(1))
        return match.group(0) if found is None else str(found)

    return _PLACEHOLDER.sub(value, text)


def _action_urls(actions: Sequence[Any], parameters: Mapping[str, Any]) -> list[str]:
    """The actions' URLs, expanded, a ``predict`` action's first."""
    ranked = sorted(
        (a for a in actions if isinstance(a, Mapping) and isinstance(a.get("url"), str)),
        key=lambda a: a.get("action_type") != "predict",
    )
    return [expand(str(a["url"]), parameters) for a in ranked]


def _path_part(path: str, after: str) -> str | None:
    """The path segment that follows segment ``after`` (``/model/<m>/invoke``)."""
    parts = [p for p in path.split("/") if p]
    for index, part in enumerate(parts[:-1]):
        if part == after:
            return parts[index + 1]
    return None


def _text(parameters: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = parameters.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return None


def _model_parts(host: str, path: str, parameters: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The provider and the parts of its URI after the provider name."""
    model = _text(parameters, "model")
    if host in _PLAIN_HOSTS:
        return _PLAIN_HOSTS[host], [model or ""]
    if match := _AZURE.match(host):
        deployment = _path_part(path, "deployments") or _text(
            parameters, "deployment_name", "deployment"
        )
        return "azure_openai", [match["resource"], deployment or model or ""]
    if match := _BEDROCK.match(host):
        return "bedrock", [match["region"], model or _path_part(path, "model") or ""]
    if match := _VERTEX.match(host):
        project = _path_part(path, "projects") or _text(parameters, "project", "project_id")
        model = model or _path_part(path, "models")
        return "vertex", [project or "", match["location"], model or ""]
    raise ConnectorError(
        f"the connector calls {host!r}, which is not a cloud provider this daemon serves; "
        f"known hosts: {', '.join(KNOWN_HOSTS)}"
    )


def connector_target(parameters: Mapping[str, Any], actions: Sequence[Any]) -> ConnectorTarget:
    """The cloud provider and model URI of a connector; ConnectorError when its actions
    call no known provider, or give no model of that provider's form."""
    urls = _action_urls(actions, parameters)
    if not urls:
        raise ConnectorError("the connector has no action with a url")
    url = urls[0]
    if "${" in url:
        raise ConnectorError(f"action url {url!r} names a parameter the connector does not set")
    split = urlsplit(url if "://" in url else f"https://{url}")
    host = (split.hostname or "").lower()
    if not host:
        raise ConnectorError(f"action url {url!r} has no host")
    provider, parts = _model_parts(host, split.path, parameters)
    if not all(parts):
        form = cloud_providers.PROVIDERS[provider].uri_form
        raise ConnectorError(
            f"the connector calls {provider} ({host}) but does not say which model: set "
            f"parameters.model (the model URI takes the form {form})"
        )
    uri = "/".join((provider, *parts))
    try:
        cloud_providers.validate_uri(provider=provider, uri=uri)
    except cloud_providers.CloudUriError as exc:
        raise ConnectorError(f"the connector's model: {exc}") from None
    return ConnectorTarget(provider=provider, uri=uri, url=url)
