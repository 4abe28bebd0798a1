"""Durations as the specs write them: a number and a unit (``500ms``, ``30s``, ``5m``).

One parser for every field that takes a duration (timeouts, retry delays, poll intervals),
so the accepted grammar and the error text are the same everywhere.
"""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")


class DurationError(ValueError):
    """A duration string that does not follow ``<number><unit>``."""


def parse_duration(text: str) -> float:
    """Return the duration in seconds; raise DurationError with a usable message."""
    if not isinstance(text, str):
        raise DurationError(f"expected a duration such as '30s' or '5m', got {text!r}")
    match = _PATTERN.match(text)
    if match is None:
        raise DurationError(
            f"invalid duration {text!r}: use a number and a unit (ms, s, m, h, d), e.g. '30s'"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of ``seconds`` in the spec grammar."""
    if seconds < 1 and seconds * 1000 == int(seconds * 1000):
        return f"{int(seconds * 1000)}ms"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"
