"""Refusing secret values in Git: a spec only ever names a secret.

Two signals, each enough on its own: a key whose name says it holds a credential
(``password``, ``api_key``, ``token``...) with a literal string value, and a string
anywhere that has the shape of a well-known credential (provider API keys, private keys,
URLs with a password). A ``secret:`` field must hold a secret's name. The value found is
never repeated in the message, so the diagnostic itself leaks nothing.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Iterable, Iterator
from typing import Any

from reconciler.core.diagnostics import Diagnostic
from reconciler.core.substitution import PLACEHOLDER

# Letters a secret's name is made of (the spec checks the finer rules and echoes the name
# in its message). A ``secret:`` value with any other character (space, '/', '+', '=',
# ':'...) or longer than a name can be is taken for a value, and never echoed.
SECRET_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,253}$")

_SENSITIVE_KEYS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "token",
        "accesstoken",
        "authtoken",
        "apitoken",
        "bearertoken",
        "refreshtoken",
        "hftoken",
        "githubtoken",
        "apikey",
        "secretkey",
        "accesskey",
        "secretaccesskey",
        "accesskeyid",
        "privatekey",
        "clientsecret",
        "authorization",
        "credentials",
        "sessiontoken",
        "webhooksecret",
    }
)
_SENSITIVE_SUFFIXES = ("password", "apikey", "secretkey", "privatekey", "clientsecret")

_VALUE_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("an OpenAI-style API key", re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}")),
    ("a Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{30,}")),
    (
        "a GitHub token",
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})"),
    ),
    ("a GitLab token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    (
        "a JSON Web Token",
        re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    ),
    ("a password in a URL", re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.I)),
    ("a bearer credential", re.compile(r"\b(?:Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{16,}")),
    ("a kubeconfig", re.compile(r"client-key-data:|client-certificate-data:|\btoken:\s*\S{20,}")),
)

Path = tuple[str | int, ...]


def _normal(key: str) -> str:
    return key.lower().replace("-", "").replace("_", "")


def _is_template(text: str) -> bool:
    """A string built from ``${{ }}`` placeholders names its secret part, e.g. a header
    ``Bearer ${{ token }}``; it holds no secret value of its own."""
    return "${{" in text


def shape_of(text: str) -> str | None:
    """What kind of credential ``text`` looks like, or None."""
    for label, pattern in _VALUE_SHAPES:
        if pattern.search(text):
            return label
    return None


def find_inline_secrets(value: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """(path, message) for every secret value found inside ``value``."""
    if isinstance(value, dict):
        for key, item in value.items():
            child = (*path, str(key))
            normal = _normal(str(key))
            if normal == "secret":
                if isinstance(item, str) and (
                    not SECRET_NAME.match(item) or shape_of(item) is not None
                ):
                    yield (
                        child,
                        (
                            "inline secret value: 'secret' takes the NAME of a secret in the "
                            "daemon host's secret store, not its value (value not shown)"
                        ),
                    )
                    continue
            elif (
                isinstance(item, str)
                and item.strip()
                and not _is_template(item)
                and (normal in _SENSITIVE_KEYS or normal.endswith(_SENSITIVE_SUFFIXES))
            ):
                yield (
                    child,
                    (
                        f"inline secret value under '{key}': name a secret instead "
                        "(a Credential with `secret: <name>`); value not shown"
                    ),
                )
                continue
            yield from find_inline_secrets(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from find_inline_secrets(item, (*path, index))
    elif isinstance(value, str):
        label = shape_of(PLACEHOLDER.sub("", value))
        if label is not None:
            yield (
                path,
                (
                    f"inline secret value: this looks like {label}; secrets never go in Git, "
                    "name one instead (value not shown)"
                ),
            )


def values_at(value: Any, paths: Iterable[Path]) -> Iterator[str]:
    """The strings found at ``paths`` inside ``value`` (the secret values to hide)."""
    for path in paths:
        current = value
        for element in path:
            if isinstance(current, dict):
                current = current.get(element)
            elif isinstance(current, list) and isinstance(element, int):
                current = current[element] if 0 <= element < len(current) else None
            else:
                current = None
                break
        if isinstance(current, str):
            yield current


_SHORTEST_REDACTED = 6  # shorter "values" are too common as words to hide everywhere


def redact(diagnostic: Diagnostic, secrets: Collection[str]) -> Diagnostic:
    """``diagnostic`` with every inline secret value of the run replaced by ``***``."""
    message = diagnostic.message
    for secret in secrets:
        if len(secret) >= _SHORTEST_REDACTED and secret in message:
            message = message.replace(secret, "***")
    if message == diagnostic.message:
        return diagnostic
    return dataclasses.replace(diagnostic, message=message)
