"""The durable executor: runs step chains (DAGs) on asyncio, one chain per object at a time.

Every step's start is committed before it runs and its end before the runner moves on
(before any downstream node starts, before the execution finishes), so after a crash
``resume()`` continues each unfinished chain at its first unfinished step (finished steps
keep their outputs; a step caught running is run again, steps being idempotent). The
writes of one turn of the event loop share a transaction (step_journal): a round's ends
and the starts they enable commit together. A newer chain for an object replaces a
queued one and stops a running one at its next step boundary; independent nodes run
concurrently, bounded per cluster.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
import functools
import inspect
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal, Protocol

from reconciler.core import chains
from reconciler.core.substitution import SubstitutionError
from reconciler.engine import (
    cancellation,
    cluster_slots,
    node_inputs,
    outcomes,
    step_journal,
    step_runner,
)
from reconciler.engine.context import (
    ReadinessSource,
    StepCatalog,
    StepContext,
    StepLog,
    StepServices,
)
from reconciler.engine.records import (
    ExecutionId,
    ExecutionRecord,
    ExecutionStatus,
    StepRecord,
    StepStatus,
    utc_now,
)
from reconciler.engine.store import StepEnd, StepRetry, StepStart, Store, encode_json

_logger = logging.getLogger("reconciler.engine.executor")

OnFinished = Callable[[ExecutionRecord], Awaitable[None] | None]
OnProgress = Callable[[str], None]
"""Called with an execution's object key when it starts running and when its steps'
starts, ends or retry waits are committed (once per key per commit, which may hold many
steps): status follows the run as it happens, not only at its end."""
StopReason = Literal["cancelled", "superseded", "timed_out"]


class Fence(Protocol):
    """Whether this process may run an object's steps now (a sharded daemon: while it
    holds the object's shard lease), and the token each step start records."""

    def token(self, object_key: str) -> str | None:
        """The lease held for ``object_key`` now, or None: its steps must not start."""


class ExecutorClosedError(RuntimeError):
    """The executor is shutting down and takes no more work."""


_EndStatus = Literal["done", "failed", "stalled", "cancelled"]


@dataclasses.dataclass(frozen=True)
class _NodeResult:
    """How a node's run ended here; ``interrupted`` leaves it unfinished for later."""

    status: _EndStatus | Literal["interrupted"]
    error: str | None = None
    outputs: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class _FirstAttempt:
    """A node's first attempt, begun by the driver: slot taken, start queued to commit."""

    inputs: Mapping[str, Any]
    committed: asyncio.Future[None]
    slots: cluster_slots.ClusterSlots
    fence: str | None = None
    taken_over: bool = False
    """Set once the node's runner holds the slot (and will give it back)."""

    def release_if_unused(self, _task: asyncio.Task[None]) -> None:
        """A task cancelled before it ever ran never reached its ``finally``."""
        if not self.taken_over:
            self.taken_over = True
            self.slots.give()


@dataclasses.dataclass
class _Run:
    """An execution being driven in this process."""

    execution_id: ExecutionId
    chain: chains.Chain
    stop_event: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    stop_reason: StopReason | None = None
    problem: tuple[ExecutionStatus, str] | None = None
    task: asyncio.Task[None] | None = None
    deadline: float | None = None
    """Loop time by which the execution must end (the chain's timeout), or None."""
    rank: int = cluster_slots.DEFAULT_RANK
    node_tasks: set[asyncio.Task[None]] = dataclasses.field(default_factory=set)
    in_step: dict[str, chains.StepNode] = dataclasses.field(default_factory=dict)
    """Nodes whose step is running now, by id."""
    interrupting: bool = False
    paused: bool = False
    """Stopped to be continued later or elsewhere (its shard moved): left unfinished."""
    undo_interrupted: bool = False
    interrupted: list[tuple[chains.StepNode, Mapping[str, Any]]] = dataclasses.field(
        default_factory=list
    )
    """Steps interrupted in flight, with the inputs they ran with (for their undo)."""

    def request_stop(self, reason: StopReason) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self.stop_event.set()

    def interrupt(self, reason: StopReason, *, undo: bool) -> None:
        """Stop now: every node task is cancelled at its next await."""
        self.request_stop(reason)
        self.interrupting = True
        self.undo_interrupted = self.undo_interrupted or undo
        for task in list(self.node_tasks):
            task.cancel()


