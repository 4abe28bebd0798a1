"""Composing YAML text into node trees, with the fast C parser or ruamel.yaml.

Two parsers produce the same node shape (``tag``, ``value``, ``start_mark``):
libyaml through PyYAML's C extension (the default: about 20x faster than a pure-Python
parser, and it reports every node's line and column), and ruamel.yaml's composer, used
when the C extension is missing or when asked for. Both resolve plain scalars by the
same YAML 1.2 core schema table (``yes``/``no``/``on`` stay strings, ``1_000`` and
``2001-12-14`` too), so a spec means the same whichever parser read it.

Nesting depth is bounded while composing, by the same hook in both parsers (the
resolver's ``descend_resolver``, called once per node before it is built): libyaml's
composer recurses on the C stack and would crash the process on ``[[[[...`` without it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Literal

from reconciler.load.limits import LoadLimits

ParserName = Literal["libyaml", "ruamel"]

STR = "tag:yaml.org,2002:str"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
BOOL = "tag:yaml.org,2002:bool"
NULL = "tag:yaml.org,2002:null"
MAP = "tag:yaml.org,2002:map"
SEQ = "tag:yaml.org,2002:seq"
MERGE = "tag:yaml.org,2002:merge"

# The YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution), plus `<<`.
CORE_RESOLVERS: list[tuple[str, re.Pattern[str], str]] = [
    (BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), "tTfF"),
    (INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), "-+0123456789"),
    (
        FLOAT,
        re.compile(
            r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        "-+0123456789.",
    ),
    (NULL, re.compile(r"^(?:~|null|Null|NULL|)$"), "~nN"),
    (MERGE, re.compile(r"^<<$"), "<"),
]


def _core_table() -> dict[str | None, list[tuple[str, re.Pattern[str]]]]:
    table: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {}
    for tag, regexp, first in CORE_RESOLVERS:
        for ch in first:
            table.setdefault(ch, []).append((tag, regexp))
    table.setdefault("", []).append((NULL, CORE_RESOLVERS[3][1]))
    return table


CORE_TABLE = _core_table()


_PLAIN_TAGS: dict[str, str] = {}
_PLAIN_TAGS_MAX = 50_000


def resolve_plain(value: str) -> str:
    """The core-schema tag of a plain (unquoted) scalar."""
    tag = _PLAIN_TAGS.get(value)
    if tag is not None:
        return tag
    tag = STR
    for candidate, regexp in CORE_TABLE.get(value[:1], ()):
        if regexp.match(value):
            tag = candidate
            break
    if len(_PLAIN_TAGS) < _PLAIN_TAGS_MAX and len(value) < 64:
        _PLAIN_TAGS[value] = tag
    return tag


class ComposeError(Exception):
    """The text is not well-formed YAML, or breaks a limit while composing.

    ``mark`` is the parser's mark of the problem (``line``, ``column``, ``index``), or
    None when the parser gave none; :class:`reconciler.load.marks.TextPositions` turns
    it into a position. ``context_mark`` is where the construct being parsed began (the
    opening bracket of an unclosed flow collection), when the parser gave one.
    """

    def __init__(self, message: str, *, mark: Any | None, context_mark: Any | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark
        self.context_mark = context_mark


class DepthExceeded(Exception):
    """Raised from inside a composer when nesting goes past the limit."""

    def __init__(self, parent: Any) -> None:
        super().__init__("nesting too deep")
        self.parent = parent


class _DepthGuard:
    """Mixin for either parser's resolver: counts open nodes, refuses one too deep."""

    _depth: int
    _max_depth: int

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        self._depth += 1
        if self._depth > self._max_depth:
            raise DepthExceeded(current_node)

    def ascend_resolver(self) -> None:
        self._depth -= 1


def _libyaml_loader_class() -> type[Any] | None:
    try:
        from yaml._yaml import CParser
        from yaml.resolver import BaseResolver
    except ImportError:  # pragma: no cover - PyYAML wheels ship the C extension
        return None

    from yaml.nodes import ScalarNode, SequenceNode

    class CoreLoader(_DepthGuard, CParser, BaseResolver):
        yaml_implicit_resolvers = CORE_TABLE

        def __init__(self, stream: str, max_depth: int) -> None:
            CParser.__init__(self, stream)
            BaseResolver.__init__(self)
            self._depth = 0
            self._max_depth = max_depth

        def resolve(self, kind: Any, value: str | None, implicit: tuple[bool, bool]) -> str:
            # Called by the C composer for every node: a memo of plain scalars (keys and
            # common values repeat) keeps the regular expressions off the hot path.
            if kind is ScalarNode:
                if not implicit[0]:
                    return STR
                assert value is not None
                return resolve_plain(value)
            return SEQ if kind is SequenceNode else MAP

    return CoreLoader


def _ruamel_resolver_class() -> type[Any]:
    from ruamel.yaml.resolver import BaseResolver

    class CoreResolver(_DepthGuard, BaseResolver):
        yaml_implicit_resolvers = CORE_TABLE

        def __init__(self, version: Any = None, loader: Any = None, max_depth: int = 64) -> None:
            BaseResolver.__init__(self, loader)
            self._depth = 0
            self._max_depth = max_depth

        @property
        def processing_version(self) -> tuple[int, int]:
            return (1, 2)

    return CoreResolver


