"""Loading spec files: bytes in, plain documents out, with every problem as a diagnostic.

This is the single entry point for YAML in the project. It enforces the limits of
:mod:`reconciler.load.limits`, decodes UTF-8, composes with the chosen parser, builds
plain values, and reports what fails as diagnostics positioned in the file, so one bad
file never hides the problems of another and never raises.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from reconciler.core.diagnostics import Diagnostic
from reconciler.load import construct, positions
from reconciler.load import nodes as n
from reconciler.load.limits import DEFAULT_LIMITS, LoadLimits
from reconciler.load.marks import TextPositions


@dataclasses.dataclass(frozen=True)
class SourceFile:
    """One spec file's bytes, its path relative to the validated root, and its blob id."""

    path: str
    data: bytes
    blob: str | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class _FileText:
    path: str
    text: str
    parser: n.ParserName
    max_depth: int


@dataclasses.dataclass(frozen=True, eq=False)
class RawDocument:
    """One YAML document of a file, as plain values, able to locate any of its nodes."""

    path: str
    index: int
    line: int
    col: int
    value: Any
    file: _FileText = dataclasses.field(repr=False)

    def locate(self, path: Sequence[str | int], *, key: bool = False) -> tuple[int, int]:
        """1-based (line, col) of the key or value at ``path`` inside this document."""
        if not path:
            return self.line, self.col
        return positions.locate(
            self.file.text,
            parser=self.file.parser,
            max_depth=self.file.max_depth,
            document=self.index,
            path=path,
            key=key,
        )


@dataclasses.dataclass(frozen=True)
class FileLoad:
    """What one file gave: its documents and the problems found while loading it."""

    path: str
    documents: tuple[RawDocument, ...]
    diagnostics: tuple[Diagnostic, ...]


def _error(path: str, line: int, col: int, message: str) -> Diagnostic:
    return Diagnostic(path=path, line=line, col=col, severity="error", message=message)


def _decode(source: SourceFile) -> str | Diagnostic:
    data = source.data
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        return _error(source.path, line, col, "file is not valid UTF-8")


def load_file(
    source: SourceFile,
    *,
    limits: LoadLimits = DEFAULT_LIMITS,
    parser: n.ParserName | None = None,
) -> FileLoad:
    """Load every document of one file; never raises for bad content."""
    chosen: n.ParserName = parser or n.default_parser()
    if len(source.data) > limits.max_file_bytes:
        message = (
            f"file is {len(source.data)} bytes, above the limit of {limits.max_file_bytes} "
            "bytes (load.max_file_bytes)"
        )
        return FileLoad(source.path, (), (_error(source.path, 1, 1, message),))
    text = _decode(source)
    if isinstance(text, Diagnostic):
        return FileLoad(source.path, (), (text,))
    if "\x00" in text:
        offset = text.index("\x00")
        line = text.count("\n", 0, offset) + 1
        col = offset - (text.rfind("\n", 0, offset) + 1) + 1
        return FileLoad(source.path, (), (_error(source.path, line, col, "NUL byte in file"),))
    file_text = _FileText(source.path, text, chosen, limits.max_depth)
    where = TextPositions(text)
    anchors = "&" in text
    documents: list[RawDocument] = []
    problems: list[Diagnostic] = []
    index = -1
    try:
        for index, root in enumerate(n.compose_documents(text, limits=limits, parser=chosen)):
            if index >= limits.max_documents:
                line, col = where.of_node(root)
                problems.append(
                    _error(
                        source.path,
                        line,
                        col,
                        f"more than {limits.max_documents} documents in one file "
                        "(load.max_documents)",
                    )
                )
                break
            try:
                value = construct.construct_document(
                    root, limits=limits, where=where, anchors=anchors
                )
            except construct.ConstructError as exc:
                problems.append(_error(source.path, exc.line, exc.col, exc.message))
                continue
            if value is None:
                continue
            line, col = where.of_node(root)
            documents.append(RawDocument(source.path, index, line, col, value, file_text))
    except n.ComposeError as exc:
        line, col = where.of(exc.mark) if exc.mark is not None else (1, 1)
        message = exc.message
        if exc.context_mark is not None:
            opened = where.of(exc.context_mark)
            if opened != (line, col):
                message = f"{message} (it began at line {opened[0]}, column {opened[1]})"
        problems.append(_error(source.path, line, col, message))
    except Exception as exc:  # a parser bug must not hide the other files' problems
        problems.append(
            _error(source.path, 1, 1, f"YAML parser failed on this file ({type(exc).__name__})")
        )
    return FileLoad(source.path, tuple(documents), tuple(problems))
