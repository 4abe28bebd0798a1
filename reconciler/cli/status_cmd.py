"""``reconciler status [KIND/NAME]``: what the running daemon thinks, from its API.

Without an argument: the watched branch (last seen and applied revisions) and every
object with its phase. With ``KIND/NAME``: that object's phase, its conditions and the
steps of its last execution. ``--format json`` prints the API's documents. Exit 0 on an
answer, 1 when the daemon refuses or cannot be reached, or on a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from reconciler.cli.api_client import ApiCallError, ApiClient, add_server_flags, quote

PAGE = 500


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("object", nargs="?", default=None, help="KIND/NAME, e.g. Workflow/train")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    add_server_flags(parser)


def _all_objects(client: ApiClient) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        query = {"limit": str(PAGE), **({"continue": token} if token else {})}
        page = client.get("/api/v1/objects", **query)
        items += page["items"]
        token = page.get("continue")
        if not token:
            return items


def _overview(client: ApiClient, fmt: str) -> str:
    status = client.get("/api/v1/status")
    objects = _all_objects(client)
    if fmt == "json":
        return json.dumps({"status": status, "objects": objects}, indent=2)
    source = status["source"]
    lines = [
        f"source {source['url']} branch {source['branch']}",
        f"  last seen    {source['last_seen_revision'] or '-'}",
        f"  last applied {source['last_applied_revision'] or '-'}",
        f"  executions   {status['executions']['running']} running, "
        f"{status['executions']['queued']} queued",
        "",
    ]
    width = max((len(f"{o['kind']}/{o['name']}") for o in objects), default=6)
    lines.append(f"{'OBJECT':<{width}}  {'PHASE':<12} READY")
    for item in objects:
        key = f"{item['kind']}/{item['name']}"
        lines.append(f"{key:<{width}}  {item['phase']:<12} {item['ready']}")
    return "\n".join(lines)


def _detail(client: ApiClient, target: str, fmt: str) -> str:
    kind, sep, name = target.partition("/")
    if not sep or not kind or not name:
        raise ValueError(f"{target!r} is not KIND/NAME, e.g. Workflow/train")
    body = client.get(f"/api/v1/objects/{quote(kind)}/{quote(name)}")
    if fmt == "json":
        return json.dumps(body, indent=2)
    lines = [
        f"{kind}/{name}: {body['phase']} (ready {body['ready']})",
        f"  observed revision {body.get('observed_revision') or '-'}",
    ]
    for condition in body["conditions"]:
        lines.append(
            f"  {condition.get('type')}={condition.get('status')} "
            f"{condition.get('reason')}: {condition.get('message') or ''}".rstrip()
        )
    executions = body["last_executions"]
    if executions:
        last = executions[0]
        lines.append(
            f"  last execution {last['id']} {last['action']} {last['status']} "
            f"(trigger {last['trigger']})" + (f": {last['error']}" if last.get("error") else "")
        )
        for step in last.get("steps") or []:
            extra = f" {step['error']}" if step.get("error") else ""
            lines.append(
                f"    {step['id']:<20} {step['type']:<16} {step['status']:<9} "
                f"attempts {step['attempts']}{extra}"
            )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    client = ApiClient.from_args(args)
    try:
        if args.object is None:
            text = _overview(client, args.format)
        else:
            text = _detail(client, args.object, args.format)
    except ValueError as exc:
        print(f"reconciler status: error: {exc}", file=sys.stderr)
        return 1
    except ApiCallError as exc:
        print(f"reconciler status: {exc}", file=sys.stderr)
        return 1
    print(text)
    return 0
