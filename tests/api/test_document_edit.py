"""Editing one document of a spec file in place: the cases the API write tests do not reach.

Every edit must reload (with the daemon's own loader) as exactly the intended documents
and leave the bytes outside the edited document alone.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from reconciler.api import document_edit as edit


def _only(text: str, index: int = 0) -> edit.Document:
    return edit.documents(text)[index]


def _changed(text: str, change: Any, index: int = 0) -> str:
    document = _only(text, index)
    value = copy.deepcopy(document.value)
    change(value)
    out = edit.replace_document(text, document, value)
    assert [d.value for d in edit.documents(out)][index] == value
    return out


def test_indentation_and_style_of_the_file_are_kept() -> None:
    text = "spec:\n    list:\n      - a   # first\n      - b\n    name: 'quoted'\n"
    out = _changed(text, lambda v: v["spec"]["list"].append("c"))
    assert out == text.replace("      - b\n", "      - b\n      - c\n")
    out = _changed(text, lambda v: v["spec"].update(name="other"))
    assert out.endswith("    name: 'other'\n")


def test_a_removed_key_takes_its_line_and_key_order_of_the_file_wins() -> None:
    text = "a: 1\nb: 2   # gone with b\nc: 3\n"
    document = _only(text)
    out = edit.replace_document(text, document, {"c": 3, "a": 5})
    assert out == "a: 5\nc: 3\n"


def test_values_are_written_for_yaml_1_2_readers() -> None:
    text = "a: x\n"
    tricky = {"a": "0o17", "b": "yes", "c": "2001-12-14", "d": "1_000", "e": "null", "f": True}
    out = edit.replace_document(text, _only(text), tricky)
    assert _only(out).value == tricky


def test_a_kept_block_scalar_at_the_end_keeps_its_trailing_lines() -> None:
    text = "a: 1\nnote: |+\n  line\n\n---\nb: 2\n"
    out = _changed(text, lambda v: v.update(a=2))
    assert out.endswith("---\nb: 2\n")
    assert _only(out).value == {"a": 2, "note": "line\n\n"}


def test_anchors_and_merge_keys_still_load_as_intended() -> None:
    text = "base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\n---\nother: 1  # kept\n"
    out = _changed(text, lambda v: v["derived"].update(y=4))
    assert out.endswith("---\nother: 1  # kept\n")
    assert _only(out).value["derived"] == {"x": 1, "y": 4}


def test_deleting_the_first_document_keeps_a_file_header_after_a_blank_line() -> None:
    text = "# header of the file\n\n# about a\na: 1\n---\n# about b\nb: 2\n"
    out = edit.remove_document(text, _only(text))
    assert out == "# header of the file\n\n---\n# about b\nb: 2\n"


def test_crlf_neighbours_stay_byte_identical() -> None:
    text = "a: 1\r\n---\r\nb: [1, 2]\r\n"
    out = _changed(text, lambda v: v.update(b=[1, 2, 3]), index=1)
    assert out.startswith("a: 1\r\n---\r\n")
    assert _only(out, 1).value == {"b": [1, 2, 3]}


def test_a_file_that_does_not_load_is_refused() -> None:
    with pytest.raises(edit.DocumentEditError, match="does not load"):
        edit.documents("a: [1,\n")


def test_same_tells_types_apart_but_not_key_order() -> None:
    assert not edit.same({"a": True}, {"a": 1})
    assert not edit.same([1.0], [1])
    assert edit.same({"a": 1, "b": [2]}, {"b": [2], "a": 1})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a:\n  b: 1\n  c:\n  - x\n", (2, 2, 0)),
        ("a:\n  b: 1\n  c:\n    - x\n", (2, 4, 2)),
        ("a:\n    b: 1\n", (4, 4, 0)),
        ("a: 1\n", (2, 2, 0)),
    ],
)
def test_guess_indent(text: str, expected: tuple[int, int, int]) -> None:
    assert edit.guess_indent(text) == expected
