"""The local driver's memory on disk: each endpoint's port, revisions and processes.

One small JSON file in the state dir, replaced atomically (write, fsync, rename), so a
daemon killed at any moment leaves either the old or the new content. It is what lets a
restarted daemon adopt the proxy and workers it left running, keep their ports, and go
on with a rollout it was measuring.

An endpoint is a proxy on the endpoint's stable port and workers on ports of their own,
each of a revision (a command, an environment and a health path, named by their
digest). Version 1 of the file held one server per endpoint, listening on the stable
port itself; such a record loads with that server as ``legacy``, which the driver stops
before it starts the proxy there.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

VERSION = 2


@dataclasses.dataclass
class Revision:
    """What a worker of one revision runs: ``argv`` and ``env`` still hold ``{port}``."""

    digest: str
    argv: list[str]
    env: dict[str, str]
    health_path: str
    secret_env: dict[str, str] = dataclasses.field(default_factory=dict)
    """Variable -> secret *name*: resolved at each start, the value never written here."""


@dataclasses.dataclass
class Process:
    """A supervised process: its pid and start time (None: not running), its restarts."""

    pid: int | None = None
    start_ticks: int | None = None
    restarts: int = 0


@dataclasses.dataclass
class WorkerRecord:
    """One worker: a model server of ``revision`` on ``port``."""

    id: str
    revision: str
    port: int
    process: Process = dataclasses.field(default_factory=Process)
    retiring: bool = False
    """Left out of the proxy: stopped once its last request is answered."""


@dataclasses.dataclass
class Candidate:
    """A new revision being rolled out beside the serving one.

    ``phase``: ``starting`` (its first workers start, no traffic), ``measuring`` (it takes
    ``gate["traffic_percent"]`` of the requests since ``measuring_since``, wall clock),
    ``promoting`` (its other workers start; it takes over once all are ready).
    """

    revision: Revision
    phase: str
    started_at: float
    gate: dict[str, Any] | None = None
    measuring_since: float | None = None
    measured: dict[str, Any] | None = None
    """The gate's report once it decided to promote."""


@dataclasses.dataclass
class EndpointRecord:
    """One endpoint; ``revision`` is the serving revision, ``port`` the proxy's."""

    name: str
    port: int
    revision: Revision
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    proxy: Process = dataclasses.field(default_factory=Process)
    workers: list[WorkerRecord] = dataclasses.field(default_factory=list)
    workers_desired: int = 1
    worker_concurrency: int = 1
    next_worker: int = 1
    candidate: Candidate | None = None
    autoscaling: dict[str, Any] | None = None
    scale_events: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    last_rollout: dict[str, Any] | None = None
    rejected: str | None = None
    """The key (revision digest and gate) of the last revision a gate rolled back: the
    same one is not tried again until the spec changes."""
    legacy: Process | None = None
    """A version-1 server still on ``port``, to stop before the proxy starts."""

    def worker_id(self) -> str:
        found = f"w{self.next_worker}"
        self.next_worker += 1
        return found


@dataclasses.dataclass
class JobRecord:
    name: str
    pid: int
    start_ticks: int
    log: str
    exit_file: str


class RegistryError(Exception):
    """The registry file exists but cannot be read; the message names it."""


MAX_REMEMBERED_PORTS = 1024


def _process(raw: Any) -> Process:
    return Process(**raw) if isinstance(raw, dict) else Process()


def _revision(raw: dict[str, Any]) -> Revision:
    return Revision(
        digest=str(raw["digest"]),
        argv=[str(part) for part in raw["argv"]],
        env={str(k): str(v) for k, v in raw["env"].items()},
        health_path=str(raw["health_path"]),
        secret_env={str(k): str(v) for k, v in (raw.get("secret_env") or {}).items()},
    )


def _endpoint(raw: dict[str, Any], *, version: int) -> EndpointRecord:
    if version < 2:
        legacy = Process(raw.get("pid"), raw.get("start_ticks"), int(raw.get("restarts", 0)))
        return EndpointRecord(
            name=str(raw["name"]),
            port=int(raw["port"]),
            revision=_revision(raw),
            labels=dict(raw.get("labels") or {}),
            legacy=legacy if legacy.pid is not None else None,
        )
    candidate = raw.get("candidate")
    return EndpointRecord(
        name=str(raw["name"]),
        port=int(raw["port"]),
        revision=_revision(raw["revision"]),
        labels=dict(raw.get("labels") or {}),
        proxy=_process(raw.get("proxy")),
        workers=[
            WorkerRecord(
                id=str(w["id"]),
                revision=str(w["revision"]),
                port=int(w["port"]),
                process=_process(w.get("process")),
                retiring=bool(w.get("retiring", False)),
            )
            for w in raw.get("workers") or []
        ],
        workers_desired=int(raw.get("workers_desired", 1)),
        worker_concurrency=int(raw.get("worker_concurrency", 1)),
        next_worker=int(raw.get("next_worker", 1)),
        candidate=None
        if candidate is None
        else Candidate(
            revision=_revision(candidate["revision"]),
            phase=str(candidate["phase"]),
            started_at=float(candidate["started_at"]),
            gate=candidate.get("gate"),
            measuring_since=candidate.get("measuring_since"),
            measured=candidate.get("measured"),
        ),
        autoscaling=raw.get("autoscaling"),
        scale_events=list(raw.get("scale_events") or []),
        last_rollout=raw.get("last_rollout"),
        rejected=raw.get("rejected"),
        legacy=None if raw.get("legacy") is None else _process(raw["legacy"]),
    )


class Registry:
    """Endpoints and jobs by name, saved to ``path`` on every change.

    ``ports`` remembers the port each endpoint name last had, also after the endpoint
    is removed, so a Deployment deleted and created again gets its URL back.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.endpoints: dict[str, EndpointRecord] = {}
        self.jobs: dict[str, JobRecord] = {}
        self.ports: dict[str, int] = {}

    def remember_port(self, name: str, port: int) -> None:
        """Keep ``port`` as ``name``'s; the oldest names of gone endpoints are forgotten
        past MAX_REMEMBERED_PORTS."""
        self.ports.pop(name, None)
        self.ports[name] = port
        for old in list(self.ports):
            if len(self.ports) <= MAX_REMEMBERED_PORTS:
                break
            if old not in self.endpoints:
                del self.ports[old]

    def ports_in_use(self) -> set[int]:
        """Every port an endpoint's proxy or worker holds."""
        used = set()
        for record in self.endpoints.values():
            used.add(record.port)
            used |= {worker.port for worker in record.workers}
        return used

    def load(self) -> None:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            raise RegistryError(f"{self.path}: unreadable local endpoint registry: {exc}") from exc
        try:
            version = int(raw.get("version", 1))
            self.endpoints = {
                name: _endpoint(item, version=version)
                for name, item in raw.get("endpoints", {}).items()
            }
            self.jobs = {name: JobRecord(**item) for name, item in raw.get("jobs", {}).items()}
            self.ports = {str(name): int(port) for name, port in raw.get("ports", {}).items()}
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise RegistryError(f"{self.path}: unexpected registry content: {exc!r}") from exc

    def save(self) -> None:
        document: dict[str, Any] = {
            "version": VERSION,
            "endpoints": {name: dataclasses.asdict(r) for name, r in self.endpoints.items()},
            "jobs": {name: dataclasses.asdict(r) for name, r in self.jobs.items()},
            "ports": dict(self.ports),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        with open(temporary, "w") as handle:
            json.dump(document, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
