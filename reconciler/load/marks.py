"""Turning a parser's mark into the line and column an editor shows.

Lines are counted at ``\\n`` only (a CRLF file counts the same). libyaml also ends a line
at a lone CR and at NEL, LS and PS (YAML 1.1) where ruamel.yaml (YAML 1.2) does not, so
for a file holding one of those the position is computed from the mark's character index
instead, and both parsers agree with the editor. Other files take the mark as it is.
"""

from __future__ import annotations

import bisect
import re
from typing import Any

_OTHER_BREAKS = re.compile("\r(?!\n)|[\x85\u2028\u2029]")


class TextPositions:
    """1-based (line, col) of marks of one text."""

    def __init__(self, text: str) -> None:
        self._starts: list[int] | None = None
        # The lines an editor shows: a final newline ends the last line, it opens none.
        body = text[:-1] if text.endswith("\n") else text
        self._lines = body.count("\n") + 1
        self._last_line_length = len(body) - (body.rfind("\n") + 1)
        if _OTHER_BREAKS.search(text):
            self._starts = [0, *(m.end() for m in re.finditer("\n", text))]

    def of(self, mark: Any) -> tuple[int, int]:
        if self._starts is None:
            line, col = int(mark.line) + 1, int(mark.column) + 1
        else:
            index = int(mark.index)
            line = bisect.bisect_right(self._starts, index)
            col = index - self._starts[line - 1] + 1
        if line > self._lines:  # the end of the stream: point just past the last character
            return self._lines, self._last_line_length + 1
        return line, col

    def of_node(self, node: Any) -> tuple[int, int]:
        return self.of(node.start_mark)
