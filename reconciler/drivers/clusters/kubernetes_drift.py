"""Drift of a managed Kubernetes object: which field we applied differs now, and who did it.

Every object the driver applies carries the manifest it applied (an annotation), so drift
is found by comparing with the live object on each observation, not by a stored hash: each
field we set is looked up in the live object (lists of containers, ports and env merged by
their keys, as the server merges them; quantities compared by value), and a field that
differs is attributed to the field manager that now owns it in ``managedFields``.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes.utils import parse_quantity

from reconciler.drivers.clusters import protocol

APPLIED_ANNOTATION = "reconciler/applied"
_KEYED = {"containers": ("name",), "env": ("name",), "ports": ("containerPort", "port")}
_QUANTITY_PARENTS = {"limits", "requests"}


def _key_of(field: str, item: Any) -> tuple[str, Any] | None:
    if not isinstance(item, dict):
        return None
    for key in _KEYED.get(field, ()):
        if key in item:
            return key, item[key]
    return None


def _leaves(obj: Any, path: tuple[str, ...], parent: str) -> list[tuple[tuple[str, ...], Any]]:
    if isinstance(obj, dict) and obj:
        found = []
        for name, value in obj.items():
            found += _leaves(value, (*path, f"f:{name}"), name)
        return found
    if isinstance(obj, list) and obj and all(_key_of(parent, item) for item in obj):
        found = []
        for item in obj:
            key = _key_of(parent, item)
            assert key is not None
            found += _leaves(item, (*path, f"k:{key[0]}={json.dumps(key[1])}"), "")
        return found
    return [(path, obj)]


def _lookup(obj: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    node = obj
    field = ""
    for element in path:
        if element.startswith("f:"):
            field = element[2:]
            if not isinstance(node, dict) or field not in node:
                return False, None
            node = node[field]
        else:
            name, raw = element[2:].split("=", 1)
            wanted = json.loads(raw)
            if not isinstance(node, list):
                return False, None
            matches = [i for i in node if isinstance(i, dict) and i.get(name) == wanted]
            if not matches:
                return False, None
            node = matches[0]
    return True, node


def dotted(path: tuple[str, ...]) -> str:
    """``.spec.template.spec.containers[name="server"].image``."""
    text = ""
    for element in path:
        if element.startswith("f:"):
            text += "." + element[2:]
        else:
            name, raw = element[2:].split("=", 1)
            text += f"[{name}={raw}]"
    return text


def _same(path: tuple[str, ...], expected: Any, observed: Any) -> bool:
    if expected == observed:
        return True
    parent = path[-2][2:] if len(path) >= 2 and path[-2].startswith("f:") else ""
    if parent in _QUANTITY_PARENTS:
        try:
            expected_amount = parse_quantity(expected)  # type: ignore[no-untyped-call]
            return bool(expected_amount == parse_quantity(observed))  # type: ignore[no-untyped-call]
        except (ValueError, TypeError):
            return False
    return False


def _fields_v1_has(tree: dict[str, Any], path: tuple[str, ...]) -> bool:
    node: Any = tree
    for element in path:
        if not isinstance(node, dict):
            return False
        if element.startswith("f:"):
            if element not in node:
                return False
            node = node[element]
            continue
        name, raw = element[2:].split("=", 1)
        wanted = json.loads(raw)
        match = None
        for candidate in node:
            if candidate.startswith("k:"):
                key = json.loads(candidate[2:])
                if key.get(name) == wanted:
                    match = candidate
                    break
        if match is None:
            return False
        node = node[match]
    return True


def manager_of(live: dict[str, Any], path: tuple[str, ...], *, ours: str) -> str | None:
    """The manager, other than ``ours``, whose managed fields hold ``path``."""
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        manager = entry.get("manager")
        if manager == ours and entry.get("operation") == "Apply":
            continue
        if _fields_v1_has(entry.get("fieldsV1") or {}, path):
            return str(manager)
    return None


def applied_manifest(live: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest we last applied to ``live`` (from its annotation), if any."""
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    text = annotations.get(APPLIED_ANNOTATION)
    if not text:
        return None
    try:
        manifest = json.loads(text)
    except ValueError:
        return None
    return manifest if isinstance(manifest, dict) else None


def find_drift(live: dict[str, Any], *, ours: str) -> list[protocol.Drift]:
    """Each field of the applied manifest that the live object no longer has as applied."""
    desired = applied_manifest(live)
    if desired is None:
        return []
    kind = desired.get("kind", "object")
    drifts = []
    for section in ("metadata", "spec"):
        if section not in desired:
            continue
        base = (f"f:{section}",)
        for path, expected in _leaves(desired[section], base, section):
            if path[:3] == ("f:metadata", "f:annotations", f"f:{APPLIED_ANNOTATION}"):
                continue
            present, observed = _lookup(live, path)
            if present and _same(path, expected, observed):
                continue
            drifts.append(
                protocol.Drift(
                    field=f"{kind}/{(live.get('metadata') or {}).get('name')}{dotted(path)}",
                    manager=manager_of(live, path, ours=ours),
                    observed=json.dumps(observed) if present else None,
                    expected=json.dumps(expected),
                )
            )
    return drifts
