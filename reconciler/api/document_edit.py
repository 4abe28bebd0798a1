"""Changing one YAML document of a spec file in place, leaving every other byte alone.

An API write replaces, changes or removes one object, and people keep several objects
in one file with comments and flow lists of their own. Re-serializing the whole file
would restyle the neighbours and lose every comment, so a write edits text instead:

- the file is parsed into events only to find where each document's content starts and
  ends (its first node to the end of the line of its last one); the ``---`` lines, the
  comments before and after a document's content and every other document stay
  byte-identical;
- the changed document is loaded round-trip (ruamel.yaml keeps its comments, key order,
  flow or block style and quoting), the new value is merged into it leaf by leaf (an
  unchanged subtree keeps its text style), and only that range is replaced by its dump;
- a removed document takes its ``---`` line, the comments between that line and its
  content (for a first document without ``---``: the comment lines right above it), its
  content and the blank lines after it; comments after its content stay with what
  follows.

Every result is loaded again with the project's own loader (YAML 1.2 core schema) and
must give exactly the intended documents; when a round-trip dump would not (anchors and
merge keys, a kept block scalar at the end), the document is written as a plain dump in
the same range, and if even that fails the edit is refused rather than written wrong.
"""

from __future__ import annotations

import copy
import dataclasses
import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml import events as yaml_events
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from reconciler.load.documents import SourceFile, load_file

WIDTH = 4096
"""Line width of dumps: wide, so a long string is never folded onto new lines."""


class DocumentEditError(Exception):
    """The file cannot be edited in place (it does not parse, or no edit reloads to the
    intended documents); nothing is written."""


@dataclasses.dataclass(frozen=True)
class Document:
    """One document of a file: its value (as the daemon loads it) and where it lies."""

    index: int
    value: Any
    marker: int | None
    """Offset of its ``---`` line, or None when the document starts implicitly."""
    start: int
    """Offset of the start of the line its content begins on."""
    end: int
    """Offset just past the line its content ends on (trailing blank lines excluded)."""


Change = Callable[[Any], Any]


def documents(text: str) -> list[Document]:
    """The non-empty documents of ``text`` with their spans; raise DocumentEditError."""
    values = _loaded_values(text)
    spans = _spans(text)
    found: list[Document] = []
    for index, (marker, first, last) in enumerate(spans):
        if index not in values or first is None or last is None:
            continue
        found.append(
            Document(
                index=index,
                value=values[index],
                marker=marker,
                start=_line_start(text, first),
                end=_content_end(text, last),
            )
        )
    return found


def replace_document(text: str, document: Document, new_value: Any) -> str:
    """``text`` with ``document`` holding ``new_value``; its comments and style kept where
    its content did not change, every other byte of the file unchanged."""
    expected = {d.index: d.value for d in documents(text)}
    expected[document.index] = new_value
    candidates: list[Callable[[str], str]] = [
        lambda original: _round_trip(original, document.value, new_value),
        lambda _original: _plain_dump(new_value),
    ]
    for make in candidates:
        for end in _end_choices(text, document):
            try:
                body = make(text[document.start : end])
            except (YAMLError, TypeError, ValueError, KeyError, AttributeError):
                continue  # a shape the round trip cannot take: the next candidate
            edited = text[: document.start] + body + text[end:]
            if _reloads_as(edited, expected):
                return edited
    raise DocumentEditError(
        "the document cannot be rewritten in place so that the file still loads as "
        "intended; edit the file by hand"
    )


def remove_document(text: str, document: Document) -> str:
    """``text`` without ``document``: its ``---`` line, leading comments, content and the
    blank lines after it; the other documents byte-identical."""
    if document.marker is not None:
        begin = _line_start(text, document.marker)
    else:  # the comment lines right above it; a header after a blank line stays
        begin = document.start
        while begin > 0:
            above = text.rfind("\n", 0, begin - 1) + 1
            if not text[above:begin].lstrip().startswith("#"):
                break
            begin = above
    end = document.end
    while end < len(text) and _is_blank_line(text, end):
        end = _next_line(text, end)
    edited = text[:begin] + text[end:]
    expected = {d.index: d.value for d in documents(text) if d.index != document.index}
    if not _reloads_as(edited, expected, renumbered=True):
        raise DocumentEditError(
            "the document cannot be removed in place so that the file still loads as "
            "intended; edit the file by hand"
        )
    return edited


