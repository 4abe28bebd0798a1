"""``reconciler shards``: which replica of a sharded daemon holds which shard (via its API).

Asks any replica's ``GET /api/v1/shards`` and prints one line per shard: its holder, the
replica it is assigned to (they differ while it moves), its state on the replica asked,
the lease's transitions, its clusters and how many objects of each kind it has; then the
replicas and the API address each advertises. ``--json`` prints the answer as it came.
A daemon that is not sharded shows one shard, held by itself. Needs a viewer token.
Exit 0 on success, 1 on any error.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from reconciler.cli.api_client import ApiCallError, ApiClient, add_server_flags


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the API's answer as JSON")
    add_server_flags(parser)


def render(answer: dict[str, Any]) -> str:
    if not answer.get("enabled"):
        return "not sharded: one daemon holds everything (no sharding: section)\n"
    rows = [("SHARD", "HOLDER", "ASSIGNED", "STATE", "MOVES", "CLUSTERS", "OBJECTS")]
    for item in answer.get("items") or []:
        objects = ", ".join(f"{n} {kind}" for kind, n in (item.get("objects") or {}).items())
        rows.append(
            (
                str(item["shard"]),
                item.get("holder") or "-",
                item.get("assigned_to") or "-",
                item.get("state") or "-",
                str(item.get("transitions") if item.get("transitions") is not None else "-"),
                ",".join(item.get("clusters") or []) or "-",
                objects or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = [
        "  ".join([*(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)), row[-1]])
        for row in rows
    ]
    lines.append("")
    lines.append(f"asked: {answer.get('identity')} (holds {answer.get('held_here')})")
    for member in answer.get("members") or []:
        state = "alive" if member.get("alive") else "gone"
        lines.append(f"replica {member['identity']}: {state}, API {member.get('url') or '-'}")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    try:
        client = ApiClient.from_args(args)
        answer = client.get("/api/v1/shards")
    except (ValueError, ApiCallError) as exc:
        print(f"reconciler shards: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(answer, indent=2))
    else:
        sys.stdout.write(render(answer))
    return 0
