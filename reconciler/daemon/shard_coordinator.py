"""A sharded replica: the lease loop wired to the reconciler, the executor and the status.

With ``sharding:`` in the config the daemon is one replica of several (a StatefulSet).
This module decides, for the daemon's parts, what is this replica's to do:

- the reconciler reconciles an object only while this replica works on its shard (a
  placed object: Cluster, Deployment, Workflow), or while an object of such a shard uses
  it (a shared one: its Model, template, Credential, Project: each replica keeps its own
  local copy); everything else is settled without a look;
- the status publisher writes only the status files of the shards held (so several
  replicas share one status branch without overwriting each other), and the holder of
  shard 0 writes ``source.yaml``;
- the executor starts a step only under a lease that still counts, and records that
  lease (``replica@PREFIX-shard-N#transitions``) with the step: the fencing token.

And it carries out what the lease loop (reconciler.daemon.sharding) decides:

- *gain*: read the shard's handover (reconciler.daemon.shard_handover); unless this
  replica's own store is the freshest (it held the shard last, under the transitions
  the handover names), take it in; save the handover under the new lease (claiming it);
  then resume the shard's unfinished chains and queue its objects;
- *lose* (a lease not renewed within the renew deadline, or taken): stop the shard's
  running steps at once, before the lease can lapse; whoever takes it continues from its
  handover, running the interrupted steps again;
- *release* (the shard moves to another replica, or this one stops cleanly): no new step
  starts, running steps get ``handover_grace`` to end (a step boundary), then the
  handover is saved and the lease given back: the next holder continues with no step
  lost or run twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import hashlib
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from reconciler.core.shards import PLACED_KINDS
from reconciler.daemon import shard_map
from reconciler.daemon.config import Config, ShardingConfig
from reconciler.daemon.lease_elector import LeaseElector, LeaseTiming
from reconciler.daemon.object_memo import ObjectMemo
from reconciler.daemon.reconcile import Reconciler
from reconciler.daemon.shard_handover import (
    Handover,
    HandoverError,
    HandoverStore,
    adopt,
    assemble,
    export_entry,
    fragment,
)
from reconciler.daemon.sharding import ShardManager, ShardPlacement, ShardState
from reconciler.drivers.lease_records import LeaseConflict, LeaseError, in_cluster_namespace

if TYPE_CHECKING:
    from reconciler.drivers.leases import CoordinationApi
from reconciler.drivers.secrets import SecretNotFound, SecretResolver, SecretUnreadable
from reconciler.engine.executor import Executor
from reconciler.engine.records import ObjectRecord
from reconciler.engine.store import Store

log = logging.getLogger("reconciler.sharding")
_T = TypeVar("_T")

TENURE_KEY = "sharding/tenure/{shard}"
"""Store value: the lease transitions under which this replica last held a shard."""


class ShardingSetupError(Exception):
    """The sharding section cannot be used (no namespace, no credentials)."""


def identity_of(config: ShardingConfig) -> str:
    """This replica's name: configured, else ``$POD_NAME``, else the host name."""
    return config.identity or os.environ.get("POD_NAME") or socket.gethostname()


def advertise_url_of(config: Config) -> str | None:
    """Where other replicas reach this one's API: configured, else ``$POD_IP``."""
    if config.sharding.advertise_url:
        return config.sharding.advertise_url.rstrip("/")
    pod_ip = os.environ.get("POD_IP")
    if pod_ip and "api" in config.model_fields_set:
        host = f"[{pod_ip}]" if ":" in pod_ip else pod_ip
        return f"http://{host}:{config.api.port}"
    return None


