"""``reconciler trigger WORKFLOW [-p KEY=VALUE]...``: run a Workflow now, through the API.

Each ``-p`` overrides one of the workflow's ``user_params`` (numbers, true/false and null
are read as such, anything else as text). Prints the execution id; with ``--wait`` follows
it to the end and exits 0 if it succeeded, 1 otherwise. The daemon must know the token
(operator role or above): ``$RECONCILER_TOKEN`` or ``--token``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from reconciler.cli.api_client import ApiCallError, ApiClient, add_server_flags, quote
from reconciler.cli.object_names import not_found_hint

FINISHED = frozenset({"succeeded", "failed", "stalled", "cancelled", "superseded"})
POLL_S = 0.5


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workflow", help="the Workflow's name")
    parser.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parameter (repeatable)",
    )
    parser.add_argument("--wait", action="store_true", help="follow the run to its end")
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds --wait waits (default 3600)"
    )
    add_server_flags(parser)


def parse_param(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ValueError(f"-p {text!r}: expected KEY=VALUE")
    try:
        value = json.loads(raw)
    except ValueError:
        return key, raw
    return key, value if isinstance(value, int | float | bool) or value is None else raw


def _start(client: ApiClient, workflow: str, params: dict[str, Any]) -> Any:
    try:
        return client.call(
            "POST", f"/api/v1/workflows/{quote(workflow)}/executions", {"params": params}
        )
    except ApiCallError as exc:
        if exc.status != 404:
            raise
        hint = not_found_hint(client, "Workflow", workflow)
        raise ApiCallError(f"{exc}{hint}", status=404) from None


def run(args: argparse.Namespace) -> int:
    try:
        params = dict(parse_param(item) for item in args.param)
    except ValueError as exc:
        print(f"reconciler trigger: error: {exc}", file=sys.stderr)
        return 1
    try:
        client = ApiClient.from_args(args)
    except ValueError as exc:
        print(f"reconciler trigger: error: {exc}", file=sys.stderr)
        return 1
    try:
        started = _start(client, args.workflow, params)
        print(started["id"])
        if not args.wait:
            return 0
        deadline = time.monotonic() + args.timeout
        record = started
        while record["status"] not in FINISHED:
            if time.monotonic() > deadline:
                print(f"reconciler trigger: still {record['status']} after {args.timeout:g}s",
                      file=sys.stderr)  # fmt: skip
                return 1
            time.sleep(POLL_S)
            record = client.get(f"/api/v1/executions/{started['id']}", logs="false")
    except ApiCallError as exc:
        print(f"reconciler trigger: {exc}", file=sys.stderr)
        return 1
    print(f"{record['status']}" + (f": {record['error']}" if record.get("error") else ""))
    return 0 if record["status"] == "succeeded" else 1
