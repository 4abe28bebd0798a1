"""The kubernetes client's failures turned into the cluster driver's own errors.

Only this package sees ``ApiException`` and urllib3's errors: each becomes a
``ClusterError`` subclass raised ``from`` it, with a message a person can act on (what we
did, on which object, and the server's own ``Status`` message and causes) and never the
credentials: every message passes through a scrubber that removes the token.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, NoReturn

import urllib3.exceptions
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from reconciler.drivers.clusters import protocol
from reconciler.drivers.clusters.kubernetes_watch import WatchClosed

_BEARER = re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+")


class KubeconfigError(protocol.ClusterAuthError):
    """The kubeconfig text cannot be used (not YAML, no such context, no credentials)."""


RolloutFailedError = protocol.RolloutFailedError


RolloutTimeoutError = protocol.RolloutTimeoutError


class Scrubber:
    """Removes secrets (the token, any bearer header) from text bound for a message."""

    def __init__(self, secrets: list[str]) -> None:
        self._secrets = [s for s in secrets if s]

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return _BEARER.sub("Bearer ***", text)


def status_of(error: ApiException) -> dict[str, Any]:
    """The ``Status`` object of an error response, or an empty dict."""
    try:
        body = json.loads(error.body or "")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def describe(error: ApiException) -> str:
    """The server's message and causes (``field: message``), without headers or body dump."""
    status = status_of(error)
    message = str(status.get("message") or error.reason or "no message")
    causes = (status.get("details") or {}).get("causes") or []
    fields = [f"{c.get('field')}: {c.get('message')}" for c in causes if c.get("field")]
    if fields and status.get("reason") == "Invalid":
        return f"{message} (fields: {'; '.join(fields)})"
    return message


def raise_for(error: Exception, *, action: str, scrub: Scrubber) -> NoReturn:
    """Raise the ClusterError for ``error`` that happened while doing ``action``."""
    if isinstance(error, ApiException):
        status = error.status or 0
        text = scrub(f"{action}: HTTP {status} {describe(error)}")
        kind: Callable[[str], protocol.ClusterError]
        if status in {401, 403}:
            kind = protocol.ClusterAuthError
        elif status == 409:
            kind = protocol.EndpointConflictError
        elif status in {400, 422}:
            kind = protocol.InvalidEndpointError
        elif status == 404:
            kind = protocol.EndpointNotFoundError
        elif status in {0, 429, 500, 502, 503, 504}:
            kind = protocol.ClusterUnreachableError
        else:
            kind = protocol.ClusterError
        raise kind(text) from error
    if isinstance(error, WatchClosed):  # the driver was replaced or shut down: try again
        raise protocol.ClusterUnreachableError(scrub(f"{action}: {error}")) from None
    if isinstance(error, urllib3.exceptions.HTTPError | OSError):
        raise protocol.ClusterUnreachableError(
            scrub(f"{action}: the API server did not answer ({type(error).__name__}: {error})")
        ) from error
    if isinstance(error, ConfigException):
        raise KubeconfigError(scrub(f"{action}: {error}")) from None
    raise protocol.ClusterError(scrub(f"{action}: {type(error).__name__}: {error}")) from None
