"""``reconciler status [KIND/NAME] [--wait]``: what the running daemon thinks, from its API.

Without an argument: the watched branch (last seen and applied revisions) and every
object with its phase. With ``KIND/NAME`` (the kind in any case, singular or plural:
``deployment/embeddings``): that object's phase, its conditions, a Deployment's endpoint
and the steps of its last execution; a name the daemon does not know gets a did-you-mean.
``--wait`` polls until this daemon has finished its first load and the object is Ready
(for a Deployment with an endpoint, until the endpoint itself answers; with ``--revision
SHA``, Ready at that commit), and exits 1 when it is Stalled or ``--timeout`` passes.
``--format json`` prints the API's documents. Exit 0 on an answer (Ready with
``--wait``), 1 when the daemon refuses or cannot be reached, the object is unknown, or
on a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from reconciler.cli.api_client import ApiCallError, ApiClient, add_server_flags, quote
from reconciler.cli.object_names import not_found_hint, split_key

PAGE = 500
POLL_S = 1.0
PROBE_TIMEOUT_S = 5.0


class StatusError(Exception):
    """The answer is no: an unknown object, an unreachable daemon, a Stalled object."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "object", nargs="?", default=None, help="KIND/NAME, e.g. Deployment/embeddings"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--wait",
        action="store_true",
        help="wait until KIND/NAME is Ready (a Deployment: until its endpoint answers); "
        "exit 1 when it is Stalled or --timeout passes",
    )
    parser.add_argument(
        "--revision",
        default=None,
        metavar="SHA",
        help="with --wait: wait until the object was reconciled at this commit (e.g. "
        "$(git rev-parse HEAD) after a push), not only until it is Ready",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="how long --wait waits (default 600)",
    )
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


def _fetch(client: ApiClient, kind: str, name: str) -> dict[str, Any]:
    try:
        body: dict[str, Any] = client.get(f"/api/v1/objects/{quote(kind)}/{quote(name)}")
    except ApiCallError as exc:
        if exc.status == 404:
            raise StatusError(f"{exc}{not_found_hint(client, kind, name)}") from None
        raise
    return body


def _endpoint_url(body: dict[str, Any]) -> str | None:
    url = (body.get("status") or {}).get("endpoint_url")
    return url if isinstance(url, str) and url else None


def _describe(kind: str, name: str, body: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(body, indent=2)
    lines = [
        f"{kind}/{name}: {body['phase']} (ready {body['ready']})",
        f"  observed revision {body.get('observed_revision') or '-'}",
    ]
    endpoint = _endpoint_url(body)
    if endpoint is not None:
        lines.append(f"  endpoint_url {endpoint}")
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


def endpoint_answers(url: str) -> bool:
    """Whether an OpenAI-compatible endpoint lists its models (``GET {url}/models``)."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/models", timeout=PROBE_TIMEOUT_S) as r:
            return bool(200 <= r.status < 300)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _why_not_yet(
    client: ApiClient, kind: str, name: str, revision: str | None
) -> tuple[str, dict[str, Any] | None]:
    """What still stands between the object and Ready (at ``revision``, when given), or
    ("", body) once it is there.

    Raises StatusError when it is Stalled (at that revision): a person must act, waiting
    is pointless.
    """
    try:
        client.get("/readyz")
    except ApiCallError as exc:
        return f"the daemon is not ready: {exc}", None
    body = _fetch(client, kind, name)
    phase = body["phase"]
    observed = str(body.get("observed_revision") or "")
    if revision is not None and not (observed and observed.startswith(revision)):
        return (
            f"{kind}/{name} is {phase} at {observed[:12] or 'no revision'}, not {revision[:12]}",
            body,
        )
    if phase == "Stalled":
        raise StatusError(_describe(kind, name, body, "text"))
    if phase != "Ready":
        return f"{kind}/{name} is {phase}", body
    endpoint = _endpoint_url(body)
    if endpoint is not None and not endpoint_answers(endpoint):
        return f"{kind}/{name} is Ready but {endpoint}/models does not answer yet", body
    return "", body


def _wait(
    client: ApiClient, kind: str, name: str, *, timeout_s: float, revision: str | None
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            reason, body = _why_not_yet(client, kind, name, revision)
        except ApiCallError as exc:  # not up yet, or restarting: keep asking until the deadline
            reason, body = str(exc), None
        if not reason and body is not None:
            return body
        if time.monotonic() >= deadline:
            raise StatusError(f"still not Ready after {timeout_s:g}s: {reason}")
        time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))


def run(args: argparse.Namespace) -> int:
    try:
        client = ApiClient.from_args(args)
        if args.wait and args.object is None:
            raise ValueError("--wait needs KIND/NAME, e.g. Deployment/embeddings")
        if args.revision is not None and not args.wait:
            raise ValueError("--revision goes with --wait")
        if args.revision is not None and len(args.revision) < 7:
            raise ValueError(
                f"--revision {args.revision!r}: give a commit sha (7 or more hex digits)"
            )
        if args.object is None:
            text = _overview(client, args.format)
        else:
            kind, name = split_key(args.object)
            if args.wait:
                body = _wait(client, kind, name, timeout_s=args.timeout, revision=args.revision)
            else:
                body = _fetch(client, kind, name)
            text = _describe(kind, name, body, args.format)
    except ValueError as exc:
        print(f"reconciler status: error: {exc}", file=sys.stderr)
        return 1
    except StatusError as exc:
        print(f"reconciler status: {exc}", file=sys.stderr)
        return 1
    except ApiCallError as exc:
        print(f"reconciler status: {exc}", file=sys.stderr)
        return 1
    print(text)
    return 0
