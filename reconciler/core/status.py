"""Status documents: what the daemon says about each object, as plain values.

Conditions follow the Kubernetes convention (``type``, ``status``, ``reason``,
``message``, ``last_transition_time``); the time moves only when a condition's status
changes, so a status file changes in Git only when something happened. Pure: the daemon
gives the facts (what ran, what it returned, when), this module says what they mean.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import yaml

ConditionStatus = Literal["True", "False", "Unknown"]

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
DRIFTED = "Drifted"


@dataclasses.dataclass(frozen=True)
class Condition:
    type: str
    status: ConditionStatus
    reason: str
    message: str
    last_transition_time: str

    def to_dict(self) -> dict[str, str]:
        # By hand: dataclasses.asdict deep-copies, and 10,000 objects make it show.
        return {
            "type": self.type,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "last_transition_time": self.last_transition_time,
        }


def merge_condition(
    previous: Sequence[Mapping[str, Any]],
    *,
    type: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: str,
) -> Condition:
    """A condition that keeps its previous transition time when its status is unchanged."""
    for old in previous:
        if old.get("type") == type and old.get("status") == status:
            return Condition(
                type, status, reason, message, str(old.get("last_transition_time", now))
            )
    return Condition(type, status, reason, message, now)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The daemon's conclusion about one object, before it becomes conditions."""

    phase: str
    ready: ConditionStatus
    reason: str
    message: str
    reconciling: bool = False
    stalled: bool = False


def no_chain_yet(kind: str, step_types: Sequence[str]) -> Verdict:
    return _no_chain_yet(kind, tuple(step_types))


@functools.lru_cache(maxsize=256)
def _no_chain_yet(kind: str, step_types: tuple[str, ...]) -> Verdict:
    """One shared verdict per kind and missing types: the daemon asks for it for every
    unrunnable object on every cycle (thousands), and Verdict is immutable."""
    missing = ", ".join(step_types)
    return Verdict(
        phase="Pending",
        ready="False",
        reason="NoChainYet",
        message=(
            f"{kind} objects are validated and planned, but this daemon has no step "
            f"implementation yet for: {missing}; nothing was done on any cluster"
        ),
    )


def build_status(
    *,
    kind: str,
    name: str,
    verdict: Verdict,
    observed_revision: str | None,
    previous: Mapping[str, Any] | None,
    now: str,
    fields: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The status document of one object, ready to be written as YAML."""
    old_conditions = list((previous or {}).get("conditions") or [])
    conditions = [
        merge_condition(
            old_conditions,
            type=READY,
            status=verdict.ready,
            reason=verdict.reason,
            message=verdict.message,
            now=now,
        ),
        merge_condition(
            old_conditions,
            type=RECONCILING,
            status="True" if verdict.reconciling else "False",
            reason=verdict.reason if verdict.reconciling else "Idle",
            message=verdict.message if verdict.reconciling else "",
            now=now,
        ),
        merge_condition(
            old_conditions,
            type=STALLED,
            status="True" if verdict.stalled else "False",
            reason=verdict.reason if verdict.stalled else "None",
            message=verdict.message if verdict.stalled else "",
            now=now,
        ),
    ]
    drifted = _drifted(fields, old_conditions, now=now)
    if drifted is not None:
        conditions.append(drifted)
    document: dict[str, Any] = {
        "apiVersion": "reconciler/v1",
        "kind": kind,
        "name": name,
        "observed_revision": observed_revision,
        "phase": verdict.phase,
        "conditions": [c.to_dict() for c in conditions],
    }
    if fields:
        document.update(fields)
    return document


def _drifted(
    fields: Mapping[str, Any] | None, previous: Sequence[Mapping[str, Any]], *, now: str
) -> Condition | None:
    """The Drifted condition of an object whose live state was changed out of band (a
    ``drift`` field of what was found and re-applied); False once it no longer is, and
    absent for objects that never drifted."""
    drift = (fields or {}).get("drift")
    if drift:
        parts = [
            str(item.get("message"))
            if item.get("message")
            else f"{item.get('field')} changed by {item.get('manager') or 'another writer'}"
            + ("; re-applied" if item.get("reapplied") else "")
            for item in drift
            if isinstance(item, Mapping)
        ]
        return merge_condition(
            previous,
            type=DRIFTED,
            status="True",
            reason="Drifted",
            message="; ".join(parts),
            now=now,
        )
    if any(c.get("type") == DRIFTED for c in previous):
        return merge_condition(
            previous, type=DRIFTED, status="False", reason="InSync", message="", now=now
        )
    return None


def dump_status(document: Mapping[str, Any]) -> bytes:
    """Stable YAML for a status document (keys in insertion order)."""
    text = yaml.dump(
        dict(document),
        Dumper=yaml.CSafeDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )
    return text.encode("utf-8")


def load_status(data: bytes) -> dict[str, Any]:
    """Read back a status document written by :func:`dump_status`."""
    value = yaml.load(data, Loader=yaml.CSafeLoader)
    return value if isinstance(value, dict) else {}


def status_path(kind_plural: str, name: str, *, prefix: str = "status/") -> str:
    return f"{prefix}{kind_plural}/{name}.yaml"


MAX_LISTED = 50


def commit_message(names: Mapping[str, str], *, revision: str, source_file: str) -> tuple[str, str]:
    """A status commit's summary and body from ``names`` ({file: "Kind/name: Phase"}):
    each object and its phase once, the source's line last, ``revision`` named."""
    lines = [names[path] for path in sorted(names, key=lambda p: (p == source_file, p))]
    objects = [line for line in lines if not line.startswith("source: ")]
    if len(objects) == 1:
        summary = f"status: {objects[0]}"
    elif objects:
        phases: dict[str, int] = {}
        for line in objects:
            phase = line.rsplit(": ", 1)[-1]
            phases[phase] = phases.get(phase, 0) + 1
        counts = ", ".join(f"{n} {phase}" for phase, n in sorted(phases.items()))
        summary = f"status: {len(objects)} objects ({counts})"
    else:
        summary = f"status: {lines[0]}" if lines else "status"
    if revision:
        summary += f" at {revision}"
    shown = lines if len(objects) > 1 else [line for line in lines if line not in objects]
    if len(shown) > MAX_LISTED:
        shown = [*shown[:MAX_LISTED], f"... and {len(shown) - MAX_LISTED} more"]
    return summary, "\n".join(shown)
