"""What the loader accepts and refuses, each refusal positioned in the file, both parsers."""

from __future__ import annotations

import math

import pytest

from reconciler.load.documents import FileLoad, SourceFile, load_file
from reconciler.load.limits import LoadLimits
from reconciler.load.nodes import available_parsers

PARSERS = available_parsers()


def _load(data: bytes | str, parser: str, **limits: int) -> FileLoad:
    raw = data.encode() if isinstance(data, str) else data
    return load_file(SourceFile("f.yaml", raw), parser=parser, limits=LoadLimits(**limits))  # type: ignore[arg-type]


def _problems(data: bytes | str, parser: str, **limits: int) -> list[str]:
    return [d.format() for d in _load(data, parser, **limits).diagnostics]


@pytest.fixture(params=PARSERS)
def parser(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_a_file_over_the_size_limit_is_refused_unread(parser: str) -> None:
    data = b"a: b\n" * (2 * 1024 * 1024 // 5 + 1)
    assert _problems(data, parser) == [
        f"f.yaml:1:1: error: file is {len(data)} bytes, above the limit of 1048576 bytes "
        "(load.max_file_bytes)"
    ]


def test_the_size_limit_is_configurable(parser: str) -> None:
    text = "".join(f"{k}: b\n" for k in "abcdefghij")
    assert _problems(text, parser, max_file_bytes=49) == [
        "f.yaml:1:1: error: file is 50 bytes, above the limit of 49 bytes (load.max_file_bytes)"
    ]
    assert _problems(text, parser, max_file_bytes=50) == []


def test_1001_documents_break_the_document_limit(parser: str) -> None:
    loaded = _load("a: 1\n---\n" * 1000 + "a: 1\n", parser)
    assert len(loaded.documents) == 1000
    assert [d.format() for d in loaded.diagnostics] == [
        "f.yaml:2001:1: error: more than 1000 documents in one file (load.max_documents)"
    ]
    assert _problems("a: 1\n---\n" * 999 + "a: 1\n", parser) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "spec: !!python/object:os.system ls\n",
            "f.yaml:1:7: error: tag '!!python/object:os.system' is not allowed: "
            "specs use plain YAML values only",
        ),
        (
            "spec: !!python/object/apply:os.system [ls]\n",
            "f.yaml:1:7: error: tag '!!python/object/apply:os.system' is not allowed: "
            "specs use plain YAML values only",
        ),
        (
            "spec:\n  x: !foo bar\n",
            "f.yaml:2:6: error: tag '!foo' is not allowed: specs use plain YAML values only",
        ),
        (
            "spec: !!binary aGVsbG8=\n",
            "f.yaml:1:7: error: tag '!!binary' is not allowed: specs use plain YAML values only",
        ),
        (
            "spec: !!set {a, b}\n",
            "f.yaml:1:7: error: tag '!!set' is not allowed: specs use plain YAML values only",
        ),
    ],
)
def test_custom_and_language_tags_are_refused(parser: str, text: str, expected: str) -> None:
    assert _problems(text, parser) == [expected]


def test_core_tags_written_out_are_accepted(parser: str) -> None:
    loaded = _load("a: !!str 10\nb: !!int '7'\nc: !!float 1\n", parser)
    assert loaded.documents[0].value == {"a": "10", "b": 7, "c": 1.0}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: 1\nb: 2\na: 3\n", "f.yaml:3:1: error: duplicate key 'a'"),
        ("spec:\n  x: 1\n  'x': 2\n", "f.yaml:3:3: error: duplicate key 'x'"),
        ("{a: 1, a: 1}\n", "f.yaml:1:8: error: duplicate key 'a'"),
        ("1: a\n1.0: b\n", "f.yaml:2:1: error: duplicate key '1.0'"),
    ],
)
def test_duplicate_keys_are_errors(parser: str, text: str, expected: str) -> None:
    assert _problems(text, parser) == [expected]


