"""What the sharded daemon's coordination is made of, without the API client behind it.

The errors of a coordination call, the Lease and handover ConfigMap records, MicroTime,
and the namespace of the pod the daemon runs in. They live apart from
reconciler.drivers.leases (which speaks the API through the kubernetes client) so the
daemon imports the client only when it shards: a daemon that runs alone, and every
command, starts without loading it.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class LeaseError(Exception):
    """A call to the coordination API failed (the message says what and why)."""


class LeaseConflict(LeaseError):
    """Another writer changed the object first (409): re-read and decide again."""


class LeaseUnavailable(LeaseError):
    """The API server did not answer, or answered 5xx/429: try again at the next tick."""


class LeaseForbidden(LeaseError):
    """401/403: the service account lacks a permission (deploy/kubernetes/rbac.yaml)."""


class LeaseConfigError(LeaseError):
    """No usable credentials: neither a kubeconfig nor an in-cluster service account."""


def micro_time(moment: datetime.datetime) -> str:
    """``moment`` as a Kubernetes MicroTime. Never on a whole second: the client
    re-encodes times with ``isoformat()``, which drops a zero fraction, and the API
    server's MicroTime wants its six digits."""
    moment = moment.astimezone(datetime.UTC)
    if moment.microsecond == 0:
        moment = moment.replace(microsecond=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: Any) -> datetime.datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value
    text = str(value).replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(text)


@dataclasses.dataclass(frozen=True)
class LeaseRecord:
    """One Lease as read: its spec, labels, annotations and resourceVersion."""

    name: str
    holder: str | None
    duration_s: int
    transitions: int
    acquire_time: datetime.datetime | None
    renew_time: datetime.datetime | None
    resource_version: str
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class LeaseWrite:
    """What to write into a Lease (all of its spec and annotations)."""

    holder: str | None
    duration_s: int
    transitions: int
    acquire_time: datetime.datetime | None
    renew_time: datetime.datetime | None
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class BlobRecord:
    """One ConfigMap holding binary data: its entries, annotations and resourceVersion."""

    name: str
    data: Mapping[str, bytes]
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    resource_version: str


def in_cluster_namespace() -> str | None:
    """The namespace of the pod this runs in (its service account's), or None outside one."""
    try:
        return (SERVICE_ACCOUNT_DIR / "namespace").read_text().strip() or None
    except OSError:
        return None
