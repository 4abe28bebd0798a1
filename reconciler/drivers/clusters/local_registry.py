"""The local driver's memory on disk: each endpoint's port, command and process.

One small JSON file in the state dir, replaced atomically (write, fsync, rename), so a
daemon killed at any moment leaves either the old or the new content. It is what lets a
restarted daemon adopt the servers it left running and keep their ports.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

VERSION = 1


@dataclasses.dataclass
class EndpointRecord:
    """One endpoint: ``argv`` still holds ``{port}``; ``pid``/``start_ticks`` of its server."""

    name: str
    port: int
    argv: list[str]
    env: dict[str, str]
    health_path: str
    digest: str
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    pid: int | None = None
    start_ticks: int | None = None
    restarts: int = 0
    secret_env: dict[str, str] = dataclasses.field(default_factory=dict)
    """Variable -> secret *name*: resolved at each start, the value never written here."""


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

    def load(self) -> None:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            raise RegistryError(f"{self.path}: unreadable local endpoint registry: {exc}") from exc
        try:
            self.endpoints = {
                name: EndpointRecord(**item) for name, item in raw.get("endpoints", {}).items()
            }
            self.jobs = {name: JobRecord(**item) for name, item in raw.get("jobs", {}).items()}
            self.ports = {str(name): int(port) for name, port in raw.get("ports", {}).items()}
        except (TypeError, ValueError) as exc:
            raise RegistryError(f"{self.path}: unexpected registry content: {exc}") from exc

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
