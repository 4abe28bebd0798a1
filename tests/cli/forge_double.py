"""A loopback stand-in for the comment API of GitHub and GitLab (no real forge can run in
a test): the paths, headers, JSON fields, paging and status codes ``reconciler
pr-comment`` relies on, and a record of every request so tests can assert on them.

GitHub: ``GET/POST /repos/{owner}/{repo}/issues/{n}/comments`` and ``PATCH
/repos/{owner}/{repo}/issues/comments/{id}``, ``Authorization: Bearer``. GitLab: ``GET/POST
/projects/{id}/merge_requests/{iid}/notes`` and ``PUT .../notes/{id}``, ``PRIVATE-TOKEN``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

GITHUB_THREAD = re.compile(r"^/repos/([^/]+/[^/]+)/issues/(\d+)/comments$")
GITHUB_COMMENT = re.compile(r"^/repos/([^/]+/[^/]+)/issues/comments/(\d+)$")
GITLAB_THREAD = re.compile(r"^/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes$")
GITLAB_NOTE = re.compile(r"^/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes/(\d+)$")


@dataclasses.dataclass
class Forge:
    token: str
    url: str = ""
    comments: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    requests: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    next_id: int = 1000
    deny: bool = False

    def thread(self, key: str) -> list[dict[str, Any]]:
        return self.comments.setdefault(key, [])

    def seed(self, key: str, count: int, body: str = "a review remark") -> None:
        for _ in range(count):
            self.next_id += 1
            self.thread(key).append({"id": self.next_id, "body": body})


def _handler(forge: Forge) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _allowed(self) -> bool:
            github = self.headers.get("Authorization") == f"Bearer {forge.token}"
            gitlab = self.headers.get("PRIVATE-TOKEN") == forge.token
            if not (github or gitlab):
                self._answer(401, {"message": "Bad credentials"})
                return False
            if forge.deny:
                self._answer(403, {"message": "Resource not accessible by integration"})
                return False
            return True

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            value = json.loads(self.rfile.read(length) or b"{}")
            assert isinstance(value, dict)
            return value

        def _route(self, method: str) -> None:
            parts = urllib.parse.urlsplit(self.path)
            forge.requests.append((method, parts.path))
            if not self._allowed():
                return
            query = urllib.parse.parse_qs(parts.query)
            thread = GITHUB_THREAD.match(parts.path) or GITLAB_THREAD.match(parts.path)
            single = GITHUB_COMMENT.match(parts.path) or GITLAB_NOTE.match(parts.path)
            if thread and method == "GET":
                per_page = int(query.get("per_page", ["30"])[0])
                page = int(query.get("page", ["1"])[0])
                items = forge.thread(f"{thread[1]}#{thread[2]}")
                self._answer(200, items[(page - 1) * per_page : page * per_page])
            elif thread and method == "POST":
                forge.next_id += 1
                comment = {"id": forge.next_id, "body": self._body()["body"]}
                forge.thread(f"{thread[1]}#{thread[2]}").append(comment)
                self._answer(201, comment)
            elif single and method in ("PATCH", "PUT"):
                wanted = int(single[single.lastindex or 0])
                for items in forge.comments.values():
                    for comment in items:
                        if comment["id"] == wanted:
                            comment["body"] = self._body()["body"]
                            self._answer(200, comment)
                            return
                self._answer(404, {"message": "Not Found"})
            else:
                self._answer(404, {"message": "Not Found"})

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PATCH(self) -> None:
            self._route("PATCH")

        def do_PUT(self) -> None:
            self._route("PUT")

    return Handler


@contextmanager
def running_forge(token: str) -> Iterator[Forge]:
    forge = Forge(token=token)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(forge))
    forge.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield forge
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
