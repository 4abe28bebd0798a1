"""Every node keeps its line and column: documents locate keys and values on demand."""

from __future__ import annotations

import pytest

from reconciler.load.documents import RawDocument, SourceFile, load_file
from reconciler.load.nodes import available_parsers

TEXT = """\
# comment
apiVersion: reconciler/v1
kind: Model
metadata:
  name: phi
spec:
  tags:
    - {name: a, color: "#000"}
    - name: b
      color: "#fff"
  source:
    uri: x/y
---
other: {deep: [1, [2, 3]]}
"""


@pytest.fixture(params=available_parsers())
def docs(request: pytest.FixtureRequest) -> tuple[RawDocument, ...]:
    return load_file(SourceFile("f.yaml", TEXT.encode()), parser=request.param).documents


def test_document_starts(docs: tuple[RawDocument, ...]) -> None:
    assert [(d.index, d.line, d.col) for d in docs] == [(0, 2, 1), (1, 14, 1)]


@pytest.mark.parametrize(
    ("path", "key", "expected"),
    [
        (("kind",), False, (3, 7)),
        (("kind",), True, (3, 1)),
        (("metadata", "name"), False, (5, 9)),
        (("spec", "tags", 0, "color"), False, (8, 24)),
        (("spec", "tags", 1, "color"), True, (10, 7)),
        (("spec", "tags", 1), False, (9, 7)),
        (("spec", "source", "uri"), False, (12, 10)),
        (("spec", "source", "missing"), False, (11, 3)),
        (("spec", "tags", 1, "missing"), False, (9, 7)),
        (("spec", "tags", 7), False, (7, 3)),
        ((), False, (2, 1)),
    ],
)
def test_locate(
    docs: tuple[RawDocument, ...], path: tuple[str | int, ...], key: bool, expected: tuple[int, int]
) -> None:
    assert docs[0].locate(path, key=key) == expected


def test_locate_in_a_later_document(docs: tuple[RawDocument, ...]) -> None:
    assert docs[1].locate(("other", "deep", 1, 0)) == (14, 20)


@pytest.mark.parametrize("parser", available_parsers())
@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_line_endings_do_not_move_positions(parser: str, newline: str) -> None:
    text = "a: 1\nb:\n  c: !foo x\n".replace("\n", newline)
    loaded = load_file(SourceFile("f.yaml", text.encode()), parser=parser)  # type: ignore[arg-type]
    assert [(d.line, d.col) for d in loaded.diagnostics] == [(3, 6)]


@pytest.mark.parametrize("parser", available_parsers())
def test_unicode_line_separators_inside_strings_do_not_shift_lines(parser: str) -> None:
    text = 'a: "x\u2028y\x85z"\nb:\n  c: !foo x\n'
    loaded = load_file(SourceFile("f.yaml", text.encode()), parser=parser)  # type: ignore[arg-type]
    assert [(d.line, d.col) for d in loaded.diagnostics] == [(3, 6)]
