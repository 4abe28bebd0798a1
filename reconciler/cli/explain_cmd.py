"""``reconciler explain KIND/NAME``: why an object is not Ready, and what to do about it.

Asks the running daemon (``GET /api/v1/objects/{kind}/{name}/explain``) and prints the
object's phase and reason with what the user can do about that reason, what it waits
for (and what that waits for), and its last execution's steps with the tail of their
logs. ``--format json`` prints the API's document. Exit 0 on an answer, 1 when the object
is unknown (with a did-you-mean), the daemon cannot be reached, or on a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import Any

from reconciler.cli.api_client import ApiCallError, ApiClient, add_server_flags, quote
from reconciler.cli.object_names import not_found_hint, split_key


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("object", help="KIND/NAME, e.g. Deployment/embeddings")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    add_server_flags(parser)


def run(args: argparse.Namespace) -> int:
    try:
        kind, name = split_key(args.object)
        client = ApiClient.from_args(args)
    except ValueError as exc:
        print(f"reconciler explain: {exc}", file=sys.stderr)
        return 1
    try:
        answer = client.get(f"/api/v1/objects/{quote(kind)}/{quote(name)}/explain")
    except ApiCallError as exc:
        hint = not_found_hint(client, kind, name) if exc.status == 404 else ""
        print(f"reconciler explain: {exc}{hint}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps(answer, indent=2))
    else:
        sys.stdout.write(render_text(answer))
    return 0


def render_text(answer: Mapping[str, Any]) -> str:
    """The explanation for a terminal."""
    lines = [f"{answer['object']}: {answer['phase']} ({answer['reason']})"]
    if answer.get("message"):
        lines.append(f"  {answer['message']}")
    if answer.get("what_to_do"):
        lines.append(f"  what to do: {_plain(answer['what_to_do'])}")
    waits = answer.get("waits_for") or []
    if waits:
        lines.append("")
        lines.append("waits for:")
        lines += _render_waits(waits, "  ")
    last = answer.get("last_execution")
    if last:
        lines.append("")
        lines.append(
            f"last execution {last['id']} ({last['action']}, {last['trigger']}): "
            f"{last['status']}" + (f": {last['error']}" if last.get("error") else "")
        )
        for step in last["steps"]:
            lines.append(
                f"  {step['id']} ({step['type']}): {step['status']}, "
                f"{step['attempts']} attempt(s)" + (f": {step['error']}" if step["error"] else "")
            )
            lines += [f"    | {line}" for line in step["log_tail"]]
    return "\n".join(lines) + "\n"


def _render_waits(waits: list[Mapping[str, Any]], indent: str) -> list[str]:
    lines: list[str] = []
    for item in waits:
        lines.append(f"{indent}{item['object']}: {item['phase']} ({item['reason']})")
        if item.get("message"):
            lines.append(f"{indent}  {item['message']}")
        if item.get("what_to_do"):
            lines.append(f"{indent}  what to do: {_plain(item['what_to_do'])}")
        lines += _render_waits(item.get("waits_for") or [], indent + "  ")
    return lines


def _plain(text: object) -> str:
    """The catalogue's advice is Markdown; a terminal gets it without the backticks."""
    return str(text).replace("`", "")