def dump_new(values: Sequence[Any]) -> str:
    """A new file of ``values``, one document each (YAML 1.2, block style)."""
    return "---\n".join(_plain_dump(value) for value in values)


# -- finding the documents ----------------------------------------------------------------


def _loaded_values(text: str) -> dict[int, Any]:
    loaded = load_file(SourceFile(path="<edit>", data=text.encode("utf-8")))
    if loaded.diagnostics:
        raise DocumentEditError(f"the file does not load: {loaded.diagnostics[0].message}")
    return {raw.index: raw.value for raw in loaded.documents}


def _spans(text: str) -> list[tuple[int | None, int | None, int | None]]:
    """Per document: offset of its ``---`` (or None), of its first node, past its last."""
    spans: list[tuple[int | None, int | None, int | None]] = []
    marker: int | None = None
    first: int | None = None
    last: int | None = None
    flows: list[bool] = []
    try:
        for event in YAML(typ="rt", pure=True).parse(text):
            if isinstance(event, yaml_events.DocumentStartEvent):
                marker = event.start_mark.index if event.explicit else None
                first = last = None
                flows = []
            elif isinstance(event, yaml_events.DocumentEndEvent):
                spans.append((marker, first, last))
            elif isinstance(event, yaml_events.CollectionStartEvent):
                first = event.start_mark.index if first is None else first
                flows.append(bool(event.flow_style))
                if event.flow_style:
                    last = event.end_mark.index
            elif isinstance(event, yaml_events.CollectionEndEvent):
                if flows.pop():
                    last = event.end_mark.index
            elif isinstance(event, (yaml_events.ScalarEvent, yaml_events.AliasEvent)):
                first = event.start_mark.index if first is None else first
                last = event.end_mark.index
    except YAMLError as exc:
        raise DocumentEditError(f"the file does not parse: {exc}") from exc
    return spans


def _line_start(text: str, offset: int) -> int:
    """The start of ``offset``'s line when only spaces precede it there, else ``offset``."""
    begin = text.rfind("\n", 0, offset) + 1
    return begin if not text[begin:offset].strip(" \t") else offset


def _next_line(text: str, offset: int) -> int:
    newline = text.find("\n", offset)
    return len(text) if newline < 0 else newline + 1


def _is_blank_line(text: str, offset: int) -> bool:
    return not text[offset : _next_line(text, offset)].strip()


def _content_end(text: str, last: int) -> int:
    """Just past the line holding offset ``last - 1``, then back over blank lines."""
    end = last if last > 0 and text[last - 1] == "\n" else _next_line(text, last)
    while end > 0:
        previous = text.rfind("\n", 0, end - 1) + 1
        if previous >= end or text[previous:end].strip():
            break
        end = previous
    return end


def _end_choices(text: str, document: Document) -> list[int]:
    """Where the replaced range may end: past the content, or past its blank lines too
    (a kept block scalar at the end owns them)."""
    wider = document.end
    while wider < len(text) and _is_blank_line(text, wider):
        wider = _next_line(text, wider)
    return [document.end] if wider == document.end else [document.end, wider]


def _reloads_as(text: str, expected: Mapping[int, Any], *, renumbered: bool = False) -> bool:
    try:
        loaded = documents(text)
    except DocumentEditError:
        return False
    got = [d.value for d in loaded]
    want = [expected[i] for i in sorted(expected)]
    if not renumbered and [d.index for d in loaded] != sorted(expected):
        return False
    return len(got) == len(want) and all(same(a, b) for a, b in zip(got, want, strict=True))


