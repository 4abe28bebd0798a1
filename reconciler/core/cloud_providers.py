"""The catalogue of cloud model providers, as data: which URI form each one takes.

A ``cloud_model`` source names a provider and a URI; nothing is downloaded or scanned, so
the URI is all there is to check. Each provider's entry says the form in words, gives an
example and the pattern its parts must match; :func:`validate_uri` checks a source
against it and returns the parts, or raises CloudUriError with the expected form. Pure.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

_NAME = r"[A-Za-z0-9][A-Za-z0-9._:@+-]*"


@dataclasses.dataclass(frozen=True)
class CloudProvider:
    name: str
    display_name: str
    uri_form: str
    example: str
    parts: tuple[str, ...]
    part_patterns: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def pattern(self) -> re.Pattern[str]:
        groups = "/".join(
            f"(?P<{part}>{self.part_patterns.get(part, _NAME)})" for part in self.parts
        )
        return re.compile(rf"^{re.escape(self.name)}/{groups}$")


def _provider(
    name: str,
    display: str,
    parts: tuple[str, ...],
    example: str,
    patterns: Mapping[str, str] | None = None,
) -> CloudProvider:
    form = "/".join((name, *(f"<{part}>" for part in parts)))
    return CloudProvider(name, display, form, example, parts, dict(patterns or {}))


PROVIDERS: dict[str, CloudProvider] = {
    p.name: p
    for p in (
        _provider("openai", "OpenAI", ("model",), "openai/gpt-4o-mini"),
        _provider("anthropic", "Anthropic", ("model",), "anthropic/claude-3-5-sonnet-20241022"),
        _provider(
            "azure_openai",
            "Azure OpenAI",
            ("resource", "deployment"),
            "azure_openai/my-resource/gpt-4o",
            {"resource": r"[a-z0-9][a-z0-9-]{1,62}"},
        ),
        _provider(
            "bedrock",
            "Amazon Bedrock",
            ("region", "model"),
            "bedrock/us-east-1/anthropic.claude-3-haiku-20240307-v1:0",
            {"region": r"[a-z]{2}(-gov)?-[a-z]+-\d"},
        ),
        _provider(
            "vertex",
            "Google Vertex AI",
            ("project", "location", "model"),
            "vertex/my-project/us-central1/gemini-1.5-pro",
            {"project": r"[a-z][a-z0-9-]{4,28}[a-z0-9]", "location": r"[a-z]+(-[a-z]+\d?)*"},
        ),
        _provider(
            "together",
            "Together AI",
            ("organization", "model"),
            "together/meta-llama/Llama-3-8b-chat-hf",
        ),
        _provider("groq", "Groq", ("model",), "groq/llama-3.1-8b-instant"),
        _provider("mistral", "Mistral AI", ("model",), "mistral/mistral-large-latest"),
        _provider("cohere", "Cohere", ("model",), "cohere/command-r-plus"),
    )
}


class CloudUriError(ValueError):
    """A provider not in the catalogue, or a URI not of its provider's form."""


def validate_uri(*, provider: str, uri: str) -> dict[str, str]:
    """The named parts of ``uri`` for ``provider``; raise CloudUriError saying the form."""
    entry = PROVIDERS.get(provider)
    if entry is None:
        known = ", ".join(sorted(PROVIDERS))
        raise CloudUriError(f"unknown cloud provider {provider!r}; known providers: {known}")
    match = entry.pattern().fullmatch(uri)
    if match is None:
        raise CloudUriError(
            f"uri {uri!r} is not of the form {entry.uri_form} that {entry.display_name} "
            f"models take, e.g. {entry.example}"
        )
    return {key: value for key, value in match.groupdict().items() if value is not None}
