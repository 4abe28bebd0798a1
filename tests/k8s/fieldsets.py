"""Field sets and merges of server-side apply, as the API double needs them.

The real kube-apiserver tracks, per field manager, the set of fields it owns
(``managedFields[].fieldsV1``) and merges objects by their schema: maps key by key, lists
of objects by their merge key (containers by ``name``, ports by port and protocol), other
lists atomically. This module is that logic for the kinds the double serves, written from
the documented behaviour: paths are tuples of ``f:name`` / ``k:{json}`` / ``.`` elements,
exactly the keys of a ``fieldsV1`` tree.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

Path = tuple[str, ...]

# Fields that are not tracked: identity and bookkeeping of the object.
_UNTRACKED_TOP = {"apiVersion", "kind", "status"}
_UNTRACKED_METADATA = {
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "selfLink",
}
# map[string]string fields: their fieldsV1 carries a "." entry of their own.
_GRANULAR_MAPS = {"labels", "annotations", "matchLabels", "selector", "nodeSelector"}
_DEFAULT_PROTOCOL = "TCP"


def list_key(field: str, item: Any) -> dict[str, Any] | None:
    """The merge key of one item of list ``field``, or None when the list is atomic."""
    if not isinstance(item, dict):
        return None
    if field in {"containers", "initContainers", "env", "volumes", "imagePullSecrets"}:
        return {"name": item.get("name")}
    if field == "volumeMounts":
        return {"mountPath": item.get("mountPath")}
    if field == "ports":
        if "containerPort" in item:
            return {
                "containerPort": item.get("containerPort"),
                "protocol": item.get("protocol", _DEFAULT_PROTOCOL),
            }
        return {"port": item.get("port"), "protocol": item.get("protocol", _DEFAULT_PROTOCOL)}
    if field == "conditions":
        return {"type": item.get("type")}
    return None


def is_keyed_list(field: str, value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(list_key(field, item) is not None for item in value)
    )


def key_element(key: dict[str, Any]) -> str:
    return "k:" + json.dumps(key, sort_keys=True, separators=(",", ":"))


def leaf_paths(obj: dict[str, Any], *, status: bool = False) -> dict[Path, Any]:
    """Every tracked path of ``obj`` with its value (``.`` markers map to None).

    ``status`` True tracks only ``status`` (the status subresource), else everything else.
    """
    found: dict[Path, Any] = {}
    for name, value in obj.items():
        if status != (name == "status") or (not status and name in _UNTRACKED_TOP):
            continue
        if name == "metadata" and isinstance(value, dict):
            meta = {k: v for k, v in value.items() if k not in _UNTRACKED_METADATA}
            _walk(meta, ("f:metadata",), found)
        else:
            _walk_value(name, value, ("f:" + name,), found)
    return found


def _walk(obj: dict[str, Any], prefix: Path, found: dict[Path, Any]) -> None:
    for name, value in obj.items():
        _walk_value(name, value, (*prefix, "f:" + name), found)


def _walk_value(name: str, value: Any, path: Path, found: dict[Path, Any]) -> None:
    if isinstance(value, dict) and value:
        if name in _GRANULAR_MAPS:
            found[(*path, ".")] = None
        _walk(value, path, found)
    elif is_keyed_list(name, value):
        for item in value:
            key = list_key(name, item)
            assert key is not None
            item_path = (*path, key_element(key))
            found[(*item_path, ".")] = None
            _walk(item, item_path, found)
    else:
        found[path] = value


def to_fields_v1(paths: set[Path]) -> dict[str, Any]:
    """The fieldsV1 tree of a set of paths."""
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for element in path:
            node = node.setdefault(element, {})
    return tree


def from_fields_v1(tree: dict[str, Any], prefix: Path = ()) -> set[Path]:
    """The set of paths of a fieldsV1 tree (every leaf of the tree is one path)."""
    paths: set[Path] = set()
    for element, child in tree.items():
        path = (*prefix, element)
        if isinstance(child, dict) and child:
            paths |= from_fields_v1(child, path)
        else:
            paths.add(path)
    return paths


def format_path(path: Path) -> str:
    """``.spec.template.spec.containers[name="server"].image``, as the server prints it."""
    text = ""
    for element in path:
        if element == ".":
            continue
        if element.startswith("f:"):
            text += "." + element[2:]
        elif element.startswith("k:"):
            key = json.loads(element[2:])
            text += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(key.items())) + "]"
    return text


def _find_item(items: list[Any], field: str, key: dict[str, Any]) -> int | None:
    for index, item in enumerate(items):
        if list_key(field, item) == key:
            return index
    return None


def value_at(obj: Any, path: Path) -> tuple[bool, Any]:
    """(present, value) at ``path`` of ``obj``."""
    node = obj
    field = ""
    for element in path:
        if element == ".":
            continue
        if element.startswith("f:"):
            field = element[2:]
            if not isinstance(node, dict) or field not in node:
                return False, None
            node = node[field]
        elif element.startswith("k:"):
            if not isinstance(node, list):
                return False, None
            index = _find_item(node, field, json.loads(element[2:]))
            if index is None:
                return False, None
            node = node[index]
    return True, node


def remove_path(obj: dict[str, Any], path: Path) -> None:
    """Delete the field (or list item, for a ``.`` path) at ``path``; prune empty parents."""
    if path and path[-1] == ".":
        path = path[:-1]
    if not path:
        return
    parents: list[tuple[Any, str, str]] = []
    node: Any = obj
    field = ""
    for element in path:
        if element.startswith("f:"):
            field = element[2:]
            if not isinstance(node, dict) or field not in node:
                return
            parents.append((node, "f", field))
            node = node[field]
        elif element.startswith("k:"):
            if not isinstance(node, list):
                return
            index = _find_item(node, field, json.loads(element[2:]))
            if index is None:
                return
            parents.append((node, "k", str(index)))
            node = node[index]
    container, how, where = parents[-1]
    if how == "f":
        del container[where]
    else:
        del container[int(where)]
    for container, how, where in reversed(parents[:-1]):
        child = container[where] if how == "f" else container[int(where)]
        if child in ({}, []):
            if how == "f":
                del container[where]
            else:
                del container[int(where)]
        else:
            break


def merge_applied(live: dict[str, Any], applied: dict[str, Any]) -> dict[str, Any]:
    """``applied`` merged into a copy of ``live``: maps by key, keyed lists by merge key."""
    result = copy.deepcopy(live)
    _merge_into(result, applied)
    return result


def _merge_into(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for name, value in patch.items():
        current = target.get(name)
        if value is None:
            target.pop(name, None)
        elif isinstance(value, dict) and isinstance(current, dict):
            _merge_into(current, value)
        elif is_keyed_list(name, value) and isinstance(current, list):
            merged = list(current)
            for item in value:
                key = list_key(name, item)
                assert key is not None
                index = _find_item(merged, name, key)
                if index is None:
                    merged.append(copy.deepcopy(item))
                elif isinstance(merged[index], dict):
                    _merge_into(merged[index], item)
            target[name] = merged
        else:
            target[name] = copy.deepcopy(value)


def merge_patch(live: dict[str, Any], patch: dict[str, Any], *, strategic: bool) -> dict[str, Any]:
    """RFC 7386 merge patch, or Kubernetes' strategic merge (keyed lists merged by key)."""
    result = copy.deepcopy(live)
    if strategic:
        _merge_into(result, patch)
    else:
        _json_merge(result, patch)
    return result


def _json_merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for name, value in patch.items():
        if value is None:
            target.pop(name, None)
        elif isinstance(value, dict):
            current = target.get(name)
            if not isinstance(current, dict):
                current = {}
                target[name] = current
            _json_merge(current, value)
        else:
            target[name] = copy.deepcopy(value)


def iter_paths_under(paths: set[Path], prefix: Path) -> Iterator[Path]:
    for path in paths:
        if path[: len(prefix)] == prefix:
            yield path