_LIBYAML = _libyaml_loader_class()


def available_parsers() -> tuple[ParserName, ...]:
    return ("libyaml", "ruamel") if _LIBYAML is not None else ("ruamel",)


def default_parser() -> ParserName:
    return "libyaml" if _LIBYAML is not None else "ruamel"


def _mark_of(exc: Any) -> Any | None:
    return getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)


def _parse_error(exc: Any) -> ComposeError:
    return ComposeError(
        _describe(exc), mark=_mark_of(exc), context_mark=getattr(exc, "context_mark", None)
    )


def _describe(exc: Any) -> str:
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    if problem and context:
        return f"invalid YAML: {context}, {problem}"
    if problem:
        return f"invalid YAML: {problem}"
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"invalid YAML: {first}"


def _too_deep(exc: DepthExceeded, limits: LoadLimits) -> ComposeError:
    parent = exc.parent
    return ComposeError(
        f"nesting deeper than {limits.max_depth} levels (load.max_depth)",
        mark=parent.start_mark if parent is not None else None,
    )


# What can hide flow brackets from the nesting pre-scan: quoted scalars and comments. A
# quote inside a plain scalar (``don't``) or a ``#`` that starts no comment makes the scan
# skip brackets, so it can only undercount; brackets in block scalars make it overcount,
# which :func:`_ours_instead` checks by composing before it reports anything.
_FLOW_TOKENS = re.compile(r"""[\[{]|[\]}]|"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|#[^\n]*""")


def flow_depth_cut(text: str, max_depth: int) -> int | None:
    """The offset just past the flow bracket that opens level ``max_depth + 1``, if any.

    Flow depth alone never exceeds the total nesting depth, so the text up to that offset
    already holds a node deeper than the limit. libyaml's scanner reads an unclosed flow
    collection to its end before the composer sees a node (and newer libyaml refuses past
    1000 levels by itself), so the depth guard needs the prefix to fire first.
    """
    depth = 0
    for match in _FLOW_TOKENS.finditer(text):
        char = match.group()[0]
        if char in "[{":
            depth += 1
            if depth > max_depth:
                return match.end()
        elif char in "]}":
            depth = max(depth - 1, 0)
    return None


def _ours_instead(text: str, limits: LoadLimits) -> ComposeError | None:
    """Our depth diagnostic for ``text`` when libyaml refused it for a reason of its own."""
    cut = flow_depth_cut(text, limits.max_depth)
    if cut is None:
        return None
    import yaml

    assert _LIBYAML is not None
    loader = _LIBYAML(text[:cut], limits.max_depth)
    try:
        while loader.check_node():
            loader.get_node()
    except DepthExceeded as exc:
        return _too_deep(exc, limits)
    except yaml.YAMLError:
        return None
    finally:
        loader.dispose()
    return None


def _compose_libyaml(text: str, limits: LoadLimits) -> Iterator[Any]:
    import yaml

    assert _LIBYAML is not None
    loader = _LIBYAML(text, limits.max_depth)
    try:
        while loader.check_node():
            yield loader.get_node()
    except DepthExceeded as exc:
        raise _too_deep(exc, limits) from None
    except yaml.YAMLError as exc:
        # libyaml's own refusals (its 1000-level cap, an unclosed bracket at the end of a
        # deep file) come after our limit would have fired: report ours where it applies.
        raise _ours_instead(text, limits) or _parse_error(exc) from None
    finally:
        loader.dispose()


def _compose_ruamel(text: str, limits: LoadLimits) -> Iterator[Any]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    resolver_cls = _ruamel_resolver_class()

    class Resolver(resolver_cls):  # type: ignore[misc, valid-type]
        def __init__(self, version: Any = None, loader: Any = None) -> None:
            super().__init__(version, loader, limits.max_depth)

    yaml = YAML(typ="safe", pure=True)
    yaml.Resolver = Resolver
    yaml.allow_duplicate_keys = True  # duplicates are reported by our constructor
    try:
        yield from yaml.compose_all(text)
    except DepthExceeded as exc:
        raise _too_deep(exc, limits) from None
    except RecursionError:  # pragma: no cover - the depth guard fires long before
        raise ComposeError(
            f"nesting deeper than {limits.max_depth} levels (load.max_depth)", mark=None
        ) from None
    except YAMLError as exc:
        raise _parse_error(exc) from None


def compose_documents(text: str, *, limits: LoadLimits, parser: ParserName) -> Iterator[Any]:
    """Yield the root node of each document in ``text``; raise ComposeError on bad YAML."""
    if parser == "libyaml" and _LIBYAML is not None:
        return _compose_libyaml(text, limits)
    return _compose_ruamel(text, limits)


def node_kind(node: Any) -> str:
    """``scalar``, ``mapping`` or ``sequence`` for a node of either parser."""
    name = type(node).__name__
    if name == "MappingNode":
        return "mapping"
    if name == "SequenceNode":
        return "sequence"
    return "scalar"