@dataclasses.dataclass
class _Lane:
    """The executions of one object: at most one running and one queued behind it."""

    running: _Run | None = None
    queued: ExecutionId | None = None


class Executor:
    """Runs chains durably. Use from one event loop: ``await start()``, ``submit``, ...

    ``registry`` gives step implementations (reconciler.steps.registry.StepRegistry).
    ``max_concurrent_per_cluster`` bounds the steps running at once on one cluster
    (chains with no cluster share one pool); ``cluster_limits`` overrides it by name.
    ``on_finished`` is called with the final record of every execution, in order per
    object; keep it short, the object's next chain waits for it. ``on_progress`` is
    called with the object key as an execution starts and as its steps move.
    """

    def __init__(
        self,
        *,
        store: Store,
        registry: StepCatalog,
        readiness: ReadinessSource | None = None,
        services: StepServices | None = None,
        max_concurrent_per_cluster: int = 8,
        cluster_limits: Mapping[str, int] | None = None,
        retry_cap_s: float = 300.0,
        shutdown_grace_s: float = 30.0,
        on_finished: OnFinished | None = None,
        on_progress: OnProgress | None = None,
        rng: random.Random | None = None,
        fence: Fence | None = None,
    ) -> None:
        if max_concurrent_per_cluster < 1:
            raise ValueError("max_concurrent_per_cluster must be at least 1")
        base = services or StepServices()
        self._services = dataclasses.replace(base, readiness=readiness or base.readiness)
        self._store = store
        self._journal = step_journal.StepJournal(store=store, on_committed=self._progress_many)
        self._registry = registry
        self._default_limit = max_concurrent_per_cluster
        self._cluster_limits = dict(cluster_limits or {})
        self._retry_cap_s = retry_cap_s
        self._shutdown_grace_s = shutdown_grace_s
        self._on_finished = on_finished
        self._on_progress = on_progress
        self._rng = rng or random.Random()
        self._fence = fence
        self._slots: dict[str, cluster_slots.ClusterSlots] = {}
        self._lanes: dict[str, _Lane] = collections.defaultdict(_Lane)
        self._runs: dict[ExecutionId, _Run] = {}
        self._waiters: dict[ExecutionId, list[asyncio.Future[ExecutionRecord]]] = {}
        self._callbacks: set[asyncio.Task[None]] = set()
        self._ranks: dict[ExecutionId, int] = {}
        """Ranks of queued executions, until they are launched."""
        self._started = False
        self._closing = False

    # -- public API --------------------------------------------------------------------

    async def start(self) -> list[ExecutionId]:
        """Begin running work, first resuming what the store holds unfinished."""
        return await self.resume()

    async def resume(self) -> list[ExecutionId]:
        """Reload queued and running executions from the store and run them again.

        Per object only the newest goes on; older ones are marked superseded. Returns the
        ids that were (re)started or queued.
        """
        if self._closing:
            raise ExecutorClosedError("the executor is shut down; create a new one")
        self._started = True
        by_object: dict[str, list[ExecutionRecord]] = collections.defaultdict(list)
        for record in self._store.unfinished_executions():
            by_object[record.object_key].append(record)
        resumed: list[ExecutionId] = []
        for key, records in by_object.items():
            if self._fence is not None and self._fence.token(key) is None:
                continue  # another replica's now (or not yet ours): left as it is
            lane = self._lanes[key]
            *older, newest = records
            for old in older:
                if old.id in self._runs or old.id == lane.queued:
                    continue
                self._journal.flush()
                final = self._store.finish_execution(
                    old.id, "superseded", error="superseded by a newer chain for the same object"
                )
                await self._deliver(final)
            if newest.id in self._runs or newest.id == lane.queued:
                continue
            if lane.running is not None:
                lane.running.interrupt("superseded", undo=False)
                lane.queued = newest.id
            else:
                self._launch(lane, newest.id, newest.chain)
            resumed.append(newest.id)
        return resumed

    def submit(
        self,
        chain: chains.Chain,
        *,
        trigger: str = "on_change",
        execution_id: ExecutionId | None = None,
        rank: int = 2,
    ) -> ExecutionId:
        """Store ``chain`` as a new execution (committed before this returns) and run it.

        ``trigger`` says what started it (on_change, manual, schedule, api, resync,
        drift); ``execution_id`` is the id to store it under (the caller recorded it
        first), else a new one. ``rank`` orders its steps' turn for a busy cluster's
        slots: lower first (a Workflow's priority, critical 0 .. low 3).
        """
        if self._closing:
            raise ExecutorClosedError(
                f"cannot run a chain for {chain.object_key}: the executor is shutting down"
            )
        node_inputs.check_chain(chain)
        submitted = self._store.submit_execution(
            chain, trigger=trigger, execution_id=execution_id
        )
        execution_id = submitted.execution.id
        lane = self._lanes[chain.object_key]
        for old in submitted.superseded:
            if lane.queued == old.id:
                lane.queued = None
            self._deliver_soon(old)
        if not self._started:
            return execution_id
        if lane.running is not None:
            lane.running.interrupt("superseded", undo=False)
            lane.queued = execution_id
            self._ranks[execution_id] = rank
        else:
            self._launch(lane, execution_id, chain, rank=rank)
        return execution_id

    def cancel(self, execution_id: str) -> cancellation.CancelReport:
        """Cancel an execution: a queued one never starts; a running one's steps are
        interrupted at their next await and undone where their type has an undo (see
        reconciler.engine.cancellation). The report says which."""
        record = self._store.get_execution(execution_id)
        if record.finished:
            return cancellation.CancelReport(record.id, "finished")
        run = self._runs.get(record.id)
        if run is not None:
            running = [run.in_step[node_id] for node_id in sorted(run.in_step)]
            undo = [
                f"{kind} for {node.id}"
                for node in running
                if (kind := cancellation.undo_type(node.type)) is not None
                and self._registry.implementation(kind) is not None
            ]
            run.interrupt("cancelled", undo=True)
            return cancellation.CancelReport(
                record.id,
                "cancelling",
                interrupting=tuple(f"{node.id} ({node.type})" for node in running),
                undo=tuple(undo),
            )
        lane = self._lanes[record.object_key]
        if lane.queued == record.id:
            lane.queued = None
        self._journal.flush()
        final = self._store.finish_execution(record.id, "cancelled", error="cancelled on request")
        self._deliver_soon(final)
        return cancellation.CancelReport(record.id, "cancelled")

    async def wait(self, execution_id: str) -> ExecutionRecord:
        """The final record of an execution, once it has finished."""
        record = self._store.get_execution(execution_id)
        if record.finished:
            return record
        if self._closing:
            raise ExecutorClosedError("the executor is shutting down")
        future: asyncio.Future[ExecutionRecord] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(record.id, []).append(future)
        return await future

    async def shutdown(self, *, grace_s: float | None = None) -> None:
        """Take no more work; let running steps end (cancel them after the grace period).

        Executions interrupted here stay unfinished in the store and go on at ``resume()``.
        """
        self._closing = True
        grace = self._shutdown_grace_s if grace_s is None else grace_s
        for run in self._runs.values():
            run.stop_event.set()
        tasks = [run.task for run in self._runs.values() if run.task is not None]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._callbacks:
            await asyncio.gather(*self._callbacks, return_exceptions=True)
        for futures in self._waiters.values():
            for future in futures:
                if not future.done():
                    future.set_exception(ExecutorClosedError("the executor shut down"))
        self._waiters.clear()
        self._journal.flush()
        self._store.checkpoint()

    def running_ids(self) -> list[ExecutionId]:
        return list(self._runs)

    def pause(self, object_keys: Iterable[str], *, now: bool) -> list[asyncio.Task[None]]:
        """Stop the chains of these objects and leave them unfinished in the store, to be
        continued by ``resume()`` here or by another replica (a shard moving): no step
        starts any more; running steps end first (``now`` False: at a step boundary) or
        are stopped at their next await without recording an end (``now``: a lease lost,
        the step runs again wherever the chain goes on). Returns the runs' tasks."""
        tasks: list[asyncio.Task[None]] = []
        for key in object_keys:
            lane = self._lanes.get(key)
            if lane is None:
                continue
            lane.queued = None  # stays queued in the store
            run = lane.running
            if run is None:
                continue
            run.paused = True
            run.stop_event.set()
            if now:
                run.interrupting = True
                for task in list(run.node_tasks):
                    task.cancel()
            if run.task is not None:
                tasks.append(run.task)
        return tasks

    # -- lanes and results -------------------------------------------------------------

    def _launch(
        self,
        lane: _Lane,
        execution_id: ExecutionId,
        chain: chains.Chain,
        *,
        rank: int | None = None,
    ) -> None:
        found = self._ranks.pop(execution_id, None)
        chosen = rank if rank is not None else found
        run = _Run(
            execution_id=execution_id,
            chain=chain,
            rank=chosen if chosen is not None else cluster_slots.DEFAULT_RANK,
        )
        lane.running = run
        self._runs[execution_id] = run
        run.task = asyncio.create_task(
            self._run_execution(run, lane), name=f"execution {chain.object_key} {execution_id}"
        )

    async def _run_execution(self, run: _Run, lane: _Lane) -> None:
        try:
            final: tuple[ExecutionStatus, str | None] | None
            try:
                final = await self._drive(run)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                _logger.exception(
                    "execution %s of %s broke", run.execution_id, run.chain.object_key
                )
                final = ("failed", f"internal error in the executor: {outcomes.describe(e)}")
            if final is not None and final[0] == "cancelled" and run.interrupted:
                final = await self._undo_interrupted(run, final)
            self._journal.flush()  # ends not yet committed, writes of steps cancelled in flight
            lost = self._journal.failure(run.execution_id)
            self._journal.forget(run.execution_id)
            if lost is not None and final is not None and final[0] != "failed":
                final = ("failed", f"internal error: a step write was not committed: {lost}")
            if final is not None:
                status, error = final
                record = self._store.finish_execution(run.execution_id, status, error=error)
                _log_finished(record)
                await self._deliver(record)
        finally:
            self._runs.pop(run.execution_id, None)
            lane.running = None
        if not self._closing and not run.paused and lane.queued is not None:
            next_id, lane.queued = lane.queued, None
            record = self._store.get_execution(next_id)
            if not record.finished:
                self._launch(lane, record.id, record.chain)

    def _deliver_soon(self, record: ExecutionRecord) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(record))
        self._callbacks.add(task)
        task.add_done_callback(self._callbacks.discard)

    async def _deliver(self, record: ExecutionRecord) -> None:
        for future in self._waiters.pop(record.id, []):
            if not future.done():
                future.set_result(record)
        if self._on_finished is None:
            return
        try:
            result = self._on_finished(record)
            if inspect.isawaitable(result):
                await result
        except Exception:
            _logger.exception("on_finished callback failed for execution %s", record.id)

    # -- one execution -----------------------------------------------------------------

    async def _drive(self, run: _Run) -> tuple[ExecutionStatus, str | None] | None:
        """Run the chain's nodes as they become ready; the final status, or None to resume."""
        chain = run.chain
        nodes = {step.id: step for step in chain.steps}
        # Steps not in here are untouched: pending, never attempted.
        records = {record.node_id: record for record in self._store.moved_steps(run.execution_id)}
        self._journal.flush()
        self._store.mark_execution_running(run.execution_id)
        self._progress(chain.object_key)
        timer = self._arm_timeout(run)
        outputs: dict[str, Mapping[str, Any]] = {}
        for record in records.values():
            if record.status == "done":
                outputs[record.node_id] = dict(record.outputs or {})
            elif record.status in ("failed", "stalled") and run.problem is None:
                # Ended before a crash, the execution not yet closed: close it the same way.
                run.problem = self._problem(record.status, nodes[record.node_id], record.error)
                run.stop_event.set()
        successors: dict[str, list[str]] = {node_id: [] for node_id in nodes}
        waiting_on = dict.fromkeys(nodes, 0)
        for step in chain.steps:
            for upstream in {*step.after, *step.pass_outputs}:
                successors[upstream].append(step.id)
                if upstream not in outputs:
                    waiting_on[step.id] += 1
        ready = collections.deque(
            node_id for node_id in nodes if node_id not in outputs and waiting_on[node_id] == 0
        )
        reports: asyncio.Queue[tuple[str, _NodeResult | BaseException]] = asyncio.Queue()
        tasks: set[asyncio.Task[None]] = set()
        in_flight = 0
        try:
            while True:
                while ready and not run.stop_event.is_set():
                    node_id = ready.popleft()
                    node, moved = nodes[node_id], records.get(node_id)
                    first = None if moved is not None else self._begin_now(run, node, outputs)
                    task = asyncio.create_task(
                        self._report_node(reports, run, node, moved, outputs, first)
                    )
                    if first is not None:
                        task.add_done_callback(first.release_if_unused)
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    run.node_tasks.add(task)
                    task.add_done_callback(run.node_tasks.discard)
                    task.add_done_callback(functools.partial(_report_cancelled, reports, node_id))
                    in_flight += 1
                if in_flight == 0:
                    break
                node_id, result = await reports.get()
                in_flight -= 1
                if isinstance(result, BaseException):
                    raise result
                if result.status == "done":
                    outputs[node_id] = result.outputs
                    for downstream in successors[node_id]:
                        waiting_on[downstream] -= 1
                        if waiting_on[downstream] == 0:
                            ready.append(downstream)
                elif result.status in ("failed", "stalled"):
                    if run.problem is None and run.stop_reason is None:
                        run.problem = self._problem(result.status, nodes[node_id], result.error)
                    run.stop_event.set()
        finally:
            if timer is not None:
                timer.cancel()
            for task in list(tasks):
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
        if len(outputs) == len(nodes):
            return ("succeeded", None)
        if chain.timeout is not None and (
            run.stop_reason == "timed_out"
            or (run.deadline is not None and asyncio.get_running_loop().time() >= run.deadline)
        ):
            return ("failed", f"workflow timed out after {chain.timeout:g}s")
        if run.problem is not None:
            return run.problem
        if run.stop_reason == "cancelled":
            return ("cancelled", "cancelled on request")
        if run.stop_reason == "superseded":
            return ("superseded", "superseded by a newer chain for the same object")
        if self._closing or run.paused:
            return None
        return ("failed", "internal error: some steps never became ready")

    def _arm_timeout(self, run: _Run) -> asyncio.TimerHandle | None:
        """Stop ``run`` when its chain's timeout has passed since it first started (a
        resumed execution keeps its original start)."""
        timeout = run.chain.timeout
        if timeout is None:
            return None
        started = self._store.get_execution(run.execution_id).started_at or utc_now()
        remaining = timeout - (utc_now() - started).total_seconds()
        loop = asyncio.get_running_loop()
        run.deadline = loop.time() + max(remaining, 0.0)
        return loop.call_at(run.deadline, run.request_stop, "timed_out")

    @staticmethod
    def _step_budget(run: _Run, *, own: float | None) -> float | None:
        """A node's own timeout (``own``: as resolved for this attempt), cut to what is
        left of the execution's."""
        if run.deadline is None:
            return own
        left = max(run.deadline - asyncio.get_running_loop().time(), 0.001)
        return left if own is None else min(own, left)

    @staticmethod
    def _problem(
        status: StepStatus, node: chains.StepNode, error: str | None
    ) -> tuple[ExecutionStatus, str]:
        final: ExecutionStatus = "stalled" if status == "stalled" else "failed"
        return (final, f"step '{node.id}' ({node.type}) {status}: {error}")

    async def _report_node(
        self,
        reports: asyncio.Queue[tuple[str, _NodeResult | BaseException]],
        run: _Run,
        node: chains.StepNode,
        record: StepRecord | None,
        outputs: Mapping[str, Mapping[str, Any]],
        first: _FirstAttempt | None,
    ) -> None:
        try:
            result: _NodeResult | BaseException = await self._run_node(
                run, node, record, outputs, first
            )
        except asyncio.CancelledError:
            if not run.interrupting:
                raise
            result = _NodeResult("interrupted")  # a cancel or a newer chain stopped it
        except Exception as e:
            result = e
        reports.put_nowait((node.id, result))

    def _cluster_slots(self, cluster: str | None) -> cluster_slots.ClusterSlots:
        key = cluster or ""
        slots = self._slots.get(key)
        if slots is None:
            limit = self._cluster_limits.get(key, self._default_limit)
            slots = self._slots[key] = cluster_slots.ClusterSlots(limit)
        return slots

    def _begin_now(
        self, run: _Run, node: chains.StepNode, outputs: Mapping[str, Mapping[str, Any]]
    ) -> _FirstAttempt | None:
        """Begin a fresh node's first attempt in this very turn when that is plain sailing
        (a free slot, inputs that resolve and encode), so its start commits together with
        the ends that made it ready; None leaves everything to ``_run_node``."""
        chain = run.chain
        if self._registry.implementation(node.type) is None:
            return None
        fence = self._fence.token(chain.object_key) if self._fence is not None else None
        if self._fence is not None and fence is None:
            return None  # _run_node pauses the run
        slots = self._cluster_slots(chain.cluster)
        if not slots.try_take():
            return None
        try:
            inputs = node_inputs.resolve_inputs(
                node,
                params=chain.params,
                outputs=outputs,
                signature=self._registry.signature(node.type),
            )
            encoded = encode_json(inputs)
        except (SubstitutionError, node_inputs.MissingInputError, TypeError, ValueError):
            slots.give()
            return None
        except BaseException:
            slots.give()
            raise
        try:
            start = StepStart(run.execution_id, node.id, 1, encoded, fence)
            committed = self._journal.record(start, object_key=chain.object_key)
        except BaseException:
            slots.give()
            raise
        return _FirstAttempt(inputs=inputs, committed=committed, slots=slots, fence=fence)

    async def _pause(self, run: _Run, delay_s: float) -> bool:
        """Sleep ``delay_s`` unless the run is told to stop first; True if it was."""
        if delay_s <= 0:
            return run.stop_event.is_set()
        try:
            await asyncio.wait_for(run.stop_event.wait(), timeout=delay_s)
        except TimeoutError:
            return False
        return True

    def _end_step(
        self,
        run: _Run,
        node_id: str,
        status: _EndStatus,
        *,
        error: str | None = None,
        outputs: Mapping[str, Any] | None = None,
        log: str = "",
    ) -> _NodeResult:
        """Commit a step's end before the runner moves on."""
        try:
            encoded = None if outputs is None else encode_json(outputs)
        except (TypeError, ValueError) as e:
            status, error, outputs = "failed", f"step outputs are not JSON values: {e}", None
            encoded = None
        end = StepEnd(run.execution_id, node_id, status, encoded, error, log)
        # Not awaited: all that depends on this end is written after it (see step_journal).
        self._journal.record(end, object_key=run.chain.object_key)
        return _NodeResult(status, error, outputs or {})

    def _end_interrupted(
        self, run: _Run, node: chains.StepNode, inputs: Mapping[str, Any], log: StepLog
    ) -> None:
        """A step stopped in flight by a cancel or a newer chain: recorded as cancelled
        with the log it wrote so far; kept for its undo."""
        why = "cancelled on request" if run.stop_reason == "cancelled" else "superseded"
        log.warning(f"interrupted: {why}")
        self._end_step(run, node.id, "cancelled", error=f"interrupted: {why}", log=log.text())
        run.interrupted.append((node, inputs))

    async def _undo_interrupted(
        self, run: _Run, final: tuple[ExecutionStatus, str | None]
    ) -> tuple[ExecutionStatus, str | None]:
        """Run the undo of each step a cancel interrupted (newest first), as steps of the
        same execution; the execution stays cancelled, its error says what was undone."""
        if not run.undo_interrupted:
            return final
        done: list[str] = []
        for node, inputs in reversed(run.interrupted):
            undo = cancellation.undo_node(node, inputs)
            if undo is None or self._registry.implementation(undo.type) is None:
                continue
            self._journal.flush()
            self._store.append_step(run.execution_id, undo.id, undo.type)
            result = await self._run_node(
                dataclasses.replace(
                    run,
                    stop_event=asyncio.Event(),
                    stop_reason=None,
                    deadline=None,
                    interrupting=False,
                    node_tasks=set(),
                    in_step={},
                    interrupted=[],
                ),
                undo,
                None,
                {},
            )
            done.append(f"{undo.type} for {node.id}: {result.status}")
        if not done:
            return final
        return final[0], f"{final[1]}; undo: {'; '.join(done)}"

    @staticmethod
    def _fenced_off(run: _Run) -> _NodeResult:
        """This process may no longer run the object's steps (its lease is gone): the run
        stops here, unfinished, for whoever holds the lease to continue."""
        if not run.paused:
            _logger.warning(
                "execution %s of %s paused: its shard is not held here",
                run.execution_id,
                run.chain.object_key,
            )
        run.paused = True
        run.stop_event.set()
        return _NodeResult("interrupted")

    def _progress_many(self, object_keys: Iterable[str]) -> None:
        for object_key in object_keys:
            self._progress(object_key)

    def _progress(self, object_key: str) -> None:
        if self._on_progress is None:
            return
        try:
            self._on_progress(object_key)
        except Exception:
            _logger.exception("on_progress callback failed for %s", object_key)

    async def _run_node(
        self,
        run: _Run,
        node: chains.StepNode,
        record: StepRecord | None,
        outputs: Mapping[str, Mapping[str, Any]],
        first: _FirstAttempt | None = None,
    ) -> _NodeResult:
        chain = run.chain
        interrupted = _NodeResult("interrupted")
        # A step found running was interrupted (a crash, a stop): this attempt resumes it.
        resumed = record is not None and record.status == "running"
        attempts = 0 if record is None else record.attempts
        attempt = attempts if resumed else attempts + 1
        if record is not None and record.status == "pending" and record.next_attempt_at is not None:
            remaining = (record.next_attempt_at - utc_now()).total_seconds()
            if await self._pause(run, remaining):
                return interrupted
        impl = self._registry.implementation(node.type)
        signature = self._registry.signature(node.type)
        if impl is None:
            return self._end_step(
                run,
                node.id,
                "stalled",
                error=f"step type '{node.type}' has no implementation in this daemon; "
                "upgrade the daemon or change the step type",
            )
        slots = self._cluster_slots(chain.cluster)
        while True:
            if first is not None:  # begun by the driver: slot taken, start queued
                first.taken_over = True  # no await before the try that gives it back
                inputs, committed, fence = first.inputs, first.committed, first.fence
                first = None
            else:
                if run.stop_event.is_set():
                    return interrupted
                fence = self._fence.token(chain.object_key) if self._fence is not None else None
                if self._fence is not None and fence is None:
                    return self._fenced_off(run)
                try:
                    inputs = node_inputs.resolve_inputs(
                        node, params=chain.params, outputs=outputs, signature=signature
                    )
                except (
                    SubstitutionError,
                    node_inputs.MissingInputError,
                    node_inputs.InvalidNodeTimeoutError,
                ) as e:
                    return self._end_step(run, node.id, "stalled", error=str(e))
                await slots.take(rank=run.rank)
                try:
                    if run.stop_event.is_set():
                        slots.give()
                        return interrupted
                    start = StepStart(
                        run.execution_id, node.id, attempt, encode_json(inputs), fence
                    )
                    committed = self._journal.record(start, object_key=chain.object_key)
                except BaseException:
                    slots.give()
                    raise
            label = f"resumed attempt {attempt}" if resumed else f"attempt {attempt}"
            resumed = False
            log = StepLog(prefix=f"{chain.object_key} {node.id} {label}")
            try:
                await committed  # a step runs only once its start is committed
                if run.stop_event.is_set():
                    return interrupted  # committed as running: resumed or closed later
                if self._fence is not None and self._fence.token(chain.object_key) != fence:
                    return self._fenced_off(run)  # the lease moved while the start committed
                context = StepContext(
                    execution_id=run.execution_id,
                    node_id=node.id,
                    step_type=node.type,
                    inputs=inputs,
                    attempt=attempt,
                    params=chain.params,
                    object_key=chain.object_key,
                    revision=chain.revision,
                    cluster=chain.cluster,
                    log=log,
                    services=self._services,
                )
                budget = self._step_budget(run, own=node_inputs.step_timeout(node, inputs))
                run.in_step[node.id] = node
                try:
                    outcome = await step_runner.run_step(impl, context, timeout_s=budget)
                except asyncio.CancelledError:
                    if run.interrupting and not run.paused:
                        self._end_interrupted(run, node, inputs, log)
                    raise
                finally:
                    run.in_step.pop(node.id, None)
            finally:
                slots.give()
            if isinstance(outcome, outcomes.Done):
                return self._end_step(run, node.id, "done", outputs=outcome.outputs, log=log.text())
            if isinstance(outcome, outcomes.Failed):
                return self._end_step(run, node.id, "failed", error=outcome.reason, log=log.text())
            if isinstance(outcome, outcomes.Stalled):
                return self._end_step(
                    run,
                    node.id,
                    "stalled",
                    error=outcome.reason,
                    outputs=outcome.outputs or None,
                    log=log.text(),
                )
            if attempt > node.retries:
                tried = f"{attempt} attempt{'s' if attempt > 1 else ''}"
                return self._end_step(
                    run,
                    node.id,
                    "failed",
                    error=f"{outcome.reason} (gave up after {tried})",
                    log=log.text(),
                )
            delay = outcome.after_seconds
            if delay is None:
                delay = node_inputs.backoff_delay(
                    attempt, base_s=node.retry_delay, cap_s=self._retry_cap_s, rng=self._rng
                )
            log.info(f"retrying in {delay:.3g}s: {outcome.reason}")
            retry = StepRetry(
                run.execution_id,
                node.id,
                next_attempt_at=utc_now() + datetime.timedelta(seconds=delay),
                error=outcome.reason,
                log=log.text(),
            )
            await self._journal.record(retry, object_key=chain.object_key)
            if await self._pause(run, delay):
                return interrupted
            attempt += 1


def _report_cancelled(
    reports: asyncio.Queue[tuple[str, _NodeResult | BaseException]],
    node_id: str,
    task: asyncio.Task[None],
) -> None:
    """A node task cancelled before it ever ran reports nothing itself: report it here."""
    if task.cancelled():
        reports.put_nowait((node_id, _NodeResult("interrupted")))


def _log_finished(record: ExecutionRecord) -> None:
    """One line per finished execution: what ended, how, and how long it took."""
    started = record.started_at or record.created_at
    duration = (
        (record.finished_at - started).total_seconds()
        if record.finished_at is not None and started is not None
        else None
    )
    level = logging.INFO if record.status in ("succeeded", "superseded") else logging.WARNING
    _logger.log(
        level,
        "execution %s",
        record.status,
        extra={
            "execution": record.id,
            "object": record.object_key,
            "action": record.action,
            "revision": record.revision,
            "duration_s": round(duration, 3) if duration is not None else None,
            "error": record.error,
        },
    )
