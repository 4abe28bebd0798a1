"""One watch of a namespace's managed Deployments, shared by every rollout waiting there.

A rollout waits until its Deployment's rollout is over (complete or failed). With a watch
of its own, each rollout made a watch request on a connection it then had to close, and
held a thread for its wait; 1,000 rollouts made 1,000 of them. Here one thread lists the
namespace's Deployments that carry our managed-by label, watches them from that list's
resourceVersion, and hands each object to the rollouts waiting on its name. A watch that
ends or answers 410 Gone re-lists and goes on, as the per-rollout watch did.

A rollout registers before its apply and then gives the object its apply answered: only
an object of at least that generation settles it, so a state of an earlier spec is never
taken for the new one, and an event that came before the apply's answer is not lost.
A failure of the watch itself (the server refuses it, cannot be reached) is handed to
every rollout waiting at that moment; the thread backs off and tries again. ``close``
(the driver replaced by one for a changed kubeconfig, or shut down) ends every wait at
once with ``WatchClosed``; no event that reaches a closed watch is reported, and its
thread ends at its next event or backoff, within one watch chunk.

The same watch reports drift: every event of an object no rollout is waiting on (nobody
of ours is changing it) goes to ``on_event``, which compares it with what was applied.
``start`` keeps the watch running with no rollout, so drift is seen as it happens, not
at the next resync.

An out-of-band change can land between a rollout's read and its apply: the apply then
overwrites it before anyone looked. The watch still saw that state, and knows it came
before the apply (an older generation of the same object): it goes to ``on_event`` as
*re-applied*. So does an event the watch delivers only after the apply answered (the
answer alone can settle a rollout): it shows a state our apply already replaced, not
the object as it is now.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes import watch
from kubernetes.client.exceptions import ApiException

Settled = Callable[[Mapping[str, Any]], bool]
_log = logging.getLogger("reconciler.drivers.kubernetes")


def _generation(obj: Mapping[str, Any]) -> int:
    return int((obj.get("metadata") or {}).get("generation") or 0)


def _uid(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


class WatchClosed(Exception):
    """A rollout's wait ended because its watch was closed, not because of its Deployment."""


class Waiter:
    """One rollout's wait: ``future`` ends with the settling Deployment (or the error)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.future: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
        self.generation: int | None = None
        self.latest: dict[str, Any] | None = None
        """The Deployment as last seen (None: not seen, or deleted)."""
        self.early: list[dict[str, Any]] = []
        """What the watch delivered before the apply answered: a state older than the
        answer's was overwritten by the apply."""


