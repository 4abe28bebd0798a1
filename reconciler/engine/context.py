"""What a step receives when it runs, and the collaborators the daemon lends it.

Steps see their resolved inputs, the attempt number, the execution's params and a log
that is stored with the step; everything outside (readiness of deployments, HTTP) comes
through small Protocols the daemon fills, so steps are tested with real, local parts.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from reconciler.core import step_types
from reconciler.drivers import http_client
from reconciler.engine import outcomes

_logger = logging.getLogger("reconciler.steps")


class ReadinessSource(Protocol):
    """Tells whether a Deployment is Ready, by the daemon's latest observation, and when
    that may have changed (so waiting needs no polling)."""

    def endpoint_url(self, deployment: str) -> str | None:
        """The endpoint URL of ``deployment`` once it is Ready, else None."""
        ...

    async def changed(self, deployment: str) -> None:
        """Return once ``deployment``'s status may have moved since this call."""
        ...


@dataclasses.dataclass(frozen=True)
class StepServices:
    """Collaborators lent to steps. ``extra`` holds those of later step families by name."""

    readiness: ReadinessSource | None = None
    http: http_client.HttpClient | None = None
    readiness_poll_interval_s: float = 1.0
    """How often a deploy step probes the endpoint it is starting (not other objects)."""
    extra: Mapping[str, object] = dataclasses.field(default_factory=dict)


class StepLog:
    """The log of one attempt of one step: kept for the store, echoed to ``logging``."""

    def __init__(self, *, prefix: str) -> None:
        self._prefix = prefix
        self._lines: list[str] = []

    def _add(self, level: int, label: str, message: str) -> None:
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self._lines.append(f"{stamp} {label} {message}")
        _logger.log(level, "%s: %s", self._prefix, message)

    def info(self, message: str) -> None:
        self._add(logging.INFO, "INFO", message)

    def warning(self, message: str) -> None:
        self._add(logging.WARNING, "WARNING", message)

    def error(self, message: str) -> None:
        self._add(logging.ERROR, "ERROR", message)

    @property
    def lines(self) -> tuple[str, ...]:
        return tuple(self._lines)

    def text(self) -> str:
        return "".join(f"{line}\n" for line in self._lines)


@dataclasses.dataclass(frozen=True)
class StepContext:
    """Everything one attempt of one step may use."""

    execution_id: str
    node_id: str
    step_type: str
    inputs: Mapping[str, Any]
    attempt: int
    params: Mapping[str, Any]
    object_key: str
    revision: str
    cluster: str | None
    log: StepLog
    services: StepServices


StepImpl = Callable[[StepContext], Awaitable[outcomes.Outcome]]
"""A step implementation: an async callable from a context to an outcome."""


class StepCatalog(Protocol):
    """Where the executor finds the implementation and signature of a step type."""

    def implementation(self, step_type: str) -> StepImpl | None: ...

    def signature(self, step_type: str) -> step_types.StepSignature | None: ...
