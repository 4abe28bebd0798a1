"""Finding the line and column of any value of a loaded document, on demand.

Positions are needed only for diagnostics, which are rare, so documents do not carry a
position per node (that would double the memory of a 10,000-spec repo). A lookup
re-composes the file's text (cached for the few files that have problems) and walks the
node tree along the path, pointing at the key or at the value as asked.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from reconciler.load import nodes as n
from reconciler.load.limits import LoadLimits
from reconciler.load.marks import TextPositions


@functools.lru_cache(maxsize=16)
def _roots(
    text: str, parser: n.ParserName, max_depth: int
) -> tuple[tuple[Any, ...], TextPositions]:
    limits = LoadLimits(max_depth=max_depth)
    roots: list[Any] = []
    try:
        for root in n.compose_documents(text, limits=limits, parser=parser):
            roots.append(root)
    except n.ComposeError:
        pass
    return tuple(roots), TextPositions(text)


def _scalar_text(node: Any) -> str | None:
    return str(node.value) if n.node_kind(node) == "scalar" else None


def _find_pair(mapping: Any, wanted: str, seen: set[int]) -> tuple[Any, Any] | None:
    if id(mapping) in seen:
        return None
    seen.add(id(mapping))
    merges: list[Any] = []
    for key_node, value_node in mapping.value:
        text = _scalar_text(key_node)
        if text == "<<":
            merges.append(value_node)
        elif text == wanted:
            return key_node, value_node
    for source in merges:
        candidates = source.value if n.node_kind(source) == "sequence" else [source]
        for candidate in candidates:
            if n.node_kind(candidate) == "mapping":
                found = _find_pair(candidate, wanted, seen)
                if found is not None:
                    return found
    return None


def locate_in_node(
    root: Any, path: Sequence[str | int], *, where: TextPositions, key: bool = False
) -> tuple[int, int]:
    """1-based (line, col) of ``path`` under ``root``.

    With ``key`` the position of the last path element's key is returned (for "unknown
    field" problems); otherwise the value's. A path that stops short (a missing field)
    yields the key of the deepest mapping that exists, where the field would go (or the
    start of that mapping when it is a list item, which has no key).
    """
    node = root
    owner_key: Any = None
    for depth, element in enumerate(path):
        last = depth == len(path) - 1
        kind = n.node_kind(node)
        if kind == "mapping":
            pair = _find_pair(node, str(element), set())
            if pair is None:
                return where.of_node(owner_key) if owner_key is not None else where.of_node(node)
            if last and key:
                return where.of_node(pair[0])
            owner_key, node = pair
        elif kind == "sequence" and isinstance(element, int) and 0 <= element < len(node.value):
            owner_key, node = None, node.value[element]
        else:
            return where.of_node(owner_key) if owner_key is not None else where.of_node(node)
    return where.of_node(node)


def locate(
    text: str,
    *,
    parser: n.ParserName,
    max_depth: int,
    document: int,
    path: Sequence[str | int],
    key: bool = False,
) -> tuple[int, int]:
    """Position of ``path`` in document number ``document`` of ``text``."""
    roots, where = _roots(text, parser, max_depth)
    if document >= len(roots):
        return 1, 1
    return locate_in_node(roots[document], path, where=where, key=key)
