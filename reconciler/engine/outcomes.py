"""Step outcomes as values: what a step tells the executor instead of raising.

A step returns Done, Retry, Failed or Stalled; the executor decides from that value
whether to move on, wait and try again, or stop the chain. Exceptions are mapped to the
same values at the runner's edge (only asyncio cancellation goes through), so one
misbehaving step cannot take the executor down.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class Done:
    """The step finished; ``outputs`` go to downstream nodes (JSON values only)."""

    outputs: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Retry:
    """Try again later. ``after_seconds=None`` lets the executor pick the backoff."""

    reason: str
    after_seconds: float | None = None


@dataclasses.dataclass(frozen=True)
class Failed:
    """The step cannot succeed by retrying; the chain fails."""

    reason: str


@dataclasses.dataclass(frozen=True)
class Stalled:
    """A person must act (an invalid input, a missing secret); no retry until they do.

    ``outputs`` may carry what the step found before it stopped (a blocked scan's
    findings under ``status``), stored with the step so the object's status can show it.
    """

    reason: str
    outputs: Mapping[str, Any] = dataclasses.field(default_factory=dict)


Outcome = Done | Retry | Failed | Stalled


class StepError(Exception):
    """Base of the exceptions a step may raise to choose its outcome."""


class PermanentStepError(StepError):
    """Raise from a step to fail it without retry."""


class TemporaryStepError(StepError):
    """Raise from a step to retry it, optionally after a given delay."""

    def __init__(self, message: str, *, after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.after_seconds = after_seconds


class StalledStepError(StepError):
    """Raise from a step when a person must act before it can succeed."""


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def outcome_from_exception(exc: Exception) -> Outcome:
    """The outcome an exception escaping a step stands for (retry unless it says otherwise)."""
    if isinstance(exc, PermanentStepError):
        return Failed(str(exc) or describe(exc))
    if isinstance(exc, StalledStepError):
        return Stalled(str(exc) or describe(exc))
    if isinstance(exc, TemporaryStepError):
        return Retry(str(exc) or describe(exc), after_seconds=exc.after_seconds)
    return Retry(describe(exc))
