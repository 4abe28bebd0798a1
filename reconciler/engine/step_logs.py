"""Which step log lines a Workflow keeps: its ``config.logs`` (``enabled``, ``level``).

A step's log is text, one line per entry, each ``<UTC stamp> <LEVEL> <message>`` as
:class:`reconciler.engine.context.StepLog` writes it (INFO, WARNING, ERROR); a line that
does not start that way continues the entry above it and shares its fate. With
``enabled: false`` nothing is kept; otherwise the entries below ``level`` are dropped.
The daemon applies this to the store when an execution of the Workflow ends
(:mod:`reconciler.daemon.workflow_logs`) and the API to what it serves while one runs.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

LEVELS = {"info": 20, "warning": 30, "error": 40}
"""The levels a step log line has, lowest first (``config.logs.level`` names one)."""
_ENTRY = re.compile(r"^\S+T\S+ (INFO|WARNING|ERROR) ")


@dataclasses.dataclass(frozen=True)
class LogPolicy:
    """What is kept of a step's log: nothing (``enabled`` false), or the entries at
    ``level`` and above."""

    enabled: bool = True
    level: str = "info"

    @property
    def keeps_everything(self) -> bool:
        return self.enabled and self.level == "info"

    def apply(self, text: str) -> str:
        """``text`` with the entries this policy drops taken out."""
        if self.keeps_everything or not text:
            return text
        if not self.enabled:
            return ""
        floor = LEVELS[self.level]
        kept: list[str] = []
        keeping = True
        for line in text.splitlines(keepends=True):
            found = _ENTRY.match(line)
            if found is not None:
                keeping = LEVELS[found.group(1).lower()] >= floor
            if keeping:
                kept.append(line)
        return "".join(kept)


def policy_of(spec: Mapping[str, Any]) -> LogPolicy:
    """The policy of a Workflow spec (its ``config.logs``; defaults: keep everything)."""
    config = spec.get("config")
    logs = config.get("logs") if isinstance(config, Mapping) else None
    if not isinstance(logs, Mapping):
        return LogPolicy()
    level = logs.get("level")
    return LogPolicy(
        enabled=logs.get("enabled") is not False,
        level=level if isinstance(level, str) and level in LEVELS else "info",
    )
