"""The workflow dashboard's body fields <-> our Workflow spec, both ways.

Create and update (reference: workflow-dashboard-api.md) take these; each is checked on
its own and a bad one is a 422 naming it:

- ``name`` (the display name, an annotation; the id stays), ``description``,
  ``priority``, ``tags``, ``status`` (``inactive`` is ``spec.suspend: true``).
- ``environments``: a list of names, or the reference's ``{name: enabled}`` object (the
  enabled ones, in order) -> ``spec.environments``, the clusters runs target.
- ``environmentStrategy`` -> ``spec.environment_strategy``: ``ordered``,
  ``round_robin`` or ``time`` (:mod:`reconciler.core.run_targets`).
- ``traceLevel`` -> ``spec.config.logs.level``, the lowest step log level kept:
  ``low`` -> ``error``, ``med`` -> ``warning``, ``high`` -> ``info`` (everything).
- ``options.enableRetry`` -> ``spec.config.retry_enabled`` (true on a workflow with no
  retries sets ``config.retries`` to :data:`DEFAULT_RETRIES`, so turning retry on
  retries), ``options.enableLogging`` -> ``spec.config.logs.enabled``,
  ``options.enableNotifications`` -> ``spec.config.notifications.enabled``.
- ``workflows`` and ``user_params``: our own graphs and parameter defaults (no place
  in the reference; a workflow created without a graph waits for one, see
  :mod:`reconciler.api.compat.workflow_dashboard`).

:func:`options_of` and :func:`trace_level_of` read the same fields back for GET.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

from reconciler.api.problems import Unprocessable
from reconciler.core.run_targets import STRATEGIES

PRIORITIES = ("low", "medium", "high", "critical")
TRACE_LEVELS: Mapping[str, str] = {"low": "error", "med": "warning", "high": "info"}
"""The reference's traceLevel -> the lowest step log level a Workflow keeps."""
OPTIONS: Mapping[str, tuple[str, ...]] = {
    "enableNotifications": ("notifications", "enabled"),
    "enableLogging": ("logs", "enabled"),
    "enableRetry": ("retry_enabled",),
}
"""Each option -> the path under ``spec.config`` it sets."""
DEFAULT_RETRIES = 3
"""Retries a workflow with none gets when ``enableRetry`` turns retry on."""
FIELDS = (
    "name",
    "description",
    "priority",
    "status",
    "tags",
    "environments",
    "environmentStrategy",
    "traceLevel",
    "options",
    "workflows",
    "user_params",
)
SPEC_ORDER = ("description", "priority", "tags", "environments", "environment_strategy",
              "suspend", "config", "user_params", "workflows")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class SpecChange:
    """What one body changes: whole spec fields, and paths under ``spec.config``."""

    fields: Mapping[str, Any]
    config: Mapping[tuple[str, ...], Any]

    def apply(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """``spec`` (a Workflow's, as in Git) with this change made."""
        changed = {**spec, **self.fields}
        if not self.config:
            return changed
        config = copy.deepcopy(dict(changed.get("config") or {}))
        for path, value in self.config.items():
            here = config
            for part in path[:-1]:
                inner = here.get(part)
                here[part] = dict(inner) if isinstance(inner, Mapping) else {}
                here = here[part]
            here[path[-1]] = value
        if self.config.get(OPTIONS["enableRetry"]) is True and not config.get("retries"):
            config["retries"] = DEFAULT_RETRIES
        changed["config"] = config
        return changed


def _environments(value: object) -> list[str]:
    """A list of names, or the reference's {name: enabled} object."""
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return list(value)
    if isinstance(value, dict) and all(isinstance(v, bool) for v in value.values()):
        return [str(k) for k, enabled in value.items() if enabled]
    raise Unprocessable(
        "environments must be a list of names or an object of name: boolean "
        '(e.g. {"awsVirginia": true})'
    )


def _options(value: object) -> dict[tuple[str, ...], Any]:
    if not isinstance(value, dict):
        raise Unprocessable(f"options must be an object of {', '.join(OPTIONS)} (booleans)")
    paths: dict[tuple[str, ...], Any] = {}
    for key, enabled in value.items():
        if key not in OPTIONS:
            raise Unprocessable(
                f"options.{key}: not an option (the options are {', '.join(OPTIONS)})"
            )
        if not isinstance(enabled, bool):
            raise Unprocessable(f"options.{key} must be true or false")
        paths[OPTIONS[key]] = enabled
    return paths


def spec_change(body: Mapping[str, Any], *, verb: str) -> SpecChange:
    """The spec change a create or update body asks for; 422 naming a bad field."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise Unprocessable(
            f"field {unknown[0]!r} has no place in a Workflow spec; {verb} takes "
            f"{', '.join(FIELDS)}"
        )
    spec: dict[str, Any] = {}
    config: dict[tuple[str, ...], Any] = {}
    if "description" in body:
        if not isinstance(body["description"], str):
            raise Unprocessable("description must be a string")
        spec["description"] = body["description"]
    if "priority" in body:
        if body["priority"] not in PRIORITIES:
            raise Unprocessable(f"priority must be one of {', '.join(PRIORITIES)}")
        spec["priority"] = body["priority"]
    if "status" in body:
        if body["status"] not in ("active", "inactive"):
            raise Unprocessable("status must be active or inactive")
        spec["suspend"] = body["status"] == "inactive"
    if "tags" in body:
        tags = body["tags"]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise Unprocessable("tags must be a list of strings")
        spec["tags"] = list(tags)
    if "environments" in body:
        spec["environments"] = _environments(body["environments"])
    if "environmentStrategy" in body:
        strategy = body["environmentStrategy"]
        if strategy not in STRATEGIES:
            raise Unprocessable(
                f"environmentStrategy {strategy!r} is not a strategy: one of "
                f"{', '.join(STRATEGIES)} (how a run picks among its environments' clusters)"
            )
        spec["environment_strategy"] = strategy
    if "traceLevel" in body:
        level = body["traceLevel"]
        if not isinstance(level, str) or level not in TRACE_LEVELS:
            raise Unprocessable(
                f"traceLevel {level!r} is not a trace level: one of {', '.join(TRACE_LEVELS)}"
            )
        config[("logs", "level")] = TRACE_LEVELS[level]
    if "options" in body:
        config.update(_options(body["options"]))
    if "workflows" in body:
        if not isinstance(body["workflows"], dict) or "provision" not in body["workflows"]:
            raise Unprocessable(
                "workflows: expected our Workflow's graphs, {provision: {nodes, edges}, "
                "deprovision?: {...}}"
            )
        spec["workflows"] = body["workflows"]
    if "user_params" in body:
        if not isinstance(body["user_params"], dict):
            raise Unprocessable("user_params: expected an object of parameter defaults")
        spec["user_params"] = body["user_params"]
    return SpecChange(fields=spec, config=config)


def check_strategy(body: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
    """A strategy the body gives needs environments to pick among (the spec the body
    makes), said in the reference's words."""
    if "environmentStrategy" in body and not spec.get("environments"):
        raise Unprocessable(
            "environmentStrategy: the workflow has no environments to pick among; give "
            "environments (an object of name: true) with it"
        )


CHANNELS = ("webhook", "slack", "email")


def own_channels(spec: Mapping[str, Any]) -> list[str]:
    """The notification channels a Workflow spec names itself."""
    notes = _config(spec).get("notifications")
    if not isinstance(notes, Mapping):
        return []
    return [channel for channel in CHANNELS if notes.get(channel)]


def notified_channels(spec: Mapping[str, Any], defaults: frozenset[str]) -> dict[str, bool]:
    """The reference's ``config.notifications``: which channels get this Workflow's
    events (its own when it names any, else the daemon's ``defaults``; none when its
    notifications are absent or disabled)."""
    notes = _config(spec).get("notifications")
    enabled = isinstance(notes, Mapping) and notes.get("enabled") is not False
    used = (set(own_channels(spec)) or set(defaults)) if enabled else set()
    return {channel: channel in used for channel in ("email", "slack", "webhook")}


def _config(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    config = spec.get("config")
    return config if isinstance(config, Mapping) else {}


def options_of(spec: Mapping[str, Any]) -> dict[str, bool]:
    """The reference's ``options`` a Workflow spec has."""
    config = _config(spec)
    logs = config.get("logs")
    notes = config.get("notifications")
    return {
        "enableNotifications": isinstance(notes, Mapping) and notes.get("enabled") is not False,
        "enableLogging": not isinstance(logs, Mapping) or logs.get("enabled") is not False,
        "enableRetry": config.get("retry_enabled") is not False,
    }


def trace_level_of(spec: Mapping[str, Any]) -> str:
    """The reference's ``traceLevel`` a Workflow spec's ``config.logs.level`` is."""
    logs = _config(spec).get("logs")
    level = logs.get("level") if isinstance(logs, Mapping) else None
    found = [trace for trace, ours in TRACE_LEVELS.items() if ours == (level or "info")]
    return found[0] if found else "high"
