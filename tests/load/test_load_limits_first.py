"""Our load limits fire before the parser library's own, whatever its version.

Newer libyaml (PyYAML 6.0.4 wheels) refuses flow nesting past 1000 levels while its
scanner reads ahead through an unclosed collection, before the composer's depth guard has
seen a node. These files are built to reach that refusal: the diagnostic must still be
ours, at the bracket that went past the limit. A refusal of the parser's own that still
gets through (a limit set above the library's) is a clean diagnostic, never a traceback.
"""

from __future__ import annotations

import pytest

from reconciler.load.documents import SourceFile, load_file
from reconciler.load.limits import LoadLimits
from reconciler.load.nodes import available_parsers, flow_depth_cut

PARSERS = available_parsers()
OURS = "nesting deeper than 64 levels (load.max_depth)"


def _lines(text: str, *, parser: str, limits: LoadLimits | None = None) -> list[str]:
    result = load_file(
        SourceFile("deep.yaml", text.encode()), parser=parser, limits=limits or LoadLimits()
    )
    return [d.format() for d in result.diagnostics]


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("opened", [70, 999, 1001, 5000, 200_000])
def test_unclosed_flow_nesting_gets_our_diagnostic(parser: str, opened: int) -> None:
    # "a: " then brackets: the mapping is level 1, so the 64th bracket opens level 65.
    text = "a: " + "[" * opened
    assert _lines(text, parser=parser) == [f"deep.yaml:1:66: error: {OURS}"]


@pytest.mark.parametrize("parser", PARSERS)
def test_deep_flow_after_valid_documents_is_placed_in_its_own_line(parser: str) -> None:
    text = "a: 1\n---\nb: '[[[[ not nesting'\nc: " + "{k: " * 3000
    assert _lines(text, parser=parser) == [f"deep.yaml:4:{4 + 62 * 4}: error: {OURS}"]


@pytest.mark.parametrize("parser", PARSERS)
def test_brackets_in_quotes_comments_and_block_scalars_are_not_nesting(parser: str) -> None:
    many = "[" * 300
    text = (
        f"a: '{many}'\n"
        f'b: "{many}"\n'
        f"# {many}\n"
        f"c: |\n  {many}\n"
        "d: [1, [2, [3]]]\n"
    )
    assert _lines(text, parser=parser) == []


def test_a_parser_refusal_past_our_limit_is_a_clean_diagnostic() -> None:
    # With our limit raised above libyaml's own, libyaml's refusal is what remains.
    limits = LoadLimits(max_depth=5000)
    lines = _lines("a: " + "[" * 2000, parser="libyaml", limits=limits)
    assert len(lines) == 1
    assert lines[0].startswith("deep.yaml:1:")
    assert ": error: invalid YAML: " in lines[0]
    assert "Traceback" not in lines[0]


@pytest.mark.parametrize("parser", PARSERS)
def test_an_unclosed_bracket_names_where_it_began(parser: str) -> None:
    text = "a: 1\nb: [1,\n  2,\nc: 3\n"
    (line,) = _lines(text, parser=parser)
    assert line.startswith("deep.yaml:4:")
    assert "(it began at line 2, column 4)" in line


@pytest.mark.parametrize("parser", PARSERS)
def test_an_error_at_the_end_of_the_stream_points_into_the_last_line(parser: str) -> None:
    text = "a: 1\nb: [x, y\n"  # two lines, the second unclosed
    (line,) = _lines(text, parser=parser)
    position = line.split(": error:")[0]
    assert position == "deep.yaml:2:9", line


def test_flow_depth_cut_counts_only_real_brackets() -> None:
    assert flow_depth_cut("[[[", 2) == 3
    assert flow_depth_cut("[[]][[", 2) is None
    assert flow_depth_cut("'[[[' [[", 2) is None
    assert flow_depth_cut('"[\\"[[" # [[[[\n[', 0) == 16
