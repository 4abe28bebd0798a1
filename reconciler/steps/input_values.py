"""Reading typed values out of a step's inputs, with errors that name the input.

Inputs come from YAML and substitution, so a duration may be ``"30s"`` or a number and an
integer may arrive as text; a wrong value is the user's to fix (the step stalls).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.core.durations import DurationError, parse_duration
from reconciler.engine.outcomes import StalledStepError


def duration(inputs: Mapping[str, Any], name: str, *, default: float | None) -> float | None:
    """Seconds from a duration input (``"500ms"``, ``"5m"``, or a number of seconds)."""
    value = inputs.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        raise StalledStepError(f"input '{name}' must be a duration such as '30s', got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise StalledStepError(f"input '{name}' must not be negative, got {value!r}")
        return float(value)
    try:
        return parse_duration(value)
    except DurationError as e:
        raise StalledStepError(f"input '{name}': {e}") from e


def integer(inputs: Mapping[str, Any], name: str) -> int | None:
    value = inputs.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        raise StalledStepError(f"input '{name}' must be an integer, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError) as e:
        raise StalledStepError(f"input '{name}' must be an integer, got {value!r}") from e


def text(inputs: Mapping[str, Any], name: str) -> str:
    value = inputs.get(name)
    if not isinstance(value, str) or not value:
        raise StalledStepError(f"input '{name}' must be a non-empty string, got {value!r}")
    return value
