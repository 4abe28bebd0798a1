"""``reconciler endpoints [list | stop NAME... | stop --all]``: the local model servers.

Local endpoints (Deployments on a ``driver: local`` cluster) are processes of their own
that keep serving when the daemon stops, so that a restart adopts them without a cold
start. This command lists them and stops them while the daemon is down:

  reconciler endpoints                      # list: name, port, state, pids, URL
  reconciler endpoints stop embed           # stop one server (its process group)
  reconciler endpoints stop --all           # stop every server

The state directory comes from --state-dir, else from the config (--config, else
$RECONCILER_CONFIG, else /etc/reconciler/reconciler.yaml). A running daemon supervises
the servers and would start a stopped one again at once, so ``stop`` is refused while
one runs (stop the daemon first, or remove the Deployment from Git); ``stop`` holds the
state directory's lock meanwhile, so no daemon starts halfway. A stopped endpoint keeps
its port: the next daemon starts it again as long as its Deployment is in Git.
Run it as the daemon's user (sudo -u reconciler ...). Exit 0 on success, 1 on any error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from reconciler.daemon.config import DEFAULT_CONFIG_PATH, ConfigError, config_path, load_config
from reconciler.drivers.clusters import local_admin
from reconciler.drivers.state_lock import StateDirLock, StateDirLocked, lock_holder

LOCAL_DIR = "local"
"""The local driver's folder inside the daemon's state directory."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action", nargs="?", choices=("list", "stop"), default="list", help="default: list"
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="endpoints to stop")
    parser.add_argument("--all", action="store_true", help="with stop: every endpoint")
    parser.add_argument("--config", type=Path, default=None, help="the daemon's config file")
    parser.add_argument("--state-dir", type=Path, default=None, help="the daemon's state_dir")
    parser.add_argument("--json", action="store_true", help="list as JSON")


def _fail(message: str) -> int:
    print(f"reconciler endpoints: error: {message}", file=sys.stderr)
    return 1


def _state_dir(args: argparse.Namespace) -> Path:
    if args.state_dir is not None:
        if args.config is not None:
            raise ValueError("give either --config or --state-dir, not both")
        return Path(args.state_dir).resolve()
    path = config_path(args.config) or DEFAULT_CONFIG_PATH
    if args.config is None and not path.exists():
        raise ValueError(f"no config at {path}: give --config FILE or --state-dir DIR")
    try:
        return load_config(path).state_dir
    except ConfigError as exc:
        raise ValueError(f"invalid config:\n{exc}") from None


def _show(servers: list[local_admin.LocalServer], *, as_json: bool) -> None:
    if as_json:
        rows = [
            {
                "name": s.name,
                "deployment": s.deployment,
                "port": s.port,
                "url": s.url,
                "state": "running" if s.running else "stopped",
                "pids": list(s.pids),
                "log": str(s.log),
            }
            for s in servers
        ]
        print(json.dumps(rows, indent=1))
        return
    if not servers:
        print("no local endpoints")
        return
    table = [("NAME", "PORT", "STATE", "PID", "URL")]
    for s in servers:
        pids = ",".join(map(str, s.pids)) or "-"
        table.append((s.name, str(s.port), "running" if s.running else "stopped", pids, s.url))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())


def _list(state_dir: Path, args: argparse.Namespace) -> int:
    servers = local_admin.list_servers(state_dir / LOCAL_DIR)
    _show(servers, as_json=args.json)
    holder = lock_holder(state_dir)
    if holder is not None and servers:
        who = f"pid {holder}" if holder else "a running daemon"
        print(
            f"the daemon ({who}) supervises these servers and restarts any that stop",
            file=sys.stderr,
        )
    return 0


def _stop(state_dir: Path, args: argparse.Namespace) -> int:
    if args.all == bool(args.names):
        return _fail("stop needs endpoint names or --all (not both)")
    if not state_dir.is_dir():
        return _fail(f"no state directory at {state_dir}")
    lock = StateDirLock(state_dir)
    try:
        lock.acquire()
    except StateDirLocked as exc:
        return _fail(
            f"{exc}. A running daemon supervises its servers and would start a stopped one "
            "again: stop the daemon first (systemctl stop reconciler), or remove the "
            "Deployment from Git to remove its endpoint"
        )
    except OSError as exc:
        return _fail(f"cannot lock {lock.path}: {exc.strerror or exc}")
    try:
        local = state_dir / LOCAL_DIR
        names = args.names or [s.name for s in local_admin.running_servers(local)]
        if not names:
            print("no local endpoint is running")
        for name in names:
            server = asyncio.run(local_admin.stop_server(local, name))
            print(f"stopped {server.name} (port {server.port} stays reserved for it)")
        if names:
            print("the daemon starts them again when it runs, while their Deployments are in Git")
    finally:
        lock.release()
    return 0


def run(args: argparse.Namespace) -> int:
    if args.action == "list" and (args.names or args.all):
        return _fail("list takes no names; did you mean: reconciler endpoints stop NAME")
    try:
        state_dir = _state_dir(args)
        if args.action == "list":
            return _list(state_dir, args)
        return _stop(state_dir, args)
    except ValueError as exc:
        return _fail(str(exc))
    except local_admin.EndpointAdminError as exc:
        return _fail(str(exc))