class DeploymentWatch:
    """``expect`` a name, ``applied`` the apply's answer, then wait on the waiter's future;
    ``forget`` it when done. ``close`` ends the thread."""

    def __init__(
        self,
        *,
        lister: Callable[..., Any],
        namespace: str,
        label_selector: str,
        settled: Settled,
        chunk_s: int,
        request_timeout_s: float,
    ) -> None:
        self._lister = lister
        self._namespace = namespace
        self._selector = label_selector
        self._settled = settled
        self._chunk_s = chunk_s
        self._timeout = request_timeout_s
        self._lock = threading.Lock()
        self._waiters: dict[str, list[Waiter]] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed: WatchClosed | None = None
        self.relists = 0
        """How often the watch had to re-list (410 Gone or an ended watch)."""
        self._applied: dict[str, tuple[str, int]] = {}
        """By name, the uid and generation our last apply answered."""
        self.on_event: Callable[[str, dict[str, Any] | None, bool], None] | None = None
        """Called with each object no rollout waits on (None when it was deleted), and
        with each state an apply of ours replaced; the flag says which (True: replaced).
        On the watch thread, or on the thread that gave ``applied`` the apply's answer."""
        self.on_any: Callable[[str, dict[str, Any] | None, bool], None] | None = None
        """Called (on the watch thread) with every object seen, listed or watched, and
        whether that was quiet: a listing, or an object a rollout of ours waits on."""

    # ---------------------------------------------------------------- rollouts' side
    def start(self) -> None:
        """Run the watch now, whether or not a rollout waits (drift is seen at once)."""
        with self._lock:
            self._start_locked()

    def _start_locked(self) -> None:
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(
                target=self._run, name=f"k8s-watch-{self._namespace}", daemon=True
            )
            self._thread.start()

    def expect(self, name: str) -> Waiter:
        """Register a wait for Deployment ``name``; call before applying it."""
        waiter = Waiter(name)
        with self._lock:
            if self._closed is not None:
                waiter.future.set_exception(WatchClosed(str(self._closed)))
                return waiter
            self._waiters.setdefault(name, []).append(waiter)
            self._start_locked()
        return waiter

    def applied(self, waiter: Waiter, obj: dict[str, Any]) -> None:
        """The Deployment as the apply answered: its generation is the one to wait for."""
        with self._lock:
            if self._stop.is_set():
                return  # closed: the waiter has failed already
            waiter.generation = _generation(obj)
            self._applied[waiter.name] = (_uid(obj), waiter.generation)
            seen = waiter.latest
            if seen is None or _generation(seen) < waiter.generation:
                waiter.latest = seen = obj
            self._settle(waiter, seen)
            replaced = [early for early in waiter.early if self._replaced(waiter.name, early)]
            waiter.early.clear()
        for early in replaced:
            self._report(waiter.name, early, replaced=True)

    def forget(self, waiter: Waiter) -> None:
        with self._lock:
            waiting = self._waiters.get(waiter.name, [])
            if waiter in waiting:
                waiting.remove(waiter)
            if not waiting:
                self._waiters.pop(waiter.name, None)

    def close(self, reason: str = "the driver was closed") -> None:
        """Stop the watch: every rollout waiting on it fails with ``WatchClosed(reason)``,
        a later ``expect`` fails at once, and no event that arrives after this is reported."""
        error = WatchClosed(f"the watch of namespace {self._namespace} ended: {reason}")
        with self._lock:
            if self._closed is None:
                self._closed = error
            self._stop.set()
        self._fail(error)

    # ------------------------------------------------------------------ the thread
    def _settle(self, waiter: Waiter, obj: dict[str, Any]) -> None:
        if (
            waiter.generation is not None
            and not waiter.future.done()
            and _generation(obj) >= waiter.generation
            and self._settled(obj)
        ):
            waiter.future.set_result(obj)

    def _replaced(self, name: str, obj: Mapping[str, Any]) -> bool:
        """Whether ``obj`` is an older state of the object our last apply of ``name``
        answered (so that apply overwrote it)."""
        uid, generation = self._applied.get(name, ("", 0))
        return bool(uid) and _uid(obj) == uid and _generation(obj) < generation

    def _seen(self, name: str, obj: dict[str, Any] | None, *, listed: bool = False) -> None:
        with self._lock:
            if self._stop.is_set():
                return  # closed: a stale connection's events go nowhere
            if obj is None:
                self._applied.pop(name, None)
            replaced = obj is not None and not listed and self._replaced(name, obj)
            waiting = self._waiters.get(name, ())
            for waiter in waiting:
                if replaced:
                    continue
                waiter.latest = obj
                if obj is not None:
                    if waiter.generation is None and not listed:
                        waiter.early.append(obj)
                    self._settle(waiter, obj)
            report = replaced or (not waiting and not listed)
            every = self.on_any
            quiet = bool(waiting) or listed
        if every is not None:
            try:
                every(name, obj, quiet)
            except Exception:  # a listener's bug must not end the watch
                _log.exception("watch listener failed for %s", name)
        if report:
            self._report(name, obj, replaced=replaced)

    def _report(self, name: str, obj: dict[str, Any] | None, *, replaced: bool) -> None:
        report = self.on_event
        if report is None:
            return
        try:
            report(name, obj, replaced)
        except Exception:  # a listener's bug must not end the watch
            _log.exception("drift listener failed for %s", name)

    def _fail(self, error: Exception) -> None:
        with self._lock:
            for waiting in self._waiters.values():
                for waiter in waiting:
                    if not waiter.future.done():
                        waiter.future.set_exception(error)

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                self._list_and_watch()
                backoff = 0.5
            except Exception as error:  # handed to the waiters, which raise it
                self._fail(error)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def _list_and_watch(self) -> None:
        listing = json.loads(
            self._lister(
                self._namespace,
                label_selector=self._selector,
                _request_timeout=self._timeout,
                _preload_content=False,
            ).data
        )
        for item in listing.get("items") or []:
            self._seen(str(item["metadata"]["name"]), item, listed=True)
        # Events as plain JSON: the client's model objects are not needed here.
        stream = watch.Watch(return_type="object").stream(  # type: ignore[no-untyped-call]
            self._lister,
            self._namespace,
            label_selector=self._selector,
            resource_version=listing["metadata"]["resourceVersion"],
            timeout_seconds=self._chunk_s,
            _request_timeout=self._chunk_s + self._timeout,
        )
        try:
            for event in stream:
                if self._stop.is_set():
                    return
                obj = event.get("raw_object") or {}
                name = (obj.get("metadata") or {}).get("name")
                if event["type"] in {"ADDED", "MODIFIED"} and name:
                    self._seen(str(name), obj)
                elif event["type"] == "DELETED" and name:
                    self._seen(str(name), None)
        except ApiException as error:
            if error.status != 410:
                raise
        self.relists += 1
