"""Shared helpers: the canonical examples, and documents changed in one place."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from reconciler.specs import parse_document

REPO = Path(__file__).parents[2]
EXAMPLES = REPO / "examples"
SHARED_SPEC = REPO.parent / "shared" / "spec"
EXAMPLE_FILES = ("clusters.yaml", "models.yaml", "deployments.yaml", "workflows.yaml")
DELETE = object()

RawDocument = dict[str, Any]
"""One YAML document as yaml.safe_load gives it."""


@functools.cache
def _parsed_examples() -> tuple[tuple[str, int, RawDocument], ...]:
    """The example files parsed once per process; callers get copies. Parsing them again
    for each ``example()`` (hundreds of calls, many at collection) cost seconds of CPU
    in every pytest worker."""
    found = []
    for filename in EXAMPLE_FILES:
        text = (EXAMPLES / filename).read_text(encoding="utf-8")
        for index, document in enumerate(yaml.safe_load_all(text)):
            found.append((filename, index, document))
    return tuple(found)


def example_documents() -> list[tuple[str, int, RawDocument]]:
    """(file, index, document) for every document of every example file."""
    return copy.deepcopy(list(_parsed_examples()))


def example(kind: str, name: str) -> RawDocument:
    """A deep copy of the example document ``kind/name``."""
    for _, _, document in _parsed_examples():
        if document["kind"] == kind and document["metadata"]["name"] == name:
            return copy.deepcopy(document)
    raise LookupError(f"no example {kind}/{name}")


def changed(document: RawDocument, path: str, value: object) -> RawDocument:
    """A copy of ``document`` with the dotted ``path`` set to ``value`` (or removed)."""
    result = copy.deepcopy(document)
    *parents, last = path.split(".")
    node: Any = result
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    if value is DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return result


def errors_of(document: object) -> list[tuple[str, str]]:
    """(dotted location, message) of every error parse_document reports."""
    with pytest.raises(ValidationError) as caught:
        parse_document(document)
    return [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in caught.value.errors()]
