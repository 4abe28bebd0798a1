"""Loopback HTTP servers for model sources: a Hugging Face hub double and a file server.

The hub double speaks the hub's wire format as huggingface_hub reads it: model info at
``/api/models/{repo}/revision/{rev}`` (sha, siblings with sizes and LFS sha256,
safetensors parameters, cardData license, gated, pipeline_tag), the file list at
``/api/models/{repo}/tree/{rev}`` (what ``hf download`` reads first), files at
``/{repo}/resolve/{rev}/{path}`` with X-Repo-Commit, ETag, X-Linked-Size/Content-Length and
Range, ``X-Error-Code: GatedRepo`` on 401 for gated repos and ``RepoNotFound`` on 404. The
file server serves bytes with Range and can cut a transfer short a given number of times.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

_RANGE = re.compile(r"^bytes=(\d+)-$")


@dataclasses.dataclass
class HubRepo:
    files: dict[str, bytes]
    commit: str = "a" * 40
    gated: bool = False
    license: str = "apache-2.0"
    pipeline_tag: str = "text-generation"
    parameters: dict[str, int] = dataclasses.field(default_factory=dict)
    branches: tuple[str, ...] = ("main",)


@dataclasses.dataclass
class ServedFile:
    data: bytes
    cut_times: int = 0  # close the connection half-way this many times
    ignore_range: bool = False


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        return

    def _send(self, status: int, body: bytes, headers: dict[str, str], *, head: bool) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _error(self, status: int, code: str | None, head: bool) -> None:
        headers = {"X-Error-Code": code} if code else {}
        body = json.dumps({"error": code or "error"}).encode()
        self._send(status, b"" if head else body, headers, head=head)

    def do_GET(self) -> None:
        self.server.app.handle(self, head=False)

    def do_HEAD(self) -> None:
        self.server.app.handle(self, head=True)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    app: Hub | Files


def _byte_range(handler: _Handler, data: bytes) -> tuple[int, bytes, dict[str, str]]:
    match = _RANGE.match(handler.headers.get("Range", ""))
    if match is None:
        return 200, data, {}
    start = int(match.group(1))
    headers = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
    return 206, data[start:], headers


class Hub:
    def __init__(self, repos: dict[str, HubRepo], token: str | None = None) -> None:
        self.repos = repos
        self.token = token
        self.requests: list[str] = []

    def _repo(self, handler: _Handler, repo_id: str, head: bool) -> HubRepo | None:
        repo = self.repos.get(repo_id)
        if repo is None:
            handler._error(404, "RepoNotFound", head)
            return None
        authorized = handler.headers.get("Authorization") == f"Bearer {self.token}"
        if repo.gated and not authorized:
            handler._error(401, "GatedRepo", head)
            return None
        return repo

    def handle(self, handler: _Handler, *, head: bool) -> None:
        path = unquote(urlsplit(handler.path).path)
        self.requests.append(f"{handler.command} {path}")
        tree = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)", path)
        if tree:
            repo = self._repo(handler, tree.group(1), head)
            if repo is not None:
                self._tree(handler, repo, tree.group(2))
            return
        info = re.fullmatch(r"/api/models/([^/]+/[^/]+)/revision/(.+)", path)
        if info:
            repo = self._repo(handler, info.group(1), head)
            if repo is not None:
                self._info(handler, info.group(1), repo, info.group(2))
            return
        resolve = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if resolve is None:
            handler._error(404, None, head)
            return
        repo = self._repo(handler, resolve.group(1), head)
        if repo is None:
            return
        revision, name = resolve.group(2), resolve.group(3)
        if revision not in (repo.commit, *repo.branches):
            handler._error(404, "RevisionNotFound", head)
            return
        if name not in repo.files:
            handler._error(404, "EntryNotFound", head)
            return
        data = repo.files[name]
        status, body, headers = _byte_range(handler, data)
        digest = hashlib.sha256(data).hexdigest()
        headers.update(
            {
                "X-Repo-Commit": repo.commit,
                "ETag": f'"{digest}"',
                "X-Linked-Size": str(len(data)),
                "Content-Length": str(len(body)),
                "Accept-Ranges": "bytes",
            }
        )
        handler._send(status, body, headers, head=head)

    def _tree(self, handler: _Handler, repo: HubRepo, revision: str) -> None:
        """``/api/models/{repo}/tree/{rev}``: every file, one page (what ``hf download``
        lists before it fetches)."""
        if revision not in (repo.commit, *repo.branches):
            handler._error(404, "RevisionNotFound", False)
            return
        entries = []
        for name, data in sorted(repo.files.items()):
            entry: dict[str, object] = {
                "type": "file",
                "path": name,
                "size": len(data),
                "oid": hashlib.sha1(data).hexdigest(),
            }
            if name.endswith((".safetensors", ".bin", ".gguf")):
                digest = hashlib.sha256(data).hexdigest()
                entry["lfs"] = {"size": len(data), "oid": digest, "pointerSize": 134}
            entries.append(entry)
        handler._send(
            200, json.dumps(entries).encode(), {"Content-Type": "application/json"}, head=False
        )

    def _info(self, handler: _Handler, repo_id: str, repo: HubRepo, revision: str) -> None:
        if revision not in (repo.commit, *repo.branches):
            handler._error(404, "RevisionNotFound", False)
            return
        siblings = []
        for name, data in sorted(repo.files.items()):
            sibling: dict[str, object] = {"rfilename": name, "size": len(data), "blobId": "b" * 40}
            if name.endswith((".safetensors", ".bin", ".gguf")):
                sibling["lfs"] = {
                    "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "pointerSize": 134,
                }
            siblings.append(sibling)
        body: dict[str, object] = {
            "_id": "0" * 24,
            "id": repo_id,
            "modelId": repo_id,
            "sha": repo.commit,
            "private": False,
            "gated": "manual" if repo.gated else False,
            "disabled": False,
            "pipeline_tag": repo.pipeline_tag,
            "tags": ["safetensors"],
            "cardData": {"license": repo.license},
            "siblings": siblings,
        }
        if repo.parameters:
            body["safetensors"] = {
                "parameters": repo.parameters,
                "total": sum(repo.parameters.values()),
            }
        handler._send(
            200, json.dumps(body).encode(), {"Content-Type": "application/json"}, head=False
        )


class Files:
    def __init__(self, files: dict[str, ServedFile]) -> None:
        self.files = files
        self.ranges: list[str] = []
        self._lock = threading.Lock()

    def handle(self, handler: _Handler, *, head: bool) -> None:
        path = unquote(urlsplit(handler.path).path).lstrip("/")
        served = self.files.get(path)
        if served is None:
            handler._error(404, None, head)
            return
        self.ranges.append(handler.headers.get("Range", ""))
        if served.ignore_range:
            status, body, headers = 200, served.data, {}
        else:
            status, body, headers = _byte_range(handler, served.data)
        with self._lock:
            cut = served.cut_times > 0 and len(body) > 1
            if cut:
                served.cut_times -= 1
        headers["Content-Length"] = str(len(body))
        if not cut:
            handler._send(status, body, headers, head=head)
            return
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body[: len(body) // 2])
        handler.wfile.flush()
        handler.close_connection = True


@contextmanager
def serve(app: Hub | Files) -> Iterator[str]:
    """Run ``app`` on an ephemeral loopback port; yield its base URL."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.app = app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
