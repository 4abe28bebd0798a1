"""Filling a template's ``{name}`` placeholders, with an error naming any unknown one.

Only ``{identifier}`` counts as a placeholder, so braces in JSON arguments stay as they
are. A value may be left for the driver (the local driver fills ``{port}`` itself, having
allocated it): such names are kept verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")

MODEL_PATH = "model_path"
PORT = "port"
HOST = "host"
CONCURRENT_REQUESTS = "concurrent_requests"
DEPLOYMENT = "deployment"
ENDPOINT_NAME = "endpoint_name"
"""The Deployment's ``spec.endpoint_name``: the model name its server answers under."""
RUNTIME_BIN = "runtime_bin"
SERVER_CONFIG = "server_config"
"""A file the deploy step writes for the server (llama-cpp-python's config: the base model
and one entry per LoRA adapter); local driver only."""
DAEMON_PYTHON = "daemon_python"
"""The daemon's own interpreter (the cloud gateway runs from the daemon's environment)."""
UPSTREAM_URL = "upstream_url"
"""A cloud Deployment's provider base URL (its Credential's ``base_url``, else the
provider's public one): only gateway templates take it."""
PROVIDER = "provider"
PROVIDER_MODEL = "provider_model"
"""The model id a cloud provider is sent (``gpt-4o-mini`` for ``openai/gpt-4o-mini``)."""

KNOWN: frozenset[str] = frozenset(
    {
        MODEL_PATH,
        PORT,
        HOST,
        CONCURRENT_REQUESTS,
        DEPLOYMENT,
        ENDPOINT_NAME,
        RUNTIME_BIN,
        SERVER_CONFIG,
        DAEMON_PYTHON,
        UPSTREAM_URL,
        PROVIDER,
        PROVIDER_MODEL,
    }
)


class RenderError(ValueError):
    """A template that cannot be rendered for this deployment; the message says why."""


def names_in(texts: Iterable[str]) -> set[str]:
    """Every placeholder name used in ``texts``."""
    return {match.group(1) for text in texts for match in PLACEHOLDER.finditer(text)}


def fill(
    text: str,
    values: Mapping[str, str],
    *,
    keep: frozenset[str] = frozenset(),
    where: str,
) -> str:
    """``text`` with each placeholder replaced; ``keep`` names stay for the driver.

    ``where`` names the template field for the error message.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in keep:
            return match.group(0)
        if name in values:
            return values[name]
        if name in KNOWN:
            raise RenderError(f"{where}: placeholder {{{name}}} has no value for this deployment")
        known = ", ".join(f"{{{known}}}" for known in sorted(KNOWN))
        raise RenderError(f"{where}: unknown placeholder {{{name}}} (known: {known})")

    return PLACEHOLDER.sub(replace, text)
