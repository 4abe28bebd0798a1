"""The OpenAI-compatible base URL a cloud provider serves a model at (pure).

A cloud-model Deployment runs nothing: its endpoint is the provider's own API, so its
``endpoint_url`` is made here from the provider's catalogue entry and the parts of the
Model's URI (``azure_openai/<resource>/<deployment>`` gives the resource's host). Every
provider of ``core.cloud_providers`` has a base URL here; a test keeps the two in step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from reconciler.core import cloud_providers
from reconciler.core.render.placeholders import RenderError

BASE_URLS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com/v1",
    "azure_openai": "https://{resource}.openai.azure.com/openai/v1",
    "bedrock": "https://bedrock-runtime.{region}.amazonaws.com/openai/v1",
    "vertex": (
        "https://{location}-aiplatform.googleapis.com/v1/projects/{project}"
        "/locations/{location}/endpoints/openapi"
    ),
    "together": "https://api.together.xyz/v1",
    "groq": "https://api.groq.com/openai/v1",
    "mistral": "https://api.mistral.ai/v1",
    "cohere": "https://api.cohere.ai/compatibility/v1",
}
"""Per provider, its OpenAI-compatible base URL; ``{part}`` is a part of the Model's URI."""


@dataclasses.dataclass(frozen=True)
class CloudEndpoint:
    """Where a cloud model answers, and the model id to send in each request."""

    provider: str
    endpoint_url: str
    model: str


def cloud_endpoint(*, provider: str, uri: str) -> CloudEndpoint:
    """The endpoint of ``uri`` at ``provider``; RenderError when either is not known.

    The model id sent in requests is the URI's last part (``openai/gpt-4o-mini`` ->
    ``gpt-4o-mini``; ``together/meta-llama/Llama-3-8b-chat-hf`` ->
    ``meta-llama/Llama-3-8b-chat-hf``, as Together names it).
    """
    try:
        parts = cloud_providers.validate_uri(provider=provider, uri=uri)
    except cloud_providers.CloudUriError as exc:
        raise RenderError(str(exc)) from None
    base = BASE_URLS.get(provider)
    if base is None:
        raise RenderError(f"cloud provider {provider!r} has no known endpoint URL")
    return CloudEndpoint(
        provider=provider,
        endpoint_url=base.format_map(parts),
        model=_model_id(provider, parts),
    )


def _model_id(provider: str, parts: Mapping[str, str]) -> str:
    if provider == "together":
        return f"{parts['organization']}/{parts['model']}"
    if provider == "azure_openai":
        return parts["deployment"]
    return parts["model"]
