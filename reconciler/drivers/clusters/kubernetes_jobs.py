"""Jobs run to their end on Kubernetes: the runner behind the ``k8s_job`` step.

It creates the ``batch/v1`` Job that core rendered, waits (on a watch) until its pod's
container has started, follows the container's log (``pods/log?follow=true``, the way
``kubectl logs -f`` does) handing each line on as it comes, waits for the Job's
``Complete`` or ``Failed`` condition, reads the container's exit code, and deletes the Job
with its pod (``propagationPolicy: Background``; the API's default for Jobs leaves pods
behind). A Job of the same name that carries our labels is adopted, not started again: a
daemon that restarted mid-attempt asks for the same name and picks up the same run. The
Job's ``activeDeadlineSeconds`` is the timeout, enforced by the cluster; the runner waits
a grace longer before it deletes the Job itself. Cancelled, it deletes the Job at once.

Every blocking client call runs on the cluster driver's threads through its ``call``,
which turns failures into ClusterError subclasses without the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import json
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, Protocol, TypeVar

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from reconciler.drivers.clusters import protocol

_T = TypeVar("_T")
CONTAINER_NAME = "job"
JOB_LABEL = "reconciler/job"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "reconciler"
UID_LABEL = "batch.kubernetes.io/controller-uid"
CANNOT_START = frozenset({"InvalidImageName", "ErrImageNeverPull"})
"""Waiting reasons no wait can cure: the Job is removed and the step stalls."""


class Caller(Protocol):
    """The driver's way to run a blocking client call on its threads, errors mapped."""

    def __call__(self, action: str, function: Callable[[], _T]) -> Awaitable[_T]: ...


@dataclasses.dataclass(frozen=True)
class JobTimings:
    """``deadline_grace_s``: how long past the timeout the runner waits for the cluster to
    stop the Job before it deletes it; ``watch_chunk_s``: the length of one watch request
    (a stop is noticed between chunks at the latest)."""

    request_timeout_s: float = 30.0
    watch_chunk_s: int = 10
    log_read_timeout_s: float = 300.0
    deadline_grace_s: float = 30.0


class _Run:
    """What one run's worker threads share with the loop: the stop flag, the open log
    stream (closed to end a blocked read), and how many lines were handed on."""

    def __init__(self, *, loop: asyncio.AbstractEventLoop, on_line: Callable[[str], None]):
        self.loop = loop
        self.on_line = on_line
        self.stop = threading.Event()
        self.lines = 0
        self.owned = False
        """Whether the Job is ours to delete (not when the name is taken by another's)."""
        self._lock = threading.Lock()
        self._stream: Any = None

    def hold(self, stream: Any) -> bool:
        with self._lock:
            if self.stop.is_set():
                return False
            self._stream = stream
            return True

    def release(self) -> None:
        with self._lock:
            self._stream = None

    def end(self) -> None:
        self.stop.set()
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            _interrupt(stream)

    def line(self, text: str) -> None:
        self.lines += 1
        self.loop.call_soon_threadsafe(self.on_line, text)


