"""The driver's side of a local endpoint's proxy: its configuration file and its stats.

The proxy (reconciler.drivers.clusters.local_proxy) reads a JSON file the driver writes:
which workers take requests, by revision and weight, and how many requests each takes
at once. The driver rewrites it atomically with a higher ``generation`` and sends SIGHUP;
the proxy's stats say which generation it serves and which workers still drain, which is
how the driver knows a change is in effect and a retired worker may be stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

from reconciler.drivers.clusters import local_processes as procs


@dataclasses.dataclass(frozen=True)
class PoolEntry:
    """The workers of one revision that take requests, and its weight."""

    revision: str
    weight: int
    backends: tuple[tuple[str, int], ...]


@dataclasses.dataclass(frozen=True)
class PoolConfig:
    port: int
    slots_per_worker: int
    queue_timeout_s: float
    pools: tuple[PoolEntry, ...]


def config_path(state_dir: Path, name: str) -> Path:
    return state_dir / "proxies" / f"{name}.json"


def written_generation(path: Path) -> int:
    """The generation of the file at ``path`` (0: none, or unreadable)."""
    try:
        return int(json.loads(path.read_text()).get("generation", 0))
    except (OSError, ValueError, AttributeError, TypeError):
        return 0


def write_config(path: Path, config: PoolConfig, *, generation: int) -> None:
    document = {
        "generation": generation,
        "port": config.port,
        "slots_per_worker": config.slots_per_worker,
        "queue_timeout_s": config.queue_timeout_s,
        "pools": [
            {
                "revision": entry.revision,
                "weight": entry.weight,
                "backends": [{"id": bid, "port": port} for bid, port in entry.backends],
            }
            for entry in config.pools
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=1, sort_keys=True))
    os.replace(temporary, path)


def tell_reload(identity: procs.ProcessIdentity | None) -> None:
    """SIGHUP the proxy, if it runs. Only a proxy that answered once may be told: one
    still starting has no handler yet (SIGHUP would end it), and reads the file anyway."""
    if identity is None or not procs.is_running(identity):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(identity.pid, signal.SIGHUP)


@dataclasses.dataclass(frozen=True)
class ProxyStats:
    """What the proxy said of itself (see local_proxy.Proxy.snapshot)."""

    generation: int
    waiting: int
    in_flight: int
    backends: tuple[dict[str, Any], ...]
    revisions: dict[str, dict[str, Any]]

    def holds(self, worker_id: str) -> bool:
        """Whether a worker of that id still has, or may get, a request there."""
        return any(b.get("id") == worker_id for b in self.backends)

    def window(self, revision: str) -> dict[str, Any]:
        found = self.revisions.get(revision) or {}
        window = found.get("window")
        return window if isinstance(window, dict) else {}

    def ttft_p90_ms(self, revisions: Sequence[str]) -> float | None:
        values = [self.window(r).get("ttft_p90_ms") for r in revisions]
        found = [float(v) for v in values if isinstance(v, int | float)]
        return max(found) if found else None


async def fetch_stats(
    session: aiohttp.ClientSession, port: int, *, window_s: float, timeout_s: float
) -> ProxyStats | None:
    """The proxy's stats over the last ``window_s`` seconds (None: it did not answer)."""
    url = f"http://{procs.LOOPBACK}:{port}/_reconciler/stats?window_s={window_s:g}"
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            if response.status != 200:
                return None
            raw = await response.json()
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
        return None
    try:
        return ProxyStats(
            generation=int(raw["generation"]),
            waiting=int(raw["waiting"]),
            in_flight=int(raw["in_flight"]),
            backends=tuple(raw["backends"]),
            revisions=dict(raw["revisions"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


async def served_generation(
    session: aiohttp.ClientSession, port: int, *, timeout_s: float
) -> int | None:
    """The configuration generation the proxy serves (None: it did not answer)."""
    url = f"http://{procs.LOOPBACK}:{port}/_reconciler/health"
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            if response.status != 200:
                return None
            return int((await response.json())["generation"])
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError, KeyError, TypeError):
        return None
