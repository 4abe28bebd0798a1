"""The field names a spec kind accepts at a path, for did-you-mean on unknown fields.

Pydantic says a field is unknown but not which ones were expected; the kind's JSON Schema
(the one ``schemas/`` holds, generated from the same models) does. The path is the YAML
path of the mapping (union tags already removed); every union branch that could be there
contributes its fields.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from reconciler.specs.registry import DOCUMENT_MODELS

Schema = dict[str, Any]


@functools.cache
def _schema(kind: str) -> Schema:
    return DOCUMENT_MODELS[kind].model_json_schema()


def _branches(node: Any, defs: Schema, depth: int = 0) -> list[Schema]:
    """``node`` with ``$ref`` followed and unions flattened into their members."""
    if not isinstance(node, dict) or depth > 32:
        return []
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _branches(defs.get(ref.removeprefix("#/$defs/")), defs, depth + 1)
    members = [m for key in ("anyOf", "oneOf", "allOf") for m in node.get(key) or []]
    if members:
        return [b for member in members for b in _branches(member, defs, depth + 1)] + [node]
    return [node]


def _step(node: Schema, key: str | int, defs: Schema) -> list[Schema]:
    found: list[Schema] = []
    for branch in _branches(node, defs):
        if isinstance(key, int):
            found.extend(_branches(branch.get("items"), defs))
            continue
        properties = branch.get("properties") or {}
        if key in properties:
            found.extend(_branches(properties[key], defs))
        elif isinstance(branch.get("additionalProperties"), dict):
            found.extend(_branches(branch["additionalProperties"], defs))
    return found


def field_names(kind: str, path: Sequence[str | int]) -> list[str]:
    """Every field name the mapping at ``path`` of a ``kind`` document may have, sorted."""
    if kind not in DOCUMENT_MODELS:
        return []
    root = _schema(kind)
    defs = root.get("$defs") or {}
    nodes = _branches(root, defs)
    for key in path:
        nodes = [found for node in nodes for found in _step(node, key, defs)]
    names = {name for node in nodes for name in (node.get("properties") or {})}
    return sorted(names)
