"""Turning pydantic validation errors into positioned, readable diagnostics.

Pydantic reports a location as a tuple of field names and indexes; for tagged unions it
inserts the tag. We walk that location through the raw document to find the real YAML
path (skipping inserted parts), then position unknown fields at their key, missing ones at
the mapping that lacks them, and every other problem at the offending value. An unknown
field gets a did-you-mean from the fields the kind's schema allows there.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from reconciler.core.diagnostics import Diagnostic
from reconciler.core.validation.field_names import field_names
from reconciler.core.validation.objects import did_you_mean
from reconciler.load.documents import RawDocument


def _yaml_path(value: Any, loc: Sequence[str | int]) -> tuple[list[str | int], bool]:
    """The path of ``loc`` inside ``value``, and whether it reached the end."""
    path: list[str | int] = []
    current = value
    items = list(loc)
    i = 0
    while i < len(items):
        element = items[i]
        if isinstance(current, dict):
            if element in current:
                path.append(element)
                current = current[element]
            elif i + 1 < len(items) and items[i + 1] in current:
                pass  # an inserted union tag: skip it
            else:
                path.append(element)
                return path, False
        elif isinstance(current, list) and isinstance(element, int):
            if 0 <= element < len(current):
                path.append(element)
                current = current[element]
            else:
                return path, False
        elif i == len(items) - 1:
            return path, True
        else:
            pass  # a union member name inserted by pydantic
        i += 1
    return path, True


_LONGEST_MESSAGE = 400


def _unknown_field(path: Sequence[str | int], dotted: str, kind: str | None) -> str:
    hint = ""
    if kind is not None and path and isinstance(path[-1], str):
        hint = did_you_mean(path[-1], field_names(kind, path[:-1]))
    return f"unknown field '{dotted}'{hint}"


def _message(error: ErrorDetails, dotted: str) -> str:
    kind = error["type"]
    loc = error["loc"]
    if kind == "missing" and loc and isinstance(loc[-1], int):
        return f"{dotted}: too few items (item #{loc[-1] + 1} is missing)"
    if kind == "missing":
        return f"missing required field '{dotted}'"
    if kind == "extra_forbidden":
        return f"unknown field '{dotted}'"
    if loc and loc[-1] == "[key]":
        return f"{dotted}: key must be a string" if kind == "string_type" else f"{dotted}: bad key"
    text = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    if text[:1].isupper() and not text[1:2].isupper():
        text = text[0].lower() + text[1:]
    if kind in {"literal_error", "enum"} and "input" in error:
        text = f"{text}, got {error['input']!r}"
    if len(text) > _LONGEST_MESSAGE:
        text = text[: _LONGEST_MESSAGE - 3] + "..."
    if not dotted or text.startswith(dotted):
        return text
    return f"{dotted}: {text}"


def _position(doc: RawDocument, error: ErrorDetails, path: list[str | int]) -> tuple[int, int]:
    """Unknown fields and bad keys at their key, missing fields at the mapping that lacks
    them (its key), a missing item at its list, anything else at the value."""
    kind = error["type"]
    loc = error["loc"]
    if kind == "extra_forbidden" or (loc and loc[-1] == "[key]"):
        return doc.locate(path, key=True)
    if kind == "missing" and not (loc and isinstance(loc[-1], int)):
        return doc.locate(path[:-1], key=True) if len(path) > 1 else (doc.line, doc.col)
    return doc.locate(path)


def diagnostics_from_validation_error(
    doc: RawDocument,
    exc: ValidationError,
    *,
    kind: str | None,
    name: str | None,
    skip: Collection[tuple[str | int, ...]] = (),
) -> list[Diagnostic]:
    """One diagnostic per pydantic error. A value at a path in ``skip`` was already
    reported as an inline secret: only an unknown-field error is added there, since any
    other message might repeat the value."""
    found: list[Diagnostic] = []
    for error in exc.errors(include_url=False):
        path, _complete = _yaml_path(doc.value, error["loc"])
        if tuple(path) in skip and error["type"] != "extra_forbidden":
            continue
        dotted = ".".join(str(p) for p in path)
        line, col = _position(doc, error, path)
        if error["type"] == "extra_forbidden":
            message = _unknown_field(path, dotted, kind)
        else:
            message = _message(error, dotted)
        found.append(
            Diagnostic(
                path=doc.path,
                line=line,
                col=col,
                severity="error",
                message=message,
                kind=kind,
                name=name,
            )
        )
    return found