class ShardCoordinator:
    """One replica's sharding; see the module docstring. ``attach`` it to the daemon's
    parts, ``start()`` it, ``await close()`` it after the executor stopped."""

    def __init__(
        self,
        *,
        sharding: ShardingConfig,
        api: CoordinationApi,
        identity: str,
        advertise_url: str | None,
    ) -> None:
        self.config = sharding
        timing = LeaseTiming(
            lease_duration_s=sharding.seconds("lease_duration"),
            renew_deadline_s=sharding.seconds("renew_deadline"),
            retry_period_s=sharding.seconds("retry_period"),
        )
        self.elector = LeaseElector(api=api, identity=identity, timing=timing)
        self.manager = ShardManager(
            elector=self.elector,
            shard_count=sharding.shards,
            prefix=sharding.lease_prefix,
            advertise_url=advertise_url,
            events=self,
        )
        self.handovers = HandoverStore(api, prefix=sharding.lease_prefix)
        self.placement: ShardPlacement | None = None
        self._reconciler: Reconciler | None = None
        self._executor: Executor | None = None
        self._store: Store | None = None
        self._reader: Store | None = None
        self._versions: dict[int, str | None] = {}
        self._written: dict[int, str] = {}
        self._dirty: set[int] = set()
        self._dirty_keys: dict[int, set[str]] = {}
        self._fragments: dict[int, dict[str, bytes]] = {}
        """Per shard, each object's part of the handover as last exported: a checkpoint
        exports again only what moved since (a shard of 2,500 Deployments costs a few
        milliseconds per checkpoint, not half a second)."""
        self._locks: dict[int, asyncio.Lock] = {}
        self._needed: tuple[object, frozenset[int], frozenset[str]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.takeovers: list[dict[str, Any]] = []
        """What each gain took in (for the log and the API)."""

    @classmethod
    def from_config(cls, config: Config, *, resolver: SecretResolver) -> ShardCoordinator:
        sharding = config.sharding
        kubeconfig = context = None
        if sharding.kubeconfig is not None:
            secret = sharding.kubeconfig.secret or ""
            try:
                kubeconfig = resolver.resolve(secret)
            except (SecretNotFound, SecretUnreadable) as exc:
                raise ShardingSetupError(f"sharding.kubeconfig: {exc}") from None
            context = sharding.kubeconfig.context
        namespace = sharding.namespace or in_cluster_namespace()
        if namespace is None:
            raise ShardingSetupError(
                "sharding.namespace is not set and this is not a pod (no service account "
                "namespace file): set sharding.namespace"
            )
        # A call may take half the renew deadline at most: a replica cut off from the API
        # server notices within the deadline, and its deadline watch acts on time anyway.
        timeout = max(min(5.0, sharding.seconds("renew_deadline") / 2), 0.5)
        from reconciler.drivers.leases import CoordinationApi  # the client, only to shard

        try:
            api = CoordinationApi(
                namespace=namespace, kubeconfig=kubeconfig, context=context, timeout_s=timeout
            )
        except LeaseError as exc:
            raise ShardingSetupError(str(exc)) from None
        return cls(
            sharding=sharding,
            api=api,
            identity=identity_of(sharding),
            advertise_url=advertise_url_of(config),
        )

    @property
    def identity(self) -> str:
        return self.elector.identity

    # -- wiring --------------------------------------------------------------------------

    def attach(self, *, reconciler: Reconciler, executor: Executor, store: Store) -> None:
        self._reconciler, self._executor, self._store = reconciler, executor, store
        book = reconciler.book
        self.placement = ShardPlacement(
            shard_count=self.config.shards, desired=lambda: book.desired, memos=lambda: book.memos
        )
        reconciler.owns = self.reconciles
        reconciler.status.publishes = self.publishes
        reconciler.status.publishes_source = lambda: 0 in self.manager.active()
        reconciler.status.listeners.append(self._touched)
        if reconciler.workflow_hooks is not None:
            reconciler.workflow_hooks.scheduler.owns = self.reconciles
        self._reader = Store(store.path)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.manager.run(), name="shard leases"),
            asyncio.create_task(self._checkpoints(), name="shard handovers"),
        ]

    # -- what is this replica's ----------------------------------------------------------

    def shard_of(self, key: str) -> int:
        assert self.placement is not None
        return self.placement.shard_of(key)

    def reconciles(self, key: str) -> bool:
        """Whether this replica reconciles ``key`` now (see the module docstring)."""
        reconciler = self._reconciler
        if reconciler is None or self.placement is None:
            return False
        active = self.manager.active()
        needed = self._needed_keys(active)  # once per revision: queues what became needed
        if self.placement.shard_of(key) in active:
            return True
        if key.split("/", 1)[0] in PLACED_KINDS:
            return False
        book = reconciler.book
        if key not in book.desired:
            return key in book.memos  # a local copy of something gone: clean it up here
        return key in needed

    def publishes(self, key: str) -> bool:
        return self.placement is not None and self.placement.shard_of(key) in self.manager.active()

    def token(self, object_key: str) -> str | None:
        """The executor's fence: the shard lease for placed objects, a local token for a
        shared object this replica keeps a copy of, else None."""
        if self.placement is None:
            return None
        if object_key.split("/", 1)[0] in PLACED_KINDS:
            return self.manager.token(self.placement.shard_of(object_key))
        return f"{self.identity}@local" if self.reconciles(object_key) else None

    def _needed_keys(self, active: frozenset[int]) -> frozenset[str]:
        """What the placed objects of the active shards use, transitively."""
        assert self._reconciler is not None and self.placement is not None
        desired = self._reconciler.book.desired
        cached = self._needed
        if cached is not None and cached[0] is desired and cached[1] == active:
            return cached[2]
        found: set[str] = set()
        stack = [
            ref
            for key, wanted in desired.items()
            if wanted.state.kind in PLACED_KINDS and self.placement.shard_of(key) in active
            for ref in wanted.refs
        ]
        while stack:
            ref = stack.pop()
            if ref in found:
                continue
            found.add(ref)
            target = desired.get(ref)
            if target is not None:
                stack.extend(target.refs)
        needed = frozenset(found)
        before = cached[2] if cached is not None else frozenset()
        self._needed = (desired, active, needed)
        added = needed - before
        if added:  # newly used here (a Deployment of a shard held needs its Model): look
            asyncio.get_running_loop().call_soon(self._reconciler.requeue, added)
        return needed

    def placed_keys(self, shard: int) -> list[str]:
        """The placed objects of ``shard`` this replica knows (in Git, or remembered)."""
        assert self.placement is not None
        return [
            key
            for key in self.placement.known_keys()
            if key.split("/", 1)[0] in PLACED_KINDS and self.placement.shard_of(key) == shard
        ]

    def _touched(self, key: str) -> None:
        if self.placement is not None and key.split("/", 1)[0] in PLACED_KINDS:
            shard = self.placement.shard_of(key)
            self._dirty.add(shard)
            self._dirty_keys.setdefault(shard, set()).add(key)

    # -- the lease loop's events ---------------------------------------------------------

    def _lock(self, shard: int) -> asyncio.Lock:
        return self._locks.setdefault(shard, asyncio.Lock())

    async def gain(self, shard: int, transitions: int) -> bool:
        reconciler, store = self._reconciler, self._store
        if reconciler is None or store is None:
            return False
        async with self._lock(shard):
            try:
                handover, version = await self._io(lambda: self.handovers.read(shard))
            except (LeaseError, HandoverError) as exc:
                log.warning(
                    "cannot read the handover of shard %d; trying again",
                    shard,
                    extra={"shard": shard, "error": str(exc)},
                )
                return False
            tenure = store.get_value(TENURE_KEY.format(shard=shard))
            mine = (
                isinstance(tenure, dict)
                and handover is not None
                and handover.holder == self.identity
                and handover.transitions == tenure.get("transitions")
            )
            self._fragments.pop(shard, None)  # exported again from the store as it is now
            if handover is not None and not mine:
                self._take_in(shard, handover)
            store.set_value(
                TENURE_KEY.format(shard=shard),
                {"holder": self.identity, "transitions": transitions},
            )
            claim, digest, _ = await self._collect(shard, transitions)
            try:
                self._versions[shard] = await self._io(
                    lambda: self.handovers.write(
                        claim,
                        shard=shard,
                        holder=self.identity,
                        transitions=transitions,
                        expect=version,
                    )
                )
            except LeaseError as exc:
                log.warning(
                    "cannot claim the handover of shard %d; trying again",
                    shard,
                    extra={"shard": shard, "error": str(exc)},
                )
                return False
            self._written[shard] = digest
            self._dirty.discard(shard)
        asyncio.get_running_loop().call_soon(self._activated, shard)
        return True

    def _take_in(self, shard: int, handover: Handover) -> None:
        reconciler, store = self._reconciler, self._store
        assert reconciler is not None and store is not None
        began = time.perf_counter()
        if handover.shards != self.config.shards:
            handover = self._regroup(shard, handover)
        local = [key for key in self.placed_keys(shard) if key in reconciler.book.memos]
        rows = adopt(store, handover, local_keys=local)
        memos = [
            ObjectMemo.from_record(
                ObjectRecord(
                    kind=row["kind"],
                    name=row["name"],
                    spec_hash=row.get("spec_hash"),
                    revision=row.get("revision"),
                    phase=row.get("phase"),
                    status=row.get("status") or {},
                    updated_at=_parse_time(row.get("updated_at")),
                )
            )
            for row in rows
        ]
        reconciler.book.adopt(memos, drop=set(local) - handover.object_keys())
        unfinished = sum(
            1 for row in handover.executions if row.get("status") in ("queued", "running")
        )
        taken = {
            "shard": shard,
            "from": handover.holder,
            "transitions": handover.transitions,
            "objects": len(rows),
            "executions": len(handover.executions),
            "unfinished": unfinished,
            "ms": round((time.perf_counter() - began) * 1000, 1),
        }
        self.takeovers.append(taken)
        log.info("took shard %d over from %s", shard, handover.holder, extra=taken)

    def _regroup(self, shard: int, handover: Handover) -> Handover:
        """A handover written under another shard count: only its objects that are in
        ``shard`` now are taken (the others' new holders start them afresh)."""
        assert self.placement is not None
        mine = {key for key in handover.object_keys() if self.placement.shard_of(key) == shard}
        log.warning(
            "shard %d: its handover was written for %s shards, this replica has %d; "
            "taking %d of its %d objects",
            shard,
            handover.shards,
            self.config.shards,
            len(mine),
            len(handover.objects),
            extra={"shard": shard},
        )
        return dataclasses.replace(
            handover,
            objects=[r for r in handover.objects if f"{r['kind']}/{r['name']}" in mine],
            executions=[r for r in handover.executions if f"{r['kind']}/{r['name']}" in mine],
        )

    def counted_again(self, shard: int) -> None:
        asyncio.get_running_loop().call_soon(self._activated, shard)

    def _activated(self, shard: int) -> None:
        """The shard is active: resume its chains, look at its objects again."""
        reconciler, executor = self._reconciler, self._executor
        if reconciler is None or executor is None or shard not in self.manager.active():
            return
        assert self.placement is not None
        keys = [k for k in self.placement.known_keys() if self.placement.shard_of(k) == shard]
        for key in keys:
            reconciler.status.mark(key)
        reconciler.requeue([*keys, *self._needed_keys(self.manager.active())])
        task = asyncio.get_running_loop().create_task(executor.resume())
        task.add_done_callback(_log_failure)
        log.info(
            "working on shard %d",
            shard,
            extra={"shard": shard, "objects": len(keys), "token": self.manager.token(shard)},
        )

    async def lose(self, shard: int) -> None:
        executor = self._executor
        self._versions.pop(shard, None)
        self._written.pop(shard, None)
        if executor is None or self.placement is None:
            return
        tasks = executor.pause(self.placed_keys(shard), now=True)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def release(self, shard: int) -> bool:
        executor = self._executor
        if executor is None or self.placement is None:
            return True
        async with self._lock(shard):
            keys = self.placed_keys(shard)
            tasks = executor.pause(keys, now=False)
            log.info(
                "handing shard %d over: %d chains in a step end first",
                shard,
                len(tasks),
                extra={"shard": shard, "running": len(tasks)},
            )
            if tasks:
                _, late = await asyncio.wait(tasks, timeout=self.config.seconds("handover_grace"))
                if late:
                    log.warning(
                        "shard %d: %d chains still in a step after the handover grace; "
                        "stopping them (the next holder runs those steps again)",
                        shard,
                        len(late),
                        extra={"shard": shard},
                    )
                    executor.pause(keys, now=True)
                    await asyncio.gather(*late, return_exceptions=True)
            held = self.manager.held.get(shard)
            transitions = held.transitions if held is not None else 0
            final, _, count = await self._collect(shard, transitions)
            try:
                await self._io(
                    lambda: self.handovers.write(
                        final,
                        shard=shard,
                        holder=self.identity,
                        transitions=transitions,
                        expect=self._versions.get(shard),
                    )
                )
            except LeaseConflict as exc:
                log.error(
                    "shard %d: another replica wrote its handover; not ours any more",
                    shard,
                    extra={"shard": shard, "error": str(exc)},
                )
            except LeaseError as exc:
                log.warning(
                    "cannot save the handover of shard %d; keeping it until it can be",
                    shard,
                    extra={"shard": shard, "error": str(exc)},
                )
                return False
            self._versions.pop(shard, None)
            self._written.pop(shard, None)
            self._fragments.pop(shard, None)
            if self._store is not None:
                # The chains went with the handover: closed here, and this replica's copy
                # no longer counts as the freshest (a later gain reads the handover).
                pairs = [(key.split("/", 1)[0], key.split("/", 1)[1]) for key in keys]
                self._store.close_handed_over(pairs, keep=())
                self._store.set_value(TENURE_KEY.format(shard=shard), None)
            log.info(
                "handed shard %d over at a step boundary",
                shard,
                extra={"shard": shard, "objects": count},
            )
            return True

    # -- handovers while held ------------------------------------------------------------

    async def _collect(self, shard: int, transitions: int) -> tuple[bytes, str, int]:
        """The shard's handover (gzipped), a digest of what it says (not when or under
        which lease it was written) and how many objects it holds; only the objects that
        moved since the last one are read from the store, on a worker thread."""
        keys = set(self.placed_keys(shard))
        cache = self._fragments.setdefault(shard, {})
        dirty = self._dirty_keys.pop(shard, set())
        todo = sorted((dirty & keys) | (keys - cache.keys()))
        gone = set(cache) - keys
        reader = self._reader
        assert reader is not None

        def work() -> tuple[bytes, str, int]:
            for key in gone:
                cache.pop(key, None)
            for key in todo:
                entry = export_entry(reader, key)
                if entry is None:
                    cache.pop(key, None)
                else:
                    cache[key] = fragment(entry)
            ordered = [cache[key] for key in sorted(cache)]
            digest = hashlib.sha256(b"\n".join(ordered)).hexdigest()
            data = assemble(
                ordered,
                shard=shard,
                holder=self.identity,
                transitions=transitions,
                shards=self.config.shards,
            )
            return data, digest, len(ordered)

        return await asyncio.to_thread(work)

    async def _checkpoints(self) -> None:
        """Save each active shard's handover when its objects moved, every interval."""
        interval = self.config.seconds("checkpoint_interval")
        while True:
            await asyncio.sleep(interval)
            for shard in sorted(self.manager.active() & self._dirty):
                held = self.manager.held.get(shard)
                if held is None or held.state is not ShardState.ACTIVE:
                    continue
                try:
                    await self._checkpoint(shard, held.transitions)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("shard %d: handover not saved", shard)

    async def _checkpoint(self, shard: int, transitions: int) -> None:
        async with self._lock(shard):
            if shard not in self.manager.active():
                return
            self._dirty.discard(shard)
            data, digest, _ = await self._collect(shard, transitions)
            if digest == self._written.get(shard):
                return
            try:
                self._versions[shard] = await self._io(
                    lambda: self.handovers.write(
                        data,
                        shard=shard,
                        holder=self.identity,
                        transitions=transitions,
                        expect=self._versions.get(shard),
                    )
                )
                self._written[shard] = digest
            except LeaseConflict as exc:
                await self.manager.lose_now(shard, f"its handover was written by another: {exc}")
            except LeaseError as exc:
                self._dirty.add(shard)
                log.warning(
                    "shard %d: handover not saved; trying again",
                    shard,
                    extra={"shard": shard, "error": str(exc)},
                )

    async def _io(self, call: Callable[[], _T]) -> _T:
        return await self.elector.run(call)

    # -- the shard map ---------------------------------------------------------------------

    def shard_map(self) -> dict[str, Any]:
        """Who holds what, as ``GET /api/v1/shards`` and ``reconciler shards`` show it."""
        return shard_map.describe(self.manager, self.placement)

    def owner_url(self, key: str) -> tuple[str | None, str | None]:
        """(holder, its API URL) of ``key``'s shard; (None, None) when nobody holds it."""
        if self.placement is None:
            return None, None
        holder = self.manager.holder_of(self.placement.shard_of(key))
        if holder is None or holder == self.identity:
            return holder, None
        return holder, self.manager.url_of(holder)

    def peer_urls(self) -> list[str]:
        """The API URLs of the other live replicas."""
        return [
            m.url
            for m in self.manager.members
            if m.alive and m.identity != self.identity and m.url is not None
        ]

    def retry_after_s(self) -> int:
        """How long a client should wait for a shard nobody holds to be taken over."""
        return int(self.config.seconds("lease_duration") + self.config.seconds("retry_period")) + 1

    # -- stopping ------------------------------------------------------------------------

    async def close(self) -> None:
        """Save and give back every shard (the executor has stopped: its chains are at a
        step boundary or interrupted), then the member lease."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        try:
            await self.manager.close()
        finally:
            if self._reader is not None:
                self._reader.close()
            self.elector.close()


def _parse_time(value: Any) -> datetime.datetime:
    if isinstance(value, str):
        return datetime.datetime.fromisoformat(value)
    return datetime.datetime.now(datetime.UTC)


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("resuming a shard's chains failed", exc_info=task.exception())
