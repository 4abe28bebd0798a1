"""The local driver's servers seen from outside the daemon: list them, stop them.

Local endpoints are detached processes (a proxy on the endpoint's port and its workers)
that outlive the daemon on purpose (a restart adopts them without a cold start), so
stopping the daemon for good leaves them running. This module reads the driver's
registry (``<state_dir>/local/endpoints.json``) without a daemon and stops each process
group of an endpoint, finding them by their recorded pid and start time or by the
marker in their environment (the proxy's is the endpoint's marker, a worker's starts
with it). A stopped endpoint keeps its record (and so its port): a daemon started later
runs it again, because its Deployment is still in Git; removing the Deployment is what
removes an endpoint for good.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from reconciler.drivers.clusters import local_processes as procs
from reconciler.drivers.clusters import local_registry

REGISTRY_FILE = "endpoints.json"
OWNER_LABEL = "reconciler/deployment"
STOP_GRACE_S = 15.0


class EndpointAdminError(Exception):
    """A server cannot be listed or stopped; the message says why and what to do."""


def endpoint_marker(local_state_dir: Path, name: str) -> str:
    """The value of ``RECONCILER_LOCAL_ENDPOINT`` in endpoint ``name``'s server."""
    return f"{local_state_dir.resolve()}::{name}"


@dataclasses.dataclass(frozen=True)
class LocalServer:
    """One local endpoint as its registry and /proc show it."""

    name: str
    port: int
    pids: tuple[int, ...]
    """Session leaders of its proxy and workers now running: the recorded ones, and the
    ones found by marker."""
    deployment: str | None
    log: Path

    @property
    def running(self) -> bool:
        return bool(self.pids)

    @property
    def url(self) -> str:
        return f"http://{procs.LOOPBACK}:{self.port}/v1"


def _registry(local_state_dir: Path) -> local_registry.Registry:
    registry = local_registry.Registry(local_state_dir / REGISTRY_FILE)
    try:
        registry.load()
    except local_registry.RegistryError as exc:
        raise EndpointAdminError(str(exc)) from exc
    return registry


def _recorded(record: local_registry.EndpointRecord) -> list[local_registry.Process]:
    processes = [record.proxy, *(worker.process for worker in record.workers)]
    if record.legacy is not None:
        processes.append(record.legacy)
    return processes


def _leaders(
    local_state_dir: Path, record: local_registry.EndpointRecord
) -> list[procs.ProcessIdentity]:
    found: list[procs.ProcessIdentity] = []
    for process in _recorded(record):
        if process.pid is not None and process.start_ticks is not None:
            recorded = procs.ProcessIdentity(process.pid, process.start_ticks)
            if procs.is_running(recorded):
                found.append(recorded)
    marker = endpoint_marker(local_state_dir, record.name)
    for marked, value in procs.marked_with_prefix(marker):
        if (value == marker or value.startswith(f"{marker}::")) and marked not in found:
            found.append(marked)
    return found


def _server(local_state_dir: Path, record: local_registry.EndpointRecord) -> LocalServer:
    return LocalServer(
        name=record.name,
        port=record.port,
        pids=tuple(identity.pid for identity in _leaders(local_state_dir, record)),
        deployment=record.labels.get(OWNER_LABEL),
        log=local_state_dir / "logs" / f"{record.name}.log",
    )


def list_servers(local_state_dir: Path) -> list[LocalServer]:
    """Every endpoint the registry holds, by name, running or not."""
    registry = _registry(local_state_dir)
    return [
        _server(local_state_dir, registry.endpoints[name]) for name in sorted(registry.endpoints)
    ]


def running_servers(local_state_dir: Path) -> list[LocalServer]:
    """The endpoints whose server runs now ([] when there is no registry)."""
    try:
        return [server for server in list_servers(local_state_dir) if server.running]
    except EndpointAdminError:
        return []


def _check_may_signal(name: str, pid: int) -> None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return
    except PermissionError:
        raise EndpointAdminError(
            f"endpoint {name}: not allowed to stop pid {pid} (it runs as another user); run "
            "this as the daemon's user, e.g. sudo -u reconciler reconciler endpoints ..."
        ) from None


async def stop_server(
    local_state_dir: Path, name: str, *, grace_s: float = STOP_GRACE_S
) -> LocalServer:
    """Stop endpoint ``name``'s server (SIGTERM to its process group, SIGKILL after
    ``grace_s``); its record stays, without a pid. The caller holds the state directory's
    lock, so no daemon restarts the server meanwhile."""
    registry = _registry(local_state_dir)
    record = registry.endpoints.get(name)
    if record is None:
        known = ", ".join(sorted(registry.endpoints)) or "none"
        raise EndpointAdminError(f"no local endpoint named {name!r} (known: {known})")
    leaders = _leaders(local_state_dir, record)
    for leader in leaders:
        _check_may_signal(name, leader.pid)
    for leader in leaders:
        await procs.stop_group(leader, grace_s=grace_s)
    left = [leader.pid for leader in leaders if procs.group_members(leader.pid)]
    if left:
        raise EndpointAdminError(
            f"endpoint {name}: process group(s) {', '.join(map(str, left))} still running "
            "after SIGKILL"
        )
    for process in _recorded(record):
        process.pid = process.start_ticks = None
    registry.save()
    return _server(local_state_dir, record)
