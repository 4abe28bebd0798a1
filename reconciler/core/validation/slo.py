"""SLO ranges of a Deployment, and whether they can all hold together.

Units (docs/spec.md, deploy_config): ``ttft`` milliseconds, ``e2e_latency`` seconds,
``per_session_tokens_per_sec`` tokens/s, each a ``[min, max]`` pair. The effective
targets are the template's defaults overlaid by the Deployment's own deploy_config. Each
impossibility is reported at the field that makes it so, with the numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.core.diagnostics import Diagnostic
from reconciler.core.validation.objects import SpecObject

RANGE_FIELDS = ("ttft", "e2e_latency", "per_session_tokens_per_sec")
_UNITS = {"ttft": "ms", "e2e_latency": "s", "per_session_tokens_per_sec": "tokens/s"}


def _pair(value: Any) -> tuple[float, float] | None:
    if (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        return float(value[0]), float(value[1])
    return None


def effective_slo(
    deployment: SpecObject, template: SpecObject | None
) -> tuple[dict[str, Any], dict[str, tuple[SpecObject, tuple[str | int, ...]]]]:
    """The merged deploy_config, and for each field the object and path it came from."""
    merged: dict[str, Any] = {}
    origin: dict[str, tuple[SpecObject, tuple[str | int, ...]]] = {}
    if template is not None:
        for field, value in (template.spec.get("defaults") or {}).items():
            merged[field] = value
            origin[field] = (deployment, ("spec", "template"))
    for field, value in (deployment.spec.get("deploy_config") or {}).items():
        merged[field] = value
        origin[field] = (deployment, ("spec", "deploy_config", field))
    return merged, origin


def _fmt(value: float) -> str:
    return f"{value:g}"


def check_slo(deployment: SpecObject, template: SpecObject | None) -> list[Diagnostic]:
    """Range and consistency problems of one Deployment's effective SLO targets."""
    config, origin = effective_slo(deployment, template)
    problems: list[Diagnostic] = []

    def report(field: str, message: str) -> None:
        obj, path = origin[field]
        suffix = (
            "" if path[-1] == field else f" (from template '{deployment.spec.get('template')}')"
        )
        problems.append(obj.problem(path, message + suffix))

    pairs: dict[str, tuple[float, float]] = {}
    for field in RANGE_FIELDS:
        if field not in config or config[field] is None:
            continue
        pair = _pair(config[field])
        if pair is None:
            report(field, f"{field} must be a [min, max] pair of numbers ({_UNITS[field]})")
            continue
        low, high = pair
        if low < 0 or high <= 0:
            report(field, f"{field} must be positive, got [{_fmt(low)}, {_fmt(high)}]")
            continue
        if low > high:
            report(field, f"{field} min {_fmt(low)} is above its max {_fmt(high)} {_UNITS[field]}")
            continue
        pairs[field] = pair
    for field in ("concurrent_requests", "avg_sequence_length", "avg_context_length"):
        value = config.get(field)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value <= 0
        ):
            report(field, f"{field} must be a positive integer")
    ttft = pairs.get("ttft")
    e2e = pairs.get("e2e_latency")
    rate = pairs.get("per_session_tokens_per_sec")
    if ttft and e2e and e2e[1] * 1000 <= ttft[0]:
        report(
            "e2e_latency",
            f"e2e_latency max {_fmt(e2e[1])} s leaves no time for generation after the "
            f"ttft min {_fmt(ttft[0])} ms",
        )
        return problems
    seq = config.get("avg_sequence_length")
    if ttft and e2e and rate and isinstance(seq, int) and seq > 0:
        window = e2e[1] - ttft[1] / 1000.0
        if window <= 0:
            report(
                "ttft",
                f"ttft max {_fmt(ttft[1])} ms is not below e2e_latency max {_fmt(e2e[1])} s: "
                "no time is left to generate tokens",
            )
        else:
            needed = seq / window
            if rate[0] < needed:
                report(
                    "per_session_tokens_per_sec",
                    f"per_session_tokens_per_sec min {_fmt(rate[0])} tokens/s is below the "
                    f"{needed:.3g} tokens/s needed to generate avg_sequence_length {seq} tokens "
                    f"within e2e_latency max {_fmt(e2e[1])} s after ttft max {_fmt(ttft[1])} ms",
                )
    return problems


def template_for(deployment: SpecObject, templates: Mapping[str, SpecObject]) -> SpecObject | None:
    name = deployment.spec.get("template")
    return templates.get(name) if isinstance(name, str) else None