# -- writing one document -------------------------------------------------------------------


def _yaml(mapping: int = 2, sequence: int = 2, offset: int = 0) -> YAML:
    yaml = YAML(typ="rt", pure=True)
    yaml.preserve_quotes = True
    yaml.width = WIDTH
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def _spaces(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def guess_indent(text: str) -> tuple[int, int, int]:
    """The block indentation ``text`` uses, as ruamel.yaml's (mapping, sequence, offset):
    how far a nested key is indented, how far a list item's content is, and how far its
    dash is, each from the parent key; (2, 2, 0) where the text shows none."""
    mapping: int | None = None
    sequence: tuple[int, int] | None = None
    parent: int | None = None
    for line in text.splitlines():
        content = line.strip()
        if not content or content.startswith("#"):
            continue
        here = _spaces(line)
        if parent is not None and here > parent:
            if content.startswith("- ") and sequence is None:
                after = len(content) - len(content[1:].lstrip(" "))
                sequence = (here - parent + after, here - parent)
            elif not content.startswith("-") and mapping is None:
                mapping = here - parent
        parent = here if content.endswith(":") and not content.startswith("-") else None
        if mapping is not None and sequence is not None:
            break
    found_mapping = mapping or 2
    found_sequence, offset = sequence or (found_mapping, 0)
    return found_mapping, max(found_sequence, offset + 2), offset


def _dump(yaml: YAML, value: Any) -> str:
    out = io.StringIO()
    yaml.dump(value, out)
    text = out.getvalue()
    return text if text.endswith("\n") else text + "\n"


def _plain_dump(value: Any) -> str:
    return _dump(_yaml(), value)


def _round_trip(original: str, old_value: Any, new_value: Any) -> str:
    """``original`` (one document's content) loaded round-trip, ``new_value`` merged in."""
    yaml = _yaml(*guess_indent(original))
    merged = merge(yaml.load(original), old_value, new_value)
    return _dump(yaml, merged)


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types (``True`` is not ``1``, ``1`` is not ``1.0``); the
    order of a mapping's keys does not matter."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def merge(node: Any, old: Any, new: Any) -> Any:
    """``new`` written over the round-trip ``node`` that loaded as ``old``: unchanged
    subtrees are kept as loaded (comments, style, quotes), changed mappings and lists are
    changed entry by entry, a replaced collection keeps its flow or block style."""
    if same(old, new):
        return node
    if isinstance(node, CommentedMap) and isinstance(old, Mapping) and isinstance(new, Mapping):
        if node.merge or any(not isinstance(k, str) for k in node):
            return _styled(node, new)
        for key in [k for k in node if k not in new]:
            del node[key]
        for key, value in new.items():
            if key in node and key in old:
                node[key] = merge(node[key], old[key], value)
            else:
                node[key] = _styled(None, value)
        return node
    if isinstance(node, CommentedSeq) and isinstance(old, list) and isinstance(new, list):
        shared = min(len(old), len(new))
        for index in range(shared):
            node[index] = merge(node[index], old[index], new[index])
        del node[shared:]
        for value in new[shared:]:
            node.append(_styled(None, value))
        return node
    return _styled(node, new)


def _styled(node: Any, value: Any) -> Any:
    """``value`` as a fresh node, in the flow or block style ``node`` had (a string in
    the quotes or block style it had)."""
    if isinstance(value, str) and isinstance(node, str) and type(node) is not str:
        return type(node)(value)
    if isinstance(value, Mapping):
        fresh: CommentedMap | CommentedSeq = CommentedMap(
            (k, _styled(None, v)) for k, v in value.items()
        )
    elif isinstance(value, list):
        fresh = CommentedSeq(_styled(None, v) for v in value)
    else:
        return copy.deepcopy(value)
    if isinstance(node, (CommentedMap, CommentedSeq)) and node.fa.flow_style():
        fresh.fa.set_flow_style()
    return fresh