def test_invalid_utf8_is_refused_at_its_position(parser: str) -> None:
    assert _problems(b"a: ok\nb: caf\xe9\n", parser) == [
        "f.yaml:2:7: error: file is not valid UTF-8"
    ]


def test_nul_bytes_are_refused_at_their_position(parser: str) -> None:
    assert _problems(b"a: ok\nb: x\x00y\n", parser) == ["f.yaml:2:5: error: NUL byte in file"]


def test_a_utf8_bom_is_accepted(parser: str) -> None:
    assert _load(b"\xef\xbb\xbfa: 1\n", parser).documents[0].value == {"a": 1}


def test_yaml_1_2_core_scalars(parser: str) -> None:
    text = (
        "a: on\nb: yes\nc: No\nd: y\ne: 0o17\nf: 017\ng: 1_000\nh: 0x1F\ni: .inf\nj: ~\n"
        "k: 2001-12-14\nl: 1e3\nm: +1\nn: '1'\no: 1:20\np: True\nq: null\nr: -.5\n"
    )
    value = _load(text, parser).documents[0].value
    assert value == {
        "a": "on",
        "b": "yes",
        "c": "No",
        "d": "y",
        "e": 15,
        "f": 17,
        "g": "1_000",
        "h": 31,
        "i": math.inf,
        "j": None,
        "k": "2001-12-14",
        "l": 1000.0,
        "m": 1,
        "n": "1",
        "o": "1:20",
        "p": True,
        "q": None,
        "r": -0.5,
    }


def test_merge_keys_merge(parser: str) -> None:
    loaded = _load("base: &b {x: 1, y: 1}\nc:\n  <<: *b\n  y: 2\n", parser)
    assert loaded.documents[0].value["c"] == {"x": 1, "y": 2}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("? [a]\n: 1\n", "f.yaml:1:3: error: a mapping key must be a scalar"),
        ("a: &x [*x]\n", "f.yaml:1:4: error: recursive alias: a node contains itself"),
        ("a: *nope\n", "f.yaml:1:4: error: invalid YAML: found undefined alias"),
        (
            "c:\n  <<: 5\n",
            "f.yaml:2:7: error: a merge key ('<<') takes a mapping or a list of mappings",
        ),
        ("? !!str {a: 1}\n: x\n", "f.yaml:1:3: error: a mapping key must be a scalar"),
        ("a: !!int abc\n", "f.yaml:1:4: error: 'abc' is not a valid !!int"),
        ("a: !!bool maybe\n", "f.yaml:1:4: error: 'maybe' is not a valid !!bool"),
        ("a: !!float x1\n", "f.yaml:1:4: error: 'x1' is not a valid !!float"),
    ],
)
def test_refused_structures(parser: str, text: str, expected: str) -> None:
    (problem,) = _problems(text, parser)
    assert problem.startswith(expected)


def test_a_yaml_syntax_error_is_positioned(parser: str) -> None:
    (problem,) = _problems("a: [1, 2\nb: 3\n", parser)
    assert problem.startswith("f.yaml:2:2: error: invalid YAML: while parsing a flow sequence")


def test_an_error_at_the_end_of_a_file_without_newline_stays_in_the_file(parser: str) -> None:
    (problem,) = _problems("a: {", parser)
    assert problem.startswith("f.yaml:1:5: error: invalid YAML")


def test_empty_documents_are_skipped(parser: str) -> None:
    loaded = _load("---\n---\n# only a comment\n---\na: 1\n", parser)
    assert [(d.index, d.line, d.value) for d in loaded.documents] == [(2, 5, {"a": 1})]
    assert loaded.diagnostics == ()


def test_one_bad_document_does_not_hide_the_next(parser: str) -> None:
    loaded = _load("a: !foo x\n---\nb: 1\n", parser)
    assert [d.value for d in loaded.documents] == [{"b": 1}]
    assert len(loaded.diagnostics) == 1