def _interrupt(stream: Any) -> None:
    """Wake the thread blocked reading ``stream`` by shutting its socket down: closing the
    response here would wait for that thread's read to return first."""
    sock = getattr(getattr(stream, "connection", None), "sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _container(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    for status in statuses:
        if status.get("name") == CONTAINER_NAME:
            return dict(status)
    return {}


def _terminated(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    state = _container(pod).get("state") or {}
    found = state.get("terminated")
    return found if isinstance(found, Mapping) else None


def _started(pod: Mapping[str, Any]) -> bool:
    state = _container(pod).get("state") or {}
    phase = (pod.get("status") or {}).get("phase")
    return bool(state.get("running") or state.get("terminated")) or phase in {
        "Succeeded",
        "Failed",
    }


def _waiting(pod: Mapping[str, Any]) -> tuple[str, str] | None:
    waiting = (_container(pod).get("state") or {}).get("waiting")
    if not isinstance(waiting, Mapping) or not waiting.get("reason"):
        return None
    return str(waiting["reason"]), str(waiting.get("message") or "")


def _finished(job: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The Job's ``Complete`` or ``Failed`` condition once it has one."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in {"Complete", "Failed"} and condition.get("status") == "True":
            return dict(condition)
    return None


def _lines(stream: Any) -> Iterator[str]:
    """The lines of a streamed response as they arrive; a last line without its end too."""
    buffer = bytearray()
    for segment in stream.stream(amt=None, decode_content=False):
        buffer.extend(segment if isinstance(segment, bytes) else str(segment).encode())
        end = buffer.find(b"\n")
        while end != -1:
            yield buffer[:end].decode("utf-8", errors="replace").removesuffix("\r")
            del buffer[: end + 1]
            end = buffer.find(b"\n")
    if buffer:
        yield buffer.decode("utf-8", errors="replace").removesuffix("\r")


class KubernetesJobRunner:
    """Runs Jobs in one namespace of one cluster; see the module docstring."""

    def __init__(
        self,
        *,
        api: client.ApiClient,
        namespace: str,
        call: Caller,
        ensure_namespace: Callable[[], Awaitable[None]],
        timings: JobTimings | None = None,
    ) -> None:
        self._core: Any = client.CoreV1Api(api)
        self._batch: Any = client.BatchV1Api(api)
        self.namespace = namespace
        self._call = call
        self._ensure_namespace = ensure_namespace
        self._timings = timings or JobTimings()

    async def run_to_end(
        self,
        request: protocol.JobRequest,
        *,
        on_line: Callable[[str], None],
        on_note: Callable[[str], None],
    ) -> protocol.JobOutcome:
        if request.manifest is None:
            raise protocol.InvalidJobError(
                f"job {request.name}: the kubernetes runner applies a rendered Job manifest, "
                "and none was given"
            )
        loop = asyncio.get_running_loop()
        run = _Run(loop=loop, on_line=on_line)
        grace = self._timings.deadline_grace_s
        limit = None if request.timeout_s is None else request.timeout_s + grace
        try:
            async with asyncio.timeout(limit):
                return await self._run(request, run, on_note)
        except TimeoutError:
            return protocol.JobOutcome(
                exit_code=None,
                timed_out=True,
                message=f"still running {grace:g}s past its timeout of "
                f"{request.timeout_s or 0:g}s; deleted",
            )
        finally:
            run.end()
            try:
                if run.owned:
                    await self._delete(request.name)
            except protocol.ClusterError as exc:
                on_note(
                    f"Job {self.namespace}/{request.name} could not be deleted ({exc}); "
                    "the cluster removes it an hour after it finished"
                )

    async def _run(
        self, request: protocol.JobRequest, run: _Run, on_note: Callable[[str], None]
    ) -> protocol.JobOutcome:
        await self._ensure_namespace()
        run.owned = True  # a create whose answer is lost may still have made it
        try:
            job, adopted = await self._call(
                f"create Job {self.namespace}/{request.name}", lambda: self._create(request)
            )
        except protocol.JobConflictError:
            run.owned = False
            raise
        where = f"Job {self.namespace}/{request.name}"
        on_note(f"{where}: adopted, started earlier" if adopted else f"{where}: created")
        uid = str(job["metadata"]["uid"])

        def note(text: str) -> None:
            run.loop.call_soon_threadsafe(on_note, text)

        pod = await self._call(
            f"wait for the pod of {where}", lambda: self._pod(request.name, uid, run, note)
        )
        if pod is not None:
            name = str(pod["metadata"]["name"])
            note(f"{where}: pod {name} started")
            await self._call(f"follow the log of pod {name}", lambda: self._follow(name, run))
        ended = await self._call(f"wait for {where} to end", lambda: self._ended(request.name, run))
        return await self._call(f"read the end of {where}", lambda: self._outcome(uid, ended))

    # ------------------------------------------------------------ worker threads
    def _json(self, response: Any) -> dict[str, Any]:
        body = json.loads(response.data)
        if not isinstance(body, dict):
            raise protocol.ClusterError("the API server answered with a non-object body")
        return body

    def _create(self, request: protocol.JobRequest) -> tuple[dict[str, Any], bool]:
        assert request.manifest is not None
        body = copy.deepcopy(dict(request.manifest))
        body["metadata"] = {**body.get("metadata", {}), "namespace": self.namespace}
        try:
            created = self._batch.create_namespaced_job(
                self.namespace,
                body,
                _request_timeout=self._timings.request_timeout_s,
                _preload_content=False,
            )
            return self._json(created), False
        except ApiException as error:
            if error.status != 409:
                raise
        found = self._json(
            self._batch.read_namespaced_job(
                request.name,
                self.namespace,
                _request_timeout=self._timings.request_timeout_s,
                _preload_content=False,
            )
        )
        labels = found["metadata"].get("labels") or {}
        ours = labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE
        if not ours or labels.get(JOB_LABEL) != request.name:
            raise protocol.JobConflictError(
                f"Job {self.namespace}/{request.name} exists and was not started by reconciler"
            )
        return found, True

    def _watch(
        self, lister: Callable[..., Any], run: _Run, **selection: Any
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """A list (``("LIST", item)`` each, then ``("SYNCED", {})``), then the changes
        after it, until stopped; an ended watch or one answered 410 Gone lists again."""
        timeout = self._timings.request_timeout_s
        while not run.stop.is_set():
            listing = self._json(
                lister(
                    self.namespace, _request_timeout=timeout, _preload_content=False, **selection
                )
            )
            for item in listing.get("items") or []:
                yield "LIST", dict(item)
            yield "SYNCED", {}
            chunk = self._timings.watch_chunk_s
            stream = watch.Watch(return_type="object").stream(  # type: ignore[no-untyped-call]
                lister,
                self.namespace,
                resource_version=str(listing["metadata"]["resourceVersion"]),
                timeout_seconds=chunk,
                _request_timeout=chunk + timeout,
                **selection,
            )
            try:
                for event in stream:
                    if run.stop.is_set():
                        return
                    yield str(event["type"]), dict(event["raw_object"])
            except ApiException as error:
                if error.status != 410:
                    raise

    def _pod(
        self, name: str, uid: str, run: _Run, note: Callable[[str], None]
    ) -> dict[str, Any] | None:
        """The Job's pod once its container has started (None: the Job ended first)."""
        said: tuple[str, str] | None = None
        selector = f"{UID_LABEL}={uid}"
        for event, pod in self._watch(self._core.list_namespaced_pod, run, label_selector=selector):
            if event in {"SYNCED", "DELETED"}:
                if self._job_ended(name, uid):
                    return None
                continue
            if _started(pod):
                return pod
            waiting = _waiting(pod)
            if waiting is not None and waiting != said:
                said = waiting
                reason, message = waiting
                note(f"pod {pod['metadata']['name']} waiting: {reason}: {message}".rstrip(": "))
                if reason in CANNOT_START:
                    raise protocol.InvalidJobError(
                        f"the job's container cannot start: {reason}: {message}".rstrip(": ")
                    )
        return None

    def _job_ended(self, name: str, uid: str) -> bool:
        """Whether the Job ``uid`` has ended, or is gone."""
        try:
            job = self._json(
                self._batch.read_namespaced_job(
                    name,
                    self.namespace,
                    _request_timeout=self._timings.request_timeout_s,
                    _preload_content=False,
                )
            )
        except ApiException as error:
            if error.status == 404:
                return True
            raise
        return job["metadata"].get("uid") != uid or _finished(job) is not None

    def _follow(self, pod: str, run: _Run) -> None:
        """Hand on every line of the container's log until the container has ended; a
        stream that breaks off earlier is opened again, skipping the lines seen."""
        while not run.stop.is_set():
            seen = run.lines
            try:
                stream = self._core.read_namespaced_pod_log(
                    pod,
                    self.namespace,
                    container=CONTAINER_NAME,
                    follow=True,
                    _preload_content=False,
                    _request_timeout=(
                        self._timings.request_timeout_s,
                        self._timings.log_read_timeout_s,
                    ),
                )
            except ApiException as error:
                if error.status == 404:  # the pod is gone: the Job's status says why
                    return
                raise
            if not run.hold(stream):
                stream.close()
                return
            skip = seen
            try:
                for text in _lines(stream):
                    if skip:
                        skip -= 1
                        continue
                    run.line(text)
            except Exception:
                if run.stop.is_set():
                    return
                # a broken stream: see below whether the container is still running
            finally:
                run.release()
                with contextlib.suppress(Exception):
                    stream.close()  # this thread's own read is over: no wait here
            if run.stop.is_set():
                return
            try:
                current = self._json(
                    self._core.read_namespaced_pod(
                        pod,
                        self.namespace,
                        _request_timeout=self._timings.request_timeout_s,
                        _preload_content=False,
                    )
                )
            except ApiException as error:
                if error.status == 404:
                    return
                raise
            if _terminated(current) is not None or (current.get("status") or {}).get("phase") in {
                "Succeeded",
                "Failed",
            }:
                return

    def _ended(self, name: str, run: _Run) -> Mapping[str, Any]:
        """The Job's Complete or Failed condition (empty: it is gone, or the run stopped)."""
        listed = False
        for event, job in self._watch(
            self._batch.list_namespaced_job, run, field_selector=f"metadata.name={name}"
        ):
            if event == "SYNCED":
                if not listed:
                    return {}
                listed = False
                continue
            if event == "DELETED":
                return {}
            listed = listed or event == "LIST"
            found = _finished(job)
            if found is not None:
                return found
        return {}

    def _outcome(self, uid: str, ended: Mapping[str, Any]) -> protocol.JobOutcome:
        listing = self._json(
            self._core.list_namespaced_pod(
                self.namespace,
                label_selector=f"{UID_LABEL}={uid}",
                _request_timeout=self._timings.request_timeout_s,
                _preload_content=False,
            )
        )
        pods = sorted(
            listing.get("items") or [],
            key=lambda pod: str(pod["metadata"].get("creationTimestamp") or ""),
        )
        terminated = _terminated(pods[-1]) if pods else None
        code = terminated.get("exitCode") if terminated is not None else None
        exit_code = int(code) if isinstance(code, int) else None
        reason = str(ended.get("reason") or "")
        message = f"{reason}: {ended.get('message') or ''}".strip(": ") if reason else ""
        if not ended:
            message = "the Job was deleted before it ended"
        if terminated is not None and terminated.get("reason") not in {None, "Completed", "Error"}:
            message = f"{message}; container {terminated.get('reason')}".strip("; ")
        return protocol.JobOutcome(
            exit_code=exit_code, timed_out=reason == "DeadlineExceeded", message=message
        )

    async def _delete(self, name: str) -> None:
        def delete() -> None:
            try:
                self._batch.delete_namespaced_job(
                    name,
                    self.namespace,
                    propagation_policy="Background",
                    _request_timeout=self._timings.request_timeout_s,
                )
            except ApiException as error:
                if error.status != 404:
                    raise

        await self._call(f"delete Job {self.namespace}/{name}", delete)
