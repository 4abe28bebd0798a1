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
from collections.abc import Callable
from typing import Any

from reconciler.load import nodes as n
from reconciler.load.limits import LoadLimits


class ConstructError(Exception):
    """A node that a spec file may not contain, with its 1-based position."""

    def __init__(self, message: str, *, line: int, col: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col


def _pos(node: Any) -> tuple[int, int]:
    mark = node.start_mark
    return int(mark.line) + 1, int(mark.column) + 1


def _tag(node: Any) -> str:
    tag = node.tag
    return tag if isinstance(tag, str) else str(getattr(tag, "value", tag))


def _int(text: str) -> int:
    body = text.replace("_", "")
    sign = -1 if body.startswith("-") else 1
    body = body.lstrip("+-")
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


def _str(text: str) -> str:
    return text


def _bool(text: str) -> bool:
    return text.lower() == "true"


def _null(text: str) -> None:
    return None


_SCALARS: dict[str, Callable[[str], Any]] = {
    n.STR: _str,
    n.INT: _int,
    n.FLOAT: _float,
    n.BOOL: _bool,
    n.NULL: _null,
}


class _Builder:
    def __init__(self, limits: LoadLimits) -> None:
        self.limits = limits
        self.done: dict[int, Any] = {}
        self.sizes: dict[int, int] = {}
        self.heights: dict[int, int] = {}
        self.active: set[int] = set()
        self.alias_budget = limits.max_alias_expansion
        self.nodes = 0

    def size(self, node: Any) -> int:
        """Nodes in the subtree, counting every alias as the subtree it expands to."""
        key = id(node)
        cached = self.sizes.get(key)
        if cached is not None:
            return cached
        total = 1
        kind = n.node_kind(node)
        if kind == "mapping":
            for k, v in node.value:
                total += self.size(k) + self.size(v)
        elif kind == "sequence":
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
        kind = n.node_kind(node)
        children: list[Any] = []
        if kind == "mapping":
            children = [v for _, v in node.value]
        elif kind == "sequence":
            children = node.value
        total = 1 + max((self.height(child) for child in children), default=0)
        self.heights[key] = total
        return total

    def build(self, node: Any, depth: int = 1, *, at: Any = None) -> Any:
        """Plain value of ``node``; ``at`` is where an alias to it is reported."""
        key = id(node)
        if key in self.active:
            line, col = _pos(at if at is not None else node)
            raise ConstructError("recursive alias: a node contains itself", line=line, col=col)
        if key in self.done:
            if depth + self.height(node) - 1 > self.limits.max_depth:
                line, col = _pos(at if at is not None else node)
                raise ConstructError(
                    f"alias nests values deeper than {self.limits.max_depth} levels "
                    "(load.max_depth)",
                    line=line,
                    col=col,
                )
            self.alias_budget -= self.size(node)
            if self.alias_budget < 0:
                line, col = _pos(at if at is not None else node)
                raise ConstructError(
                    "alias expansion exceeds "
                    f"{self.limits.max_alias_expansion} nodes (billion-laughs guard)",
                    line=line,
                    col=col,
                )
            return self.done[key]
        self.nodes += 1
        if self.nodes > self.limits.max_nodes:
            line, col = _pos(node)
            raise ConstructError(
                f"more than {self.limits.max_nodes} nodes in one document (load.max_nodes)",
                line=line,
                col=col,
            )
        tag = _tag(node)
        kind = n.node_kind(node)
        if kind == "scalar":
            make = _SCALARS.get(tag)
            if make is None:
                raise self._bad_tag(node, tag)
            value = make(node.value)
        elif kind == "sequence":
            if tag != n.SEQ:
                raise self._bad_tag(node, tag)
            self.active.add(key)
            value = [self.build(item, depth + 1, at=node) for item in node.value]
            self.active.discard(key)
        else:
            if tag != n.MAP:
                raise self._bad_tag(node, tag)
            self.active.add(key)
            value = self.mapping(node, depth)
            self.active.discard(key)
        self.done[key] = value
        return value

    def mapping(self, node: Any, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        merged: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if n.node_kind(key_node) != "scalar":
                line, col = _pos(key_node)
                raise ConstructError("a mapping key must be a scalar", line=line, col=col)
            if _tag(key_node) == n.MERGE:
                merged.update(self._merge_sources(value_node, depth))
                continue
            key = self.build(key_node, depth + 1)
            if key in result:  # also 1, 1.0 and true: one Python key
                line, col = _pos(key_node)
                raise ConstructError(f"duplicate key '{key_node.value}'", line=line, col=col)
            result[key] = self.build(value_node, depth + 1, at=key_node)
        if merged:
            return {**merged, **result}
        return result

    def _merge_sources(self, value_node: Any, depth: int) -> dict[Any, Any]:
        kind = n.node_kind(value_node)
        sources = value_node.value if kind == "sequence" else [value_node]
        merged: dict[Any, Any] = {}
        for source in reversed(sources):
            built = self.build(source, depth, at=value_node)
            if not isinstance(built, dict):
                line, col = _pos(source)
                raise ConstructError(
                    "a merge key ('<<') takes a mapping or a list of mappings", line=line, col=col
                )
            merged.update(built)
        return merged

    @staticmethod
    def _bad_tag(node: Any, tag: str) -> ConstructError:
        line, col = _pos(node)
        shown = tag.replace("tag:yaml.org,2002:", "!!")
        return ConstructError(
            f"tag '{shown}' is not allowed: specs use plain YAML values only", line=line, col=col
        )


def construct_document(root: Any, *, limits: LoadLimits) -> Any:
    """Plain value of one document's root node; raise ConstructError on refused content."""
    return _Builder(limits).build(root)
