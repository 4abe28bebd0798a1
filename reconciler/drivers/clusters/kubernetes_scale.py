"""Scale events of autoscaled endpoints on Kubernetes, seen by the shared Deployment watch.

On Kubernetes the cluster's own autoscaler (an HPA, or KEDA's through one) sets a serving
revision's ``replicas``; the daemon only renders and aims it. The namespace's Deployment
watch sees each change. A change of ``spec.replicas`` on a Deployment whose replicas are
left to an autoscaler (the manifest we applied holds none), while no rollout of ours is
changing it, is a scale event: from, to, when, and which field manager set it. The last
events of each endpoint are kept, newest last, for every observation of the endpoint, and
each new one goes to the scale listeners, as the local driver's own autoscaler does.
"""

from __future__ import annotations

import datetime
import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from reconciler.drivers.clusters import protocol
from reconciler.drivers.clusters.kubernetes_drift import APPLIED_ANNOTATION

KEEP_EVENTS = 20


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def autoscaled(obj: Mapping[str, Any]) -> bool:
    """Whether the manifest we applied to this Deployment leaves ``replicas`` to others."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    applied = annotations.get(APPLIED_ANNOTATION)
    if not isinstance(applied, str):
        return False
    try:
        spec = json.loads(applied).get("spec") or {}
    except (ValueError, AttributeError):
        return False
    return isinstance(spec, dict) and "replicas" not in spec


def replicas_setter(obj: Mapping[str, Any], *, ours: frozenset[str]) -> str | None:
    """The field manager that last wrote ``spec.replicas``, if it is not one of ``ours``."""
    newest: tuple[str, str] | None = None
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        fields = ((entry.get("fieldsV1") or {}).get("f:spec")) or {}
        manager = entry.get("manager")
        if "f:replicas" not in fields or not isinstance(manager, str) or manager in ours:
            continue
        stamp = str(entry.get("time") or "")
        if newest is None or stamp >= newest[0]:
            newest = (stamp, manager)
    return None if newest is None else newest[1]


class ScaleTracker:
    """Replicas last seen per Deployment, and the scale events of each endpoint."""

    def __init__(
        self,
        *,
        owner_label: str,
        ours: frozenset[str],
        keep: int = KEEP_EVENTS,
        now: Callable[[], str] = _now,
    ) -> None:
        self._owner_label = owner_label
        self._ours = ours
        self._keep = keep
        self._now = now
        self._lock = threading.Lock()
        self._replicas: dict[str, int] = {}
        self._events: dict[str, list[protocol.ScaleEvent]] = {}

    def seen(
        self, name: str, obj: Mapping[str, Any] | None, *, ours_changing: bool
    ) -> tuple[str, protocol.ScaleEvent] | None:
        """Deployment ``name`` as the watch saw it (None: deleted). Returns (endpoint,
        event) when this is an autoscaler's change of its replicas."""
        with self._lock:
            if obj is None:
                self._replicas.pop(name, None)
                return None
            replicas = int((obj.get("spec") or {}).get("replicas", 1))
            previous = self._replicas.get(name)
            self._replicas[name] = replicas
            if previous is None or previous == replicas or ours_changing or not autoscaled(obj):
                return None
            owner = ((obj.get("metadata") or {}).get("labels") or {}).get(self._owner_label)
            if not isinstance(owner, str):
                return None
            setter = replicas_setter(obj, ours=self._ours)
            by = f"{setter}" if setter else "the cluster's autoscaler"
            event = protocol.ScaleEvent(
                at=self._now(),
                from_workers=previous,
                to_workers=replicas,
                why=f"{by} set replicas of Deployment {name} from {previous} to {replicas}",
            )
            events = self._events.setdefault(owner, [])
            events.append(event)
            del events[: -self._keep]
            return owner, event

    def events(self, endpoint: str) -> tuple[protocol.ScaleEvent, ...]:
        with self._lock:
            return tuple(self._events.get(endpoint, ()))

    def forget(self, endpoint: str) -> None:
        """The endpoint was deleted: its events go with it."""
        with self._lock:
            self._events.pop(endpoint, None)
