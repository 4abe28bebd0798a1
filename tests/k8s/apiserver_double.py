"""An in-test Kubernetes API server: real HTTP on loopback, the real wire protocol.

No kube-apiserver can be installed from the package registries here, so the kubernetes
driver is tested against this double, driven by the official client. It speaks what the
driver relies on, with the real server's shapes: discovery (``/version``, ``/api``,
``/apis``, resource lists), bearer-token authentication, namespaces, Deployments,
Services, Pods (with ``log``, followed as the kubelet writes it), Jobs (with the selector
and pod labels the server generates, and the ``Orphan`` default of their deletion) and
Nodes; server-side apply
(``application/apply-patch+yaml`` with ``fieldManager`` and ``force``) keeping
``managedFields`` per manager and answering 409 with a ``Status`` naming the conflicting
manager and fields; merge and strategic-merge patches and PUT as ``Update`` operations;
status subresources; ``generation`` bumped on spec changes; ``resourceVersion`` on every
write; watches as chunked JSON lines, with an ``ERROR`` event of code 410 for a
resourceVersion older than the event history; 404 in a missing namespace; 422 ``Invalid``
with causes. It runs its own event loop in a thread, so synchronous client calls from the
test and from the driver work alike.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import copy
import dataclasses
import datetime
import ipaddress
import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from tests.k8s import fieldsets, kinds, selectors

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0-double",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-08-13T00:00:00Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}


class StatusError(Exception):
    """An error the server answers with a ``Status`` object."""

    def __init__(
        self, code: int, reason: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def _apply_body(raw: bytes) -> Any:
    """An apply patch: YAML, of which JSON (what clients mostly send) is the fast case."""
    try:
        return json.loads(raw)
    except ValueError:
        return yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_ABSENT = object()


@dataclasses.dataclass(frozen=True)
class RequestRecord:
    """One request the double answered (no headers: the token stays out of test output)."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str
    status: int
    agent: str = ""
    """The client's User-Agent (which program called: the RBAC tests tell them apart)."""


@dataclasses.dataclass
class _Watcher:
    kind: kinds.Kind
    namespace: str | None
    labels: selectors.Matcher
    fields: selectors.Matcher
    queue: asyncio.Queue[dict[str, Any] | None]


@dataclasses.dataclass(frozen=True)
class _Target:
    kind: kinds.Kind
    namespace: str | None
    name: str | None
    subresource: str | None


Key = tuple[str, str, str]


