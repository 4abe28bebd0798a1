"""Turning composed YAML nodes into plain values, refusing what a spec never needs.

Plain dicts, lists, str, int, float, bool and None come out; nothing else can. Refused,
each with the position of the node: a tag outside the YAML core schema (no custom or
language tags), a duplicate key, a key that is not a scalar, alias expansion past the
limit (billion laughs), a recursive alias, an alias that nests values deeper than the
depth limit, and more nodes than the limit. Sizes and heights of aliased subtrees are
memoised, so a hostile file is rejected in time linear in its size. An alias yields the
same Python object as its anchor (never a copy), so memory stays linear too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from reconciler.load import nodes as n
from reconciler.load.limits import LoadLimits
from reconciler.load.marks import TextPositions


class ConstructError(Exception):
    """A node that a spec file may not contain, with its 1-based position."""

    def __init__(self, message: str, *, line: int, col: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col


def _tag(node: Any) -> str:
    tag = node.tag
    return tag if isinstance(tag, str) else str(getattr(tag, "value", tag))


def _int(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    if body.startswith("0o"):
        return sign * int(body[2:], 8)
    if body.startswith("0x"):
        return sign * int(body[2:], 16)
    return sign * int(body, 10)


def _float(text: str) -> float:
    lowered = text.lower()
    if lowered.endswith(".inf"):
        return -math.inf if lowered.startswith("-") else math.inf
    if lowered == ".nan":
        return math.nan
    return float(text)


def _bool(text: str) -> bool:
    return text.lower() == "true"


def _null(text: str) -> None:
    return None


_SCALARS: dict[str, tuple[Callable[[str], Any], re.Pattern[str]]] = {
    tag: (make, pattern)
    for (tag, pattern, _), make in zip(
        n.CORE_RESOLVERS[:4], (_bool, _int, _float, _null), strict=True
    )
}

_SCALAR, _SEQUENCE, _MAPPING = 0, 1, 2
_KIND_OF_TYPE: dict[type, int] = {}


def _kind(node: Any) -> int:
    cls = type(node)
    kind = _KIND_OF_TYPE.get(cls)
    if kind is None:
        name = n.node_kind(node)
        kind = _MAPPING if name == "mapping" else _SEQUENCE if name == "sequence" else _SCALAR
        _KIND_OF_TYPE[cls] = kind
    return kind


class _Builder:
    """Builds one document. Alias bookkeeping (``track_aliases``) is needed only when the
    text has an anchor (``&``): without one no node can be reached twice."""

    def __init__(self, limits: LoadLimits, where: TextPositions, *, track_aliases: bool) -> None:
        self.limits = limits
        self.where = where
        self.track_aliases = track_aliases
        self.done: dict[int, Any] = {}
        self.sizes: dict[int, int] = {}
        self.heights: dict[int, int] = {}
        self.active: set[int] = set()
        self.alias_budget = limits.max_alias_expansion
        self.nodes_left = limits.max_nodes

    def size(self, node: Any) -> int:
        """Nodes in the subtree, counting every alias as the subtree it expands to."""
        key = id(node)
        cached = self.sizes.get(key)
        if cached is not None:
            return cached
        total = 1
        kind = _kind(node)
        if kind == _MAPPING:
            for k, v in node.value:
                total += self.size(k) + self.size(v)
        elif kind == _SEQUENCE:
            for item in node.value:
                total += self.size(item)
        self.sizes[key] = total
        return total

    def height(self, node: Any) -> int:
        """Levels of nesting of the subtree, aliases expanded (1 for a scalar)."""
        key = id(node)
        cached = self.heights.get(key)
        if cached is not None:
            return cached
        kind = _kind(node)
        children: list[Any] = []
        if kind == _MAPPING:
            children = [v for _, v in node.value]
        elif kind == _SEQUENCE:
            children = node.value
        total = 1 + max((self.height(child) for child in children), default=0)
        self.heights[key] = total
        return total

    def _error(self, node: Any, message: str) -> ConstructError:
        line, col = self.where.of_node(node)
        return ConstructError(message, line=line, col=col)

    def _alias(self, node: Any, depth: int, at: Any, value: Any) -> Any:
        """The value of a node met a second time, if the limits allow it."""
        where = at if at is not None else node
        if depth + self.height(node) - 1 > self.limits.max_depth:
            raise self._error(
                where,
                f"alias nests values deeper than {self.limits.max_depth} levels (load.max_depth)",
            )
        self.alias_budget -= self.size(node)
        if self.alias_budget < 0:
            raise self._error(
                where,
                f"alias expansion exceeds {self.limits.max_alias_expansion} nodes "
                "(billion-laughs guard)",
            )
        return value

    def build(self, node: Any, depth: int = 1, at: Any = None) -> Any:
        """Plain value of ``node``; ``at`` is where an alias to it is reported."""
        tracking = self.track_aliases
        key = 0
        if tracking:
            key = id(node)
            if key in self.done:
                return self._alias(node, depth, at, self.done[key])
            if key in self.active:
                raise self._error(
                    at if at is not None else node, "recursive alias: a node contains itself"
                )
        self.nodes_left -= 1
        if self.nodes_left < 0:
            raise self._error(
                node,
                f"more than {self.limits.max_nodes} nodes in one document (load.max_nodes)",
            )
        tag = node.tag
        if type(tag) is not str:
            tag = _tag(node)
        kind = _KIND_OF_TYPE.get(type(node))
        if kind is None:
            kind = _kind(node)
        value: Any
        if kind == _SCALAR:
            value = node.value if tag == n.STR else self._scalar(node, tag)
        elif kind == _SEQUENCE:
            if tag != n.SEQ:
                raise self._bad_tag(node, tag)
            if tracking:
                self.active.add(key)
            value = [self.build(item, depth + 1, node) for item in node.value]
        else:
            if tag != n.MAP:
                raise self._bad_tag(node, tag)
            if tracking:
                self.active.add(key)
            value = self.mapping(node, depth)
        if tracking:
            self.active.discard(key)
            self.done[key] = value
        return value

    def _scalar(self, node: Any, tag: str) -> Any:
        found = _SCALARS.get(tag)
        if found is None:
            raise self._bad_tag(node, tag)
        make, pattern = found
        text = str(node.value)
        if not pattern.match(text):  # only an explicit tag (`!!int abc`) gets here
            shown = tag.replace("tag:yaml.org,2002:", "!!")
            raise self._error(node, f"'{text[:40]}' is not a valid {shown}")
        return make(text)

    def mapping(self, node: Any, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        merged: dict[Any, Any] | None = None
        inner = depth + 1
        build = self.build
        for key_node, value_node in node.value:
            key_tag = key_node.tag
            if (
                key_tag == n.STR
                and not self.track_aliases
                and _KIND_OF_TYPE.get(type(key_node)) == _SCALAR
            ):
                key = key_node.value
            else:
                if _kind(key_node) != _SCALAR:
                    raise self._error(key_node, "a mapping key must be a scalar")
                if _tag(key_node) == n.MERGE:
                    if merged is None:
                        merged = {}
                    merged.update(self._merge_sources(value_node, depth))
                    continue
                key = build(key_node, inner)
            if key in result:  # also 1, 1.0 and true: one Python key
                raise self._error(key_node, f"duplicate key '{key_node.value}'")
            result[key] = build(value_node, inner, key_node)
        if merged:
            return {**merged, **result}
        return result

    def _merge_sources(self, value_node: Any, depth: int) -> dict[Any, Any]:
        sources = value_node.value if _kind(value_node) == _SEQUENCE else [value_node]
        merged: dict[Any, Any] = {}
        for source in reversed(sources):
            built = self.build(source, depth, value_node)
            if not isinstance(built, dict):
                raise self._error(
                    source, "a merge key ('<<') takes a mapping or a list of mappings"
                )
            merged.update(built)
        return merged

    def _bad_tag(self, node: Any, tag: str) -> ConstructError:
        shown = tag.replace("tag:yaml.org,2002:", "!!")
        return self._error(node, f"tag '{shown}' is not allowed: specs use plain YAML values only")


def construct_document(
    root: Any, *, limits: LoadLimits, where: TextPositions, anchors: bool = True
) -> Any:
    """Plain value of one document's root node; raise ConstructError on refused content.

    ``anchors=False`` promises that the text has no anchor (no ``&``), which lets the
    builder skip the alias bookkeeping.
    """
    return _Builder(limits, where, track_aliases=anchors).build(root)
