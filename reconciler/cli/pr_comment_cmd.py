"""``reconciler pr-comment FILE``: keep one plan comment on a pull or merge request.

CI runs it after ``reconciler plan --format markdown > FILE`` (see ``ci.sh`` of a repo
made by ``reconciler init``). The comment carries a hidden marker; the first comment of
the request holding it is edited, else a new one is posted, so a request has one plan
comment that follows its pushes. Where it posts comes from the CI's own variables:

- GitHub Actions (``GITHUB_ACTIONS``): ``GITHUB_API_URL``, ``GITHUB_REPOSITORY``, the
  pull request number from ``GITHUB_REF`` (``refs/pull/N/merge``) or the event file, and
  ``GITHUB_TOKEN`` (the workflow needs ``pull-requests: write``).
- GitLab CI (``GITLAB_CI``): ``CI_API_V4_URL``, ``CI_PROJECT_ID``,
  ``CI_MERGE_REQUEST_IID`` and ``RECONCILER_GITLAB_TOKEN`` (a project access token with
  the ``api`` scope; the job token may not write notes).

Without a token it says so and exits 0 (the plan stays in the job log). Exit 1 when the
host refuses or cannot be reached, or on a usage error. The token is never printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MARKER = "<!-- reconciler-plan -->"
GITHUB_BODY_LIMIT = 65_536
TRUNCATED = "\n\n… (truncated: the whole plan is in the CI job's log)\n"
PER_PAGE = 100
MAX_PAGES = 50
TIMEOUT_S = 30.0
GITLAB_TOKEN_ENV = "RECONCILER_GITLAB_TOKEN"


class CommentError(Exception):
    """The comment could not be posted; the message says why."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="the markdown to post (reconciler plan's output)")
    parser.add_argument(
        "--provider",
        choices=("auto", "github", "gitlab"),
        default="auto",
        help="where to post (default: told by the CI's variables)",
    )
    parser.add_argument(
        "--marker",
        default=None,
        metavar="NAME",
        help="tell this comment apart from other plan comments on the same request "
        "(one per spec folder, say)",
    )


@dataclasses.dataclass(frozen=True)
class Target:
    """One request's comment thread: how to list, edit and add comments."""

    provider: str
    list_url: str
    create_url: str
    edit_url: str
    """With ``{id}`` for the comment's id."""
    edit_method: str
    headers: Mapping[str, str]


def marker_of(name: str | None) -> str:
    return MARKER if not name else f"<!-- reconciler-plan:{name} -->"


def _provider(choice: str, env: Mapping[str, str]) -> str:
    if choice != "auto":
        return choice
    if env.get("GITHUB_ACTIONS") == "true":
        return "github"
    if env.get("GITLAB_CI") == "true":
        return "gitlab"
    raise CommentError(
        "not in GitHub Actions or GitLab CI (neither GITHUB_ACTIONS nor GITLAB_CI is set); "
        "give --provider"
    )


def _need(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    if not value:
        raise CommentError(f"${name} is not set; run this in the CI job of a pull request")
    return value


def _github_pr(env: Mapping[str, str]) -> str:
    found = re.fullmatch(r"refs/pull/(\d+)/(?:merge|head)", env.get("GITHUB_REF", ""))
    if found:
        return found.group(1)
    event_path = env.get("GITHUB_EVENT_PATH")
    if event_path:
        try:
            event = json.loads(Path(event_path).read_text(encoding="utf-8"))
            number = event.get("pull_request", {}).get("number")
        except (OSError, ValueError, AttributeError):
            number = None
        if isinstance(number, int):
            return str(number)
    raise CommentError(
        "no pull request number (GITHUB_REF is not refs/pull/N/merge): run this on the "
        "pull_request event"
    )


def target_from(env: Mapping[str, str], provider: str) -> Target | None:
    """Where to post, or None when no token is given."""
    if provider == "github":
        token = env.get("GITHUB_TOKEN")
        if not token:
            return None
        api = env.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
        repository = _need(env, "GITHUB_REPOSITORY")
        number = _github_pr(env)
        thread = f"{api}/repos/{repository}/issues/{number}/comments"
        return Target(
            provider="github",
            list_url=thread,
            create_url=thread,
            edit_url=f"{api}/repos/{repository}/issues/comments/{{id}}",
            edit_method="PATCH",
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
            },
        )
    token = env.get(GITLAB_TOKEN_ENV)
    if not token:
        return None
    api = _need(env, "CI_API_V4_URL").rstrip("/")
    project = urllib.parse.quote(_need(env, "CI_PROJECT_ID"), safe="")
    iid = _need(env, "CI_MERGE_REQUEST_IID")
    thread = f"{api}/projects/{project}/merge_requests/{iid}/notes"
    return Target(
        provider="gitlab",
        list_url=thread,
        create_url=thread,
        edit_url=thread + "/{id}",
        edit_method="PUT",
        headers={"PRIVATE-TOKEN": token},
    )


def _call(target: Target, method: str, url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    for name, value in target.headers.items():
        request.add_header(name, value)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:300].strip()
        hint = ""
        if exc.code in (401, 403):
            hint = (
                " (the workflow needs `permissions: pull-requests: write`; a pull request "
                "from a fork gets a read-only token)"
                if target.provider == "github"
                else f" (${GITLAB_TOKEN_ENV} needs the api scope and Reporter role or above)"
            )
        raise CommentError(
            f"{method} {_path_of(url)}: {exc.code} {exc.reason}: {detail}{hint}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        raise CommentError(f"cannot reach {_path_of(url)}: {getattr(exc, 'reason', exc)}") from None
    except ValueError:
        raise CommentError(f"{method} {_path_of(url)}: the answer is not JSON") from None


def _path_of(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def find_comment(target: Target, marker: str) -> int | None:
    """The id of the first comment holding ``marker``, or None."""
    for page in range(1, MAX_PAGES + 1):
        query = urllib.parse.urlencode({"per_page": PER_PAGE, "page": page, "sort": "asc"})
        if target.provider == "github":
            query = urllib.parse.urlencode({"per_page": PER_PAGE, "page": page})
        comments = _call(target, "GET", f"{target.list_url}?{query}")
        if not isinstance(comments, list):
            raise CommentError(f"GET {_path_of(target.list_url)}: expected a list of comments")
        for comment in comments:
            if isinstance(comment, dict) and marker in str(comment.get("body") or ""):
                return int(comment["id"])
        if len(comments) < PER_PAGE:
            return None
    return None


def comment_body(markdown: str, marker: str) -> str:
    body = f"{marker}\n{markdown.rstrip()}\n"
    if len(body) > GITHUB_BODY_LIMIT:
        body = body[: GITHUB_BODY_LIMIT - len(TRUNCATED)] + TRUNCATED
    return body


def upsert(target: Target, markdown: str, marker: str) -> tuple[str, int]:
    """Edit the marked comment or add one; ("updated" | "created", its id)."""
    body = comment_body(markdown, marker)
    found = find_comment(target, marker)
    if found is not None:
        _call(target, target.edit_method, target.edit_url.format(id=found), {"body": body})
        return "updated", found
    created = _call(target, "POST", target.create_url, {"body": body})
    return "created", int(created["id"])


def run(args: argparse.Namespace, *, environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    try:
        markdown = args.file.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"reconciler pr-comment: error: cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    try:
        provider = _provider(args.provider, env)
        target = target_from(env, provider)
        if target is None:
            token = "GITHUB_TOKEN" if provider == "github" else GITLAB_TOKEN_ENV
            print(
                f"reconciler pr-comment: ${token} is not set, so the plan is not posted "
                "(it is in this job's log)",
                file=sys.stderr,
            )
            return 0
        action, comment_id = upsert(target, markdown, marker_of(args.marker))
    except CommentError as exc:
        print(f"reconciler pr-comment: error: {exc}", file=sys.stderr)
        return 1
    print(f"{action} the plan comment ({provider} comment {comment_id})")
    return 0