class ApiServerDouble:
    """Start with ``start()``, stop with ``stop()``; ``url`` and ``token`` to connect."""

    def __init__(self, *, token: str = "double-token-5f1e0c", event_history: int = 100_000):
        self.token = token
        self.url = ""
        self.requests: list[RequestRecord] = []
        self._event_history = event_history
        self._objects: dict[Key, dict[str, Any]] = {}
        # The same objects by (plural, namespace), then name: a list reads only its own
        # kind in its own namespace, as the real server's cache reads one key range.
        self._by_scope: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self._events: list[tuple[int, Key, str, dict[str, Any]]] = []
        self._oldest_rv = 0
        self._rv = 100
        self._next_ip = int(ipaddress.IPv4Address("10.96.0.10"))
        self._watchers: list[_Watcher] = []
        self._pod_logs: dict[tuple[str, str], str] = {}
        self._pod_upstreams: list[tuple[str, dict[str, str], str]] = []
        self._log_followers: dict[tuple[str, str], list[asyncio.Event]] = {}
        self._gone_next = 0
        self._gone_namespace: str | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> ApiServerDouble:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        return self

    async def _start(self) -> None:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # A client that closes a watch ends its handler, as a real apiserver cancels the
        # request's context: a watcher left until its timeout would see every later event.
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        async def _stop() -> None:
            for watcher in self._watchers:
                watcher.queue.put_nowait(None)
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()

    def call(self, function: Callable[[], Any]) -> Any:
        """Run ``function`` on the server's loop (where the store lives) and return its result."""

        async def _run() -> Any:
            return function()

        return asyncio.run_coroutine_threadsafe(_run(), self._loop).result(timeout=30)

    def kubeconfig(self, *, context: str = "double", extra_contexts: tuple[str, ...] = ()) -> str:
        """A kubeconfig YAML text with a token user for this server (current-context set)."""
        names = (context, *extra_contexts)
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "double", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": self.token}}],
            "contexts": [
                {"name": n, "context": {"cluster": "double", "user": "tester"}} for n in names
            ],
            "current-context": context,
        }
        return yaml.safe_dump(config)

    # ------------------------------------------------------------- test controls
    def expire_watches(self) -> None:
        """Forget the event history and end every open watch, like an etcd compaction."""

        def _expire() -> None:
            self._events.clear()
            self._oldest_rv = self._rv
            for watcher in self._watchers:
                watcher.queue.put_nowait(None)

        self.call(_expire)

    def answer_next_watches_gone(self, count: int = 1, *, namespace: str | None = None) -> None:
        """The next ``count`` watches that name a resourceVersion get an ERROR event 410.

        With ``namespace``, only watches scoped to that namespace count: the fake
        kubelet's cluster-wide watches, which re-list every second, would otherwise take
        the 410 meant for the watch under test.
        """

        def _set() -> None:
            self._gone_next = count
            self._gone_namespace = namespace

        self.call(_set)

    def set_pod_log(self, *, namespace: str, pod: str, text: str) -> None:
        def _set() -> None:
            self._pod_logs[(namespace, pod)] = text
            self._log_changed((namespace, pod))

        self.call(_set)

    def append_pod_log(self, *, namespace: str, pod: str, text: str) -> None:
        """Add output to a pod's log, as a kubelet does while its container runs."""

        def _append() -> None:
            key = (namespace, pod)
            self._pod_logs[key] = self._pod_logs.get(key, "") + text
            self._log_changed(key)

        self.call(_append)

    def serve_pods(self, *, namespace: str, labels: dict[str, str], url: str) -> None:
        """``pods/{name}:{port}/proxy/...`` of a running pod carrying ``labels`` is answered
        by the HTTP server at ``url`` (what the pod's container would serve; the double
        runs no containers). The latest registration that matches wins."""

        def _set() -> None:
            self._pod_upstreams.insert(0, (namespace, dict(labels), url.rstrip("/")))

        self._loop.call_soon_threadsafe(_set)

    def _log_changed(self, key: tuple[str, str]) -> None:
        for event in self._log_followers.get(key, ()):
            event.set()

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.call(lambda: self._objects.get((plural, namespace, name)))
        return copy.deepcopy(found) if found is not None else None

    def count(self, plural: str) -> int:
        return int(self.call(lambda: sum(1 for key in self._objects if key[0] == plural)))

    def open_watches(self, *, namespace: str) -> int:
        """How many watches in ``namespace`` the server is serving now."""
        return int(self.call(lambda: sum(w.namespace == namespace for w in self._watchers)))

    # ---------------------------------------------------------------- HTTP entry
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        try:
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                raise StatusError(401, "Unauthorized", "Unauthorized")
            response = await self._route(request, content_type)
        except StatusError as error:
            response = web.json_response(error.status(), status=error.code)
        self.requests.append(
            RequestRecord(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                content_type=content_type,
                status=response.status,
                agent=request.headers.get("User-Agent", ""),
            )
        )
        return response

    async def _route(self, request: web.Request, content_type: str) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if parts == ["version"]:
            return web.json_response(VERSION)
        if parts == ["api"]:
            return web.json_response(
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": request.host}
                    ],
                }
            )
        if parts == ["apis"]:
            return web.json_response(self._group_list())
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        elif parts[:1] == ["apis"] and len(parts) == 2:
            return web.json_response(self._group(parts[1]))
        else:
            raise StatusError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            listing = kinds.resource_list(group, version)
            if listing is None:
                raise StatusError(
                    404, "NotFound", "the server could not find the requested resource"
                )
            return web.json_response(listing)
        target = self._target(group, version, rest)
        return await self._dispatch(request, target, content_type)

    def _group_list(self) -> dict[str, Any]:
        groups = sorted({k.group for k in kinds.KINDS if k.group})
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [self._group(g) for g in groups],
        }

    def _group(self, group: str) -> dict[str, Any]:
        versions = sorted({k.version for k in kinds.KINDS if k.group == group})
        if not versions:
            raise StatusError(404, "NotFound", "the server could not find the requested resource")
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": entries, "preferredVersion": entries[0]}

    def _target(self, group: str, version: str, rest: list[str]) -> _Target:
        def kind_of(plural: str) -> kinds.Kind:
            kind = kinds.find_kind(group, version, plural)
            if kind is None:
                raise StatusError(
                    404, "NotFound", "the server could not find the requested resource"
                )
            return kind

        if len(rest) >= 3 and rest[0] == "namespaces" and kinds.find_kind(group, version, rest[2]):
            kind = kind_of(rest[2])
            name = rest[3] if len(rest) > 3 else None
            sub = rest[4] if len(rest) > 4 else None
            return _Target(kind, rest[1], name, sub)
        kind = kind_of(rest[0])
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if kind.namespaced and name is not None:
            raise StatusError(404, "NotFound", "the server could not find the requested resource")
        return _Target(kind, None, name, sub)

    async def _dispatch(
        self, request: web.Request, target: _Target, content_type: str
    ) -> web.StreamResponse:
        query = request.query
        method = request.method
        if target.subresource and target.subresource not in target.kind.subresources:
            raise StatusError(404, "NotFound", "the server could not find the requested resource")
        if target.name is None:
            if method == "GET" and query.get("watch") in {"1", "true"}:
                return await self._watch(request, target)
            if method == "GET":
                return web.json_response(self._list(target, query))
            if method == "POST":
                body = await self._body(request, content_type)
                return web.json_response(
                    self._create(target, body, manager=self._manager(request)), status=201
                )
            if method == "DELETE":
                return web.json_response(self._delete_collection(target, query))
            raise StatusError(405, "MethodNotAllowed", f"{method} is not allowed")
        if target.subresource == "log":
            return await self._log(request, target)
        if target.subresource == "proxy":
            return await self._proxy(request, target)
        if method == "GET":
            return web.json_response(self._view(self._require(target), target.subresource))
        if method == "DELETE":
            options = await request.read()
            policy = query.get("propagationPolicy")
            if options:
                body = await self._body(request, "application/json")
                policy = body.get("propagationPolicy") or policy
            return web.json_response(self._delete(target, policy=policy))
        if method in {"PUT", "PATCH"}:
            body = await self._body(request, content_type)
            if method == "PATCH" and content_type == APPLY:
                manager = query.get("fieldManager")
                if not manager:
                    raise StatusError(
                        400,
                        "BadRequest",
                        "PATCH /apply requests require a fieldManager query parameter",
                    )
                force = query.get("force") in {"true", "1"}
                result, created = self._apply(target, body, manager=manager, force=force)
                return web.json_response(result, status=201 if created else 200)
            if method == "PATCH" and content_type not in {MERGE, STRATEGIC}:
                raise StatusError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown "
                    f"format - accepted media types include: {MERGE}, {STRATEGIC}, {APPLY}",
                )
            return web.json_response(
                self._update(
                    target,
                    body,
                    manager=self._manager(request),
                    patch=None if method == "PUT" else content_type,
                )
            )
        raise StatusError(405, "MethodNotAllowed", f"{method} is not allowed")

    @staticmethod
    def _manager(request: web.Request) -> str:
        explicit = request.query.get("fieldManager")
        if explicit:
            return explicit
        agent = request.headers.get("User-Agent", "unknown")
        return agent.split("/", 1)[0] or "unknown"

    @staticmethod
    async def _body(request: web.Request, content_type: str) -> dict[str, Any]:
        raw = await request.read()
        try:
            body = _apply_body(raw) if content_type == APPLY else json.loads(raw)
        except (ValueError, yaml.YAMLError) as error:
            raise StatusError(400, "BadRequest", f"error decoding request body: {error}") from error
        if not isinstance(body, dict):
            raise StatusError(400, "BadRequest", "the request body must be an object")
        return body

    # ------------------------------------------------------------------- storage
    def _key(self, target: _Target, name: str | None = None) -> Key:
        return (target.kind.plural, target.namespace or "", name or target.name or "")

    def _not_found(self, kind: kinds.Kind, name: str) -> StatusError:
        details: dict[str, Any] = {"name": name, "kind": kind.plural}
        if kind.group:
            details["group"] = kind.group
        return StatusError(404, "NotFound", f'{kind.qualified} "{name}" not found', details)

    def _require_namespace(self, target: _Target) -> None:
        if (
            target.kind.namespaced
            and ("namespaces", "", target.namespace or "") not in self._objects
        ):
            raise StatusError(
                404,
                "NotFound",
                f'namespaces "{target.namespace}" not found',
                {"name": target.namespace, "kind": "namespaces"},
            )

    def _require(self, target: _Target) -> dict[str, Any]:
        found = self._objects.get(self._key(target))
        if found is None:
            raise self._not_found(target.kind, target.name or "")
        return found

    def _view(self, obj: dict[str, Any], subresource: str | None) -> dict[str, Any]:
        if subresource == "scale":
            meta = obj["metadata"]
            return {
                "kind": "Scale",
                "apiVersion": "autoscaling/v1",
                "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion")},
                "spec": {"replicas": obj["spec"].get("replicas", 0)},
                "status": {"replicas": (obj.get("status") or {}).get("replicas", 0)},
            }
        return obj

    def _commit(self, kind: kinds.Kind, key: Key, event: str, obj: dict[str, Any]) -> None:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        scope = self._by_scope.setdefault((key[0], key[1]), {})
        if event == "DELETED":
            self._objects.pop(key, None)
            scope.pop(key[2], None)
        else:
            self._objects[key] = obj
            scope[key[2]] = obj
        snapshot = copy.deepcopy(obj)
        self._events.append((self._rv, key, event, snapshot))
        if len(self._events) > self._event_history:
            dropped = self._events[: len(self._events) - self._event_history]
            del self._events[: len(dropped)]
            self._oldest_rv = dropped[-1][0]
        for watcher in self._watchers:
            if self._watched(watcher, kind, key, snapshot):
                watcher.queue.put_nowait({"type": event, "object": snapshot})
        if kind.kind == "Pod":
            self._log_changed((key[1], key[2]))

    @staticmethod
    def _watched(watcher: _Watcher, kind: kinds.Kind, key: Key, obj: dict[str, Any]) -> bool:
        return (
            watcher.kind == kind
            and (watcher.namespace is None or watcher.namespace == key[1])
            and watcher.labels(obj)
            and watcher.fields(obj)
        )

    def _matching(self, target: _Target, query: Any) -> list[dict[str, Any]]:
        try:
            labels = selectors.label_matcher(query.get("labelSelector"))
            fields = selectors.field_matcher(query.get("fieldSelector"))
        except selectors.SelectorError as error:
            raise StatusError(400, "BadRequest", str(error)) from error
        # Only the kind's objects in the namespace (or in every namespace) are read, in
        # the order of their keys: a scan of every object made many objects quadratic.
        wanted = target.kind.plural
        scopes = sorted(
            (namespace, objects)
            for (plural, namespace), objects in self._by_scope.items()
            if plural == wanted and (target.namespace is None or namespace == target.namespace)
        )
        return [
            obj
            for _, objects in scopes
            for _, obj in sorted(objects.items())
            if labels(obj) and fields(obj)
        ]

    def _list(self, target: _Target, query: Any) -> dict[str, Any]:
        items = []
        for obj in self._matching(target, query):
            item = {k: v for k, v in obj.items() if k not in {"kind", "apiVersion"}}
            items.append(item)
        return {
            "kind": f"{target.kind.kind}List",
            "apiVersion": target.kind.api_version,
            "metadata": {"resourceVersion": str(self._rv)},
            "items": items,
        }

    # ------------------------------------------------------------------- writes
    def _check_body(self, target: _Target, body: dict[str, Any], name: str | None) -> None:
        kind = target.kind
        if body.get("kind") not in {None, kind.kind} or body.get("apiVersion") not in {
            None,
            kind.api_version,
        }:
            raise StatusError(
                400,
                "BadRequest",
                f"the API version in the data ({body.get('apiVersion')}) does not match the "
                f"expected API version ({kind.api_version}) or kind ({kind.kind})",
            )
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise StatusError(400, "BadRequest", "metadata must be an object")
        if name is not None and meta.get("name") not in {None, name}:
            raise StatusError(
                400,
                "BadRequest",
                f"the name of the object ({meta.get('name')}) does not match the name on the "
                f"URL ({name})",
            )
        if target.namespace is not None and meta.get("namespace") not in {None, target.namespace}:
            raise StatusError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on "
                "the request",
            )

    def _finish(
        self,
        target: _Target,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
    ) -> None:
        """Defaults, validation, generation: what every write goes through before commit."""
        kind = target.kind
        obj["kind"] = kind.kind
        obj["apiVersion"] = kind.api_version
        meta = obj["metadata"]
        if kind.namespaced:
            meta["namespace"] = target.namespace
        cluster_ip = str(ipaddress.IPv4Address(self._next_ip))
        kinds.apply_defaults(kind, obj, cluster_ip=cluster_ip)
        if kind.kind == "Service" and (old is None or old["spec"].get("clusterIP") != cluster_ip):
            self._next_ip += 1
        causes = kinds.validate(kind, obj, old)
        if causes:
            name = meta.get("name", "")
            details: dict[str, Any] = {"name": name, "kind": kind.kind, "causes": causes}
            if kind.group:
                details["group"] = kind.group
            summary = ", ".join(f"{c['field']}: {c['message']}" for c in causes)
            label = f"{kind.kind}.{kind.group}" if kind.group else kind.kind
            raise StatusError(422, "Invalid", f'{label} "{name}" is invalid: {summary}', details)
        if old is None:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = _now()
            if kind.has_generation:
                meta["generation"] = 1
            if kind.kind == "Job":
                kinds.generate_job_selector(obj)
        else:
            for field in ("uid", "creationTimestamp", "generation"):
                if field in old["metadata"]:
                    meta[field] = old["metadata"][field]
            if kind.has_generation and old.get("spec") != obj.get("spec"):
                meta["generation"] = old["metadata"].get("generation", 1) + 1
        if kind.kind == "Deployment" and "status" not in obj:
            obj["status"] = {}

    def _create(self, target: _Target, body: dict[str, Any], *, manager: str) -> dict[str, Any]:
        self._check_body(target, body, None)
        self._require_namespace(target)
        name = body["metadata"].get("name") or ""
        key = self._key(target, name)
        if key in self._objects:
            details = {"name": name, "kind": target.kind.plural}
            if target.kind.group:
                details["group"] = target.kind.group
            raise StatusError(
                409, "AlreadyExists", f'{target.kind.qualified} "{name}" already exists', details
            )
        obj = copy.deepcopy(body)
        obj.pop("status", None)
        obj["metadata"].pop("managedFields", None)
        self._finish(target, obj, None)
        paths = set(fieldsets.leaf_paths(obj))
        obj["metadata"]["managedFields"] = [self._entry(manager, "Update", target, paths, None)]
        self._commit(target.kind, key, "ADDED", obj)
        return obj

    def _entry(
        self,
        manager: str,
        operation: str,
        target: _Target,
        paths: set[fieldsets.Path],
        subresource: str | None,
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "manager": manager,
            "operation": operation,
            "apiVersion": target.kind.api_version,
            "time": _now(),
            "fieldsType": "FieldsV1",
            "fieldsV1": fieldsets.to_fields_v1(paths),
        }
        if subresource:
            entry["subresource"] = subresource
        return entry

    @staticmethod
    def _owned(obj: dict[str, Any]) -> list[tuple[dict[str, Any], set[fieldsets.Path]]]:
        return [
            (entry, fieldsets.from_fields_v1(entry.get("fieldsV1") or {}))
            for entry in obj["metadata"].get("managedFields") or []
        ]

    def _apply(
        self, target: _Target, body: dict[str, Any], *, manager: str, force: bool
    ) -> tuple[dict[str, Any], bool]:
        if target.subresource not in {None, "status"}:
            raise StatusError(405, "MethodNotAllowed", "apply is not supported on this subresource")
        self._check_body(target, body, target.name)
        for field in ("apiVersion", "kind"):
            if not body.get(field):
                raise StatusError(400, "BadRequest", f"{field} must be set in an apply request")
        self._require_namespace(target)
        status_only = target.subresource == "status"
        key = self._key(target)
        old = self._objects.get(key)
        applied = copy.deepcopy(body)
        applied["metadata"].pop("managedFields", None)
        applied_paths = fieldsets.leaf_paths(applied, status=status_only)
        if old is None:
            if status_only:
                raise self._not_found(target.kind, target.name or "")
            base: dict[str, Any] = {"metadata": {"name": target.name}}
            owned: list[tuple[dict[str, Any], set[fieldsets.Path]]] = []
        else:
            base = copy.deepcopy(old)
            owned = self._owned(base)
        merged = fieldsets.merge_applied(base, self._only(applied, status_only))
        conflicts: dict[str, list[str]] = {}
        mine = (manager, "Apply", target.subresource)
        for entry, paths in owned:
            identity = (entry["manager"], entry["operation"], entry.get("subresource"))
            if identity == mine:
                continue
            for path in sorted(paths & set(applied_paths)):
                if path[-1] == ".":
                    continue
                if old is not None and fieldsets.value_at(old, path) != (True, applied_paths[path]):
                    conflicts.setdefault(entry["manager"], []).append(fieldsets.format_path(path))
        if conflicts and not force:
            raise self._conflict(target, conflicts)
        previously_mine: set[fieldsets.Path] = set()
        entries: list[dict[str, Any]] = []
        for entry, paths in owned:
            identity = (entry["manager"], entry["operation"], entry.get("subresource"))
            if identity == mine:
                previously_mine = paths
                continue
            if force:
                taken = {
                    p
                    for p in paths & set(applied_paths)
                    if p[-1] != "." and fieldsets.value_at(base, p) != (True, applied_paths[p])
                }
                paths = paths - taken
            if paths:
                entry = dict(entry, fieldsV1=fieldsets.to_fields_v1(paths))
                entries.append(entry)
        others = set().union(*(fieldsets.from_fields_v1(e["fieldsV1"]) for e in entries))
        for path in sorted(previously_mine - set(applied_paths) - others, key=len, reverse=True):
            fieldsets.remove_path(merged, path)
        entries.append(
            self._entry(manager, "Apply", target, set(applied_paths), target.subresource)
        )
        merged["metadata"]["managedFields"] = entries
        if old is not None and not status_only:
            merged["status"] = copy.deepcopy(old.get("status")) if "status" in old else None
            if merged["status"] is None:
                merged.pop("status")
        self._finish(target, merged, old)
        if old is not None and self._same(old, merged):
            return old, False
        self._commit(target.kind, key, "ADDED" if old is None else "MODIFIED", merged)
        return merged, old is None

    @staticmethod
    def _only(obj: dict[str, Any], status_only: bool) -> dict[str, Any]:
        if status_only:
            return {"status": obj.get("status") or {}}
        return {k: v for k, v in obj.items() if k != "status"}

    @staticmethod
    def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
        """Equal but for ``resourceVersion`` and the managedFields' ``time`` (compared in
        place: a copy of both objects on each write cost more than the write)."""

        def rest(obj: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in obj.items() if k != "metadata"}

        def meta(obj: dict[str, Any]) -> dict[str, Any]:
            return {
                k: v
                for k, v in obj["metadata"].items()
                if k not in {"resourceVersion", "managedFields"}
            }

        def fields(obj: dict[str, Any]) -> Any:
            entries = obj["metadata"].get("managedFields", _ABSENT)
            if not isinstance(entries, list):
                return entries
            return [
                {k: v for k, v in e.items() if k != "time"} if isinstance(e, dict) else e
                for e in entries
            ]

        return rest(old) == rest(new) and meta(old) == meta(new) and fields(old) == fields(new)

    def _conflict(self, target: _Target, conflicts: dict[str, list[str]]) -> StatusError:
        version = target.kind.api_version
        causes = [
            {
                "type": "FieldManagerConflict",
                "message": f'conflict with "{manager}" using {version}',
                "field": field,
            }
            for manager, fields in conflicts.items()
            for field in fields
        ]
        total = len(causes)
        if total == 1:
            message = f"Apply failed with 1 conflict: {causes[0]['message']}: {causes[0]['field']}"
        else:
            lines = []
            for manager, fields in conflicts.items():
                lines.append(f'conflicts with "{manager}" using {version}:')
                lines += [f"- {field}" for field in fields]
            message = f"Apply failed with {total} conflicts: " + "\n".join(lines)
        return StatusError(409, "Conflict", message, {"causes": causes})

    def _update(
        self, target: _Target, body: dict[str, Any], *, manager: str, patch: str | None
    ) -> dict[str, Any]:
        self._require_namespace(target)
        key = self._key(target)
        old = self._require(target)
        status_only = target.subresource == "status"
        if target.subresource == "scale":
            replicas = (body.get("spec") or {}).get("replicas")
            body = {"spec": {"replicas": replicas}}
            target = dataclasses.replace(target, subresource=None)
            patch = patch or MERGE
        if patch is None:
            self._check_body(target, body, target.name)
            sent_rv = body["metadata"].get("resourceVersion")
            if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
                raise StatusError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {target.kind.qualified} "{target.name}": '
                    "the object has been modified; please apply your changes to the latest "
                    "version and try again",
                    {"name": target.name, "kind": target.kind.plural},
                )
            candidate = copy.deepcopy(body)
        else:
            candidate = fieldsets.merge_patch(old, body, strategic=patch == STRATEGIC)
        new = copy.deepcopy(old)
        if status_only:
            new["status"] = candidate.get("status") or {}
        else:
            new = {k: v for k, v in candidate.items() if k != "status"}
            new["metadata"] = dict(candidate.get("metadata") or {})
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
        new["metadata"]["managedFields"] = old["metadata"].get("managedFields") or []
        self._finish(target, new, old)
        before = fieldsets.leaf_paths(old, status=status_only)
        after = fieldsets.leaf_paths(new, status=status_only)
        changed = {p for p, v in after.items() if p not in before or before[p] != v}
        removed = set(before) - set(after)
        entries: list[dict[str, Any]] = []
        mine = (manager, "Update", target.subresource)
        previously: set[fieldsets.Path] = set()
        for entry, paths in self._owned(old):
            identity = (entry["manager"], entry["operation"], entry.get("subresource"))
            if identity == mine:
                previously = paths
                continue
            kept = paths - changed - removed
            if kept:
                entries.append(dict(entry, fieldsV1=fieldsets.to_fields_v1(kept)))
        ours = (previously - removed) | changed
        if ours:
            entries.append(self._entry(manager, "Update", target, ours, target.subresource))
        new["metadata"]["managedFields"] = entries
        if self._same(old, new):
            return old
        self._commit(target.kind, key, "MODIFIED", new)
        return self._view(new, "scale" if target.subresource == "scale" else None)

    def _delete(self, target: _Target, *, policy: str | None = None) -> dict[str, Any]:
        obj = self._require(target)
        if policy not in {None, "Orphan", "Background", "Foreground"}:
            raise StatusError(
                400,
                "BadRequest",
                f'propagationPolicy: Unsupported value: "{policy}": supported values: '
                '"Foreground", "Background", "Orphan"',
            )
        # batch/v1 Jobs orphan their pods unless told otherwise (kubectl says Background)
        orphan = policy == "Orphan" or (policy is None and target.kind.kind == "Job")
        self._remove(target.kind, self._key(target), obj, orphan=orphan)
        if target.kind.kind in {"Service", "Pod"}:
            return obj  # these answer with the deleted object, as the real server does
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {
                "name": target.name,
                "kind": target.kind.plural,
                "uid": obj["metadata"]["uid"],
            },
        }

    def _remove(
        self, kind: kinds.Kind, key: Key, obj: dict[str, Any], *, orphan: bool = False
    ) -> None:
        gone = copy.deepcopy(obj)
        self._commit(kind, key, "DELETED", gone)
        uid = obj["metadata"]["uid"]
        if orphan:
            for inner_key, inner in list(self._objects.items()):
                owners = inner["metadata"].get("ownerReferences") or []
                if inner_key[1] == key[1] and any(o.get("uid") == uid for o in owners):
                    kept = copy.deepcopy(inner)
                    kept["metadata"]["ownerReferences"] = [
                        o for o in owners if o.get("uid") != uid
                    ] or None
                    if kept["metadata"]["ownerReferences"] is None:
                        del kept["metadata"]["ownerReferences"]
                    inner_kind = next(k for k in kinds.KINDS if k.plural == inner_key[0])
                    self._commit(inner_kind, inner_key, "MODIFIED", kept)
            return
        if kind.kind == "Namespace":
            for inner_key, inner in list(self._objects.items()):
                if inner_key[1] == key[2]:
                    inner_kind = next(k for k in kinds.KINDS if k.plural == inner_key[0])
                    self._remove(inner_kind, inner_key, inner)
            return
        for inner_key, inner in list(self._objects.items()):
            owners = inner["metadata"].get("ownerReferences") or []
            if inner_key[1] == key[1] and any(o.get("uid") == uid for o in owners):
                inner_kind = next(k for k in kinds.KINDS if k.plural == inner_key[0])
                self._remove(inner_kind, inner_key, inner)

    def _delete_collection(self, target: _Target, query: Any) -> dict[str, Any]:
        doomed = self._matching(target, query)
        for obj in doomed:
            meta = obj["metadata"]
            self._remove(
                target.kind, (target.kind.plural, meta.get("namespace", ""), meta["name"]), obj
            )
        return {
            "kind": f"{target.kind.kind}List",
            "apiVersion": target.kind.api_version,
            "metadata": {"resourceVersion": str(self._rv)},
            "items": doomed,
        }

    async def _log(self, request: web.Request, target: _Target) -> web.StreamResponse:
        """``pods/{name}/log``: the container's output; with ``follow=true``, streamed
        until the container has terminated or the pod is gone. A container that has not
        started answers 400, as the real server does."""
        self._require_namespace(target)
        pod = self._require(target)
        query = request.query
        names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        container = query.get("container") or (names[0] if len(names) == 1 else None)
        if container is None:
            raise StatusError(
                400,
                "BadRequest",
                f"a container name must be specified for pod {target.name}, choose one of: "
                f"[{' '.join(str(n) for n in names)}]",
            )
        if container not in names:
            raise StatusError(
                400, "BadRequest", f"container {container} is not valid for pod {target.name}"
            )
        state = self._container_state(pod, container)
        if not ({"running", "terminated"} & set(state)):
            reason = (state.get("waiting") or {}).get("reason") or "ContainerCreating"
            raise StatusError(
                400,
                "BadRequest",
                f'container "{container}" in pod "{target.name}" is waiting to start: {reason}',
            )
        key = (target.namespace or "", target.name or "")
        text = self._pod_logs.get(key, "")
        tail = query.get("tailLines")
        if tail is not None:
            text = "".join(text.splitlines(keepends=True)[-int(tail) :]) if int(tail) else ""
        if query.get("follow") not in {"true", "1"}:
            return web.Response(text=text, content_type="text/plain")
        response = web.StreamResponse(status=200)
        response.content_type = "text/plain"
        response.enable_chunked_encoding()
        await response.prepare(request)
        sent = len(self._pod_logs.get(key, "")) - len(text)
        changed = asyncio.Event()
        self._log_followers.setdefault(key, []).append(changed)
        try:
            while True:
                changed.clear()
                current = self._pod_logs.get(key, "")
                if len(current) > sent:
                    await response.write(current[sent:].encode())
                    sent = len(current)
                pod_now = self._objects.get(("pods", *key))
                if pod_now is None or "terminated" in self._container_state(pod_now, container):
                    break
                await changed.wait()
        except ConnectionResetError:
            pass
        finally:
            self._log_followers[key].remove(changed)
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    async def _proxy(self, request: web.Request, target: _Target) -> web.StreamResponse:
        """``pods/{name}[:{port}]/proxy/{path}``: the request passed to the pod, as the API
        server's proxy does; here to the server ``serve_pods`` named for its labels. A pod
        that is not running answers 503, as a pod without an IP does."""
        self._require_namespace(target)
        name, _, port = (target.name or "").partition(":")
        pod = self._require(dataclasses.replace(target, name=name))
        if (pod.get("status") or {}).get("phase") != "Running":
            raise StatusError(503, "ServiceUnavailable", f'pod "{name}" is not running')
        labels = (pod.get("metadata") or {}).get("labels") or {}
        upstream = next(
            (
                url
                for namespace, wanted, url in self._pod_upstreams
                if namespace == target.namespace
                and all(labels.get(k) == v for k, v in wanted.items())
            ),
            None,
        )
        if upstream is None:
            raise StatusError(
                503,
                "ServiceUnavailable",
                f"error trying to reach service: dial tcp {name}:{port or 80}: connect: "
                "connection refused",
            )
        tail = request.path.split("/proxy", 1)[1]
        async with (
            aiohttp.ClientSession() as session,
            session.request(request.method, upstream + tail, params=request.query) as answer,
        ):
            body = await answer.read()
            return web.Response(
                body=body,
                status=answer.status,
                content_type=answer.content_type,
            )

    @staticmethod
    def _container_state(pod: dict[str, Any], container: str) -> dict[str, Any]:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if status.get("name") == container:
                return dict(status.get("state") or {})
        return {}

    # --------------------------------------------------------------------- watch
    async def _watch(self, request: web.Request, target: _Target) -> web.StreamResponse:
        query = request.query
        try:
            labels = selectors.label_matcher(query.get("labelSelector"))
            fields = selectors.field_matcher(query.get("fieldSelector"))
        except selectors.SelectorError as error:
            raise StatusError(400, "BadRequest", str(error)) from error
        timeout = float(query.get("timeoutSeconds") or 1800)
        since_text = query.get("resourceVersion") or "0"
        try:
            since = int(since_text)
        except ValueError as error:
            raise StatusError(
                400, "BadRequest", f"invalid resource version {since_text!r}"
            ) from error
        watcher = _Watcher(target.kind, target.namespace, labels, fields, asyncio.Queue())
        response = web.StreamResponse(status=200)
        response.content_type = "application/json"
        response.enable_chunked_encoding()
        await response.prepare(request)
        forced_gone = bool(
            since
            and self._gone_next
            and (self._gone_namespace is None or self._gone_namespace == target.namespace)
        )
        if forced_gone:
            self._gone_next -= 1
        if since and (forced_gone or since < self._oldest_rv):
            expired = StatusError(
                410,
                "Expired",
                f"too old resource version: {since} ({max(self._oldest_rv, since + 1)})",
            ).status()
            await response.write(json.dumps({"type": "ERROR", "object": expired}).encode() + b"\n")
            await response.write_eof()
            return response
        if since:
            first = bisect.bisect_right(self._events, since, key=lambda entry: entry[0])
            for _rv, key, event, obj in self._events[first:]:
                # the history holds every kind: replay only this watch's own
                if key[0] == target.kind.plural and self._watched(watcher, target.kind, key, obj):
                    watcher.queue.put_nowait({"type": event, "object": obj})
        else:
            for obj in self._matching(target, query):
                watcher.queue.put_nowait({"type": "ADDED", "object": copy.deepcopy(obj)})
        self._watchers.append(watcher)
        deadline = self._loop.time() + timeout
        try:
            while True:
                remaining = deadline - self._loop.time()
                if remaining <= 0:
                    break
                try:
                    event = await asyncio.wait_for(watcher.queue.get(), remaining)
                except TimeoutError:
                    break
                if event is None:
                    break
                await response.write(json.dumps(event).encode() + b"\n")
        except ConnectionResetError:
            pass
        finally:
            self._watchers.remove(watcher)
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response
