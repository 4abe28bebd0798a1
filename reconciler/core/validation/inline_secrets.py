"""Refusing secret values in Git: a spec only ever names a secret.

Two signals, each enough on its own: a key whose name says it holds a credential
(``password``, ``api_key``, ``token``...) with a literal string value, and a string
anywhere that has the shape of a well-known credential (provider API keys, private keys,
URLs with a password). A ``secret:`` field must hold a secret's name, and so must each
value of a ``credential:`` mapping (a flow-framework connector's, whose keys are often
named ``api_key``: there the key says what the secret is for, and the value is its
name). The value found is never repeated in the message, so the diagnostic itself leaks
nothing.
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
    ("a password in a URL", re.compile(r"://[^/\s:@]+:[^/\s@]+@")),
    ("a bearer credential", re.compile(r"\b(?:Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{16,}")),
    ("a kubeconfig", re.compile(r"client-key-data:|client-certificate-data:|\btoken:\s*\S{20,}")),
)

Path = tuple[str | int, ...]

# Every shape holds one of these literal hints, which one quick search finds (the shapes
# themselves cost ten times more); the shapes are tried only on the rare string with a
# hint. Shorter strings cannot hold any of the shapes.
_HINT = re.compile(
    r"sk-|hf_|gh[pousr]_|github_pat_|glpat-|AKIA|ASIA|xox[abprs]-|AIza|eyJ|://[^/@\s]*@"
    r"|Bearer|Basic|PRIVATE KEY|-data:|token:"
)
_SHORTEST_SHAPE = 8

_NORMAL_KEYS: dict[str, str] = {}


def _normal(key: str) -> str:
    normal = _NORMAL_KEYS.get(key)
    if normal is None:
        normal = key.lower().replace("-", "").replace("_", "")
        if len(_NORMAL_KEYS) < 10_000:
            _NORMAL_KEYS[key] = normal
    return normal


def _is_template(text: str) -> bool:
    """A string built from ``${{ }}`` placeholders names its secret part, e.g. a header
    ``Bearer ${{ token }}``; it holds no secret value of its own."""
    return "${{" in text


def shape_of(text: str) -> str | None:
    """What kind of credential ``text`` looks like, or None."""
    if len(text) < _SHORTEST_SHAPE or not _HINT.search(text):
        return None
    for label, pattern in _VALUE_SHAPES:
        if pattern.search(text):
            return label
    return None


_SECRET_VALUE = (
    "inline secret value: 'secret' takes the NAME of a secret in the daemon host's secret "
    "store, not its value (value not shown)"
)


def _under_key(key: object) -> str:
    return (
        f"inline secret value under '{key}': name a secret instead "
        "(a Credential with `secret: <name>`); value not shown"
    )


def _shaped(label: str) -> str:
    return (
        f"inline secret value: this looks like {label}; secrets never go in Git, "
        "name one instead (value not shown)"
    )


def _named_secrets(value: dict[Any, Any], path: Path, found: list[tuple[Path, str]]) -> None:
    """A ``credential:`` mapping: each string value names a secret (as ``secret:`` does)."""
    for key, item in value.items():
        text_key = key if isinstance(key, str) else str(key)
        if isinstance(item, str):
            bare = PLACEHOLDER.sub("", item) if _is_template(item) else item
            if bare and (not SECRET_NAME.match(bare) or shape_of(bare) is not None):
                found.append(((*path, text_key), _credential_value(key)))
        elif isinstance(item, dict | list):
            _walk(item, (*path, text_key), found)


def _credential_value(key: object) -> str:
    return (
        f"inline secret value under credential '{key}': its values take the NAME of a "
        "secret in the daemon host's secret store (value not shown)"
    )


def _check_text(text: str, path: Path, found: list[tuple[Path, str]]) -> None:
    if "${{" in text:
        text = PLACEHOLDER.sub("", text)
    label = shape_of(text)
    if label is not None:
        found.append((path, _shaped(label)))


def _walk(value: Any, path: Path, found: list[tuple[Path, str]]) -> None:
    """Append what ``value`` (a mapping or a list) holds; strings are checked inline, the
    hot path of a large repo, so most of them cost one length test."""
    if isinstance(value, dict):
        for key, item in value.items():
            text_key = key if isinstance(key, str) else str(key)
            if isinstance(item, str):
                normal = _normal(text_key)
                if normal == "secret":
                    if not SECRET_NAME.match(item) or shape_of(item) is not None:
                        found.append(((*path, text_key), _SECRET_VALUE))
                        continue
                elif (
                    (normal in _SENSITIVE_KEYS or normal.endswith(_SENSITIVE_SUFFIXES))
                    and item.strip()
                    and not _is_template(item)
                ):
                    found.append(((*path, text_key), _under_key(key)))
                    continue
                if len(item) >= _SHORTEST_SHAPE:
                    _check_text(item, (*path, text_key), found)
            elif isinstance(item, dict) and _normal(text_key) == "credential":
                _named_secrets(item, (*path, text_key), found)
            elif isinstance(item, dict | list):
                _walk(item, (*path, text_key), found)
    else:
        for index, item in enumerate(value):
            if isinstance(item, str):
                if len(item) >= _SHORTEST_SHAPE:
                    _check_text(item, (*path, index), found)
            elif isinstance(item, dict | list):
                _walk(item, (*path, index), found)


# Every sensitive key, once lower-cased and stripped of '-' and '_', ends with one of these
# (then the key's closing quote, if any, and its colon).
_KEY_END = re.compile(
    r"(?:password|passwd|passphrase|token|key|keyid|secret|authorization|credentials)"
    r"[\"']?\s*:"
)


def could_hold_secrets(text: str) -> bool:
    """False only when no string of a file's text can be flagged, so its walk is skipped.

    Every flagged value has a literal hint (:data:`_HINT`) or sits under a key that ends
    as :data:`_KEY_END` says; a file with backslash escapes (which could spell either
    differently) is always walked. Most spec files have neither, and skip the walk.
    """
    if "\\" in text or _HINT.search(text):
        return True
    return _KEY_END.search(text.lower().replace("-", "").replace("_", "")) is not None


def find_inline_secrets(value: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """(path, message) for every secret value found inside ``value``."""
    found: list[tuple[Path, str]] = []
    if isinstance(value, dict | list):
        _walk(value, path, found)
    elif isinstance(value, str) and len(value) >= _SHORTEST_SHAPE:
        _check_text(value, path, found)
    return iter(found)


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
