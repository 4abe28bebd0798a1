"""Runs Workflows on their ``config.schedule``: the daemon's scheduler task.

Each pass asks :func:`reconciler.core.schedule.decide` for every Workflow of the last
valid revision that has a schedule, with the time from an injected clock (tests drive
it; nothing here reads the wall clock itself), and starts the provision graph with
``trigger: schedule`` when a tick is due. What it decided is kept in the state store
(one value, by workflow name: the last tick handled, the last scheduled execution, the
next run time and why), so a restart neither repeats a tick nor loses the missed ones
that ``catch_up`` asks for. The outcome of the last scheduled run, for
``skip_on_failure``, is read back from that execution's record.

A tick that falls while an execution of the same Workflow is still queued or running is
skipped and says so (a scheduled run never supersedes a running one). A schedule the
spec schema let through but croniter refuses (a bad time zone) stalls the Workflow.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
from collections.abc import Callable, Mapping
from typing import Any

from reconciler.core.chain_builders import workflow_rank, workflow_run_chain
from reconciler.core.chains import Chain
from reconciler.core.diff import ObjectState
from reconciler.core.schedule import LastOutcome, ScheduleConfig, ScheduleError, decide
from reconciler.core.status import Verdict
from reconciler.engine.executor import Executor
from reconciler.engine.records import ExecutionRecord
from reconciler.engine.store import Store
from reconciler.steps.registry import StepRegistry

log = logging.getLogger("reconciler.daemon.schedules")

STATE_KEY = "schedules"
MAX_IDLE_S = 60.0
"""The longest a pass waits with nothing due (specs change between passes)."""
Clock = Callable[[], datetime.datetime]


def utc_clock() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def stamp(when: datetime.datetime | None) -> str | None:
    if when is None:
        return None
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: Any) -> datetime.datetime | None:
    """A stamp written by :func:`stamp`. fromisoformat, not strptime: a pass reads one per
    scheduled Workflow, and strptime cost a quarter of a second a pass at 4,400 of them."""
    if not isinstance(text, str):
        return None
    if len(text) != 20 or not text.endswith("Z"):
        raise ValueError(f"not a UTC stamp of the form 2026-01-31T12:00:00Z: {text!r}")
    return datetime.datetime.fromisoformat(text[:-1]).replace(tzinfo=datetime.UTC)


@dataclasses.dataclass(frozen=True)
class ScheduleEntry:
    """What the scheduler remembers of one Workflow (JSON in the store)."""

    last_tick: str | None = None
    execution: str | None = None
    next_run_at: str | None = None
    note: str = ""
    error: str | None = None

    @classmethod
    def load(cls, value: Any) -> ScheduleEntry:
        if not isinstance(value, Mapping):
            return cls()
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in value.items() if k in known})


class WorkflowScheduler:
    """One daemon's schedules. ``run_due()`` is one pass; ``run()`` loops until stopped.

    ``desired`` gives the objects of the last valid revision, ``revision`` that revision;
    ``on_change`` is told a Workflow's key when what its status says about the schedule
    moved (the reconciler then republishes its status); ``loaded`` says whether
    ``desired`` holds a valid revision yet.
    """

    def __init__(
        self,
        *,
        store: Store,
        executor: Executor,
        registry: StepRegistry,
        desired: Callable[[], Mapping[str, ObjectState]],
        revision: Callable[[], str | None],
        on_change: Callable[[str], None],
        loaded: Callable[[], bool] = lambda: True,
        clock: Clock = utc_clock,
        prepare: Callable[[Chain], Chain] | None = None,
    ) -> None:
        self._prepare = prepare
        self._store = store
        self._executor = executor
        self._registry = registry
        self._desired = desired
        self._revision = revision
        self._on_change = on_change
        self._clock = clock
        self._loaded = loaded
        self._ready = False
        self._poked = asyncio.Event()
        saved = store.get_value(STATE_KEY)
        self._entries: dict[str, ScheduleEntry] = {
            str(name): ScheduleEntry.load(value)
            for name, value in (saved.items() if isinstance(saved, Mapping) else ())
        }
        # The spec each Workflow was last decided for: until its spec changes or its next
        # tick comes, a pass has nothing to decide for it (thousands of schedules, one
        # pass after every cycle).
        self._decided: dict[str, str] = {}
        self._changed = False
        self.owns: Callable[[str], bool] = lambda _key: True
        """Whether this daemon runs ``key``'s schedule (a sharded replica: the Workflows of
        the shards it holds)."""

    # -- what the status shows -------------------------------------------------------------

    def status_fields(self, name: str) -> dict[str, Any]:
        entry = self._entries.get(name)
        if entry is None or entry.error is not None:
            return {}
        return {"next_run_at": entry.next_run_at, "schedule_note": entry.note}

    def stalled(self, name: str) -> Verdict | None:
        entry = self._entries.get(name)
        if entry is None or entry.error is None:
            return None
        return Verdict(
            phase="Stalled",
            ready="False",
            reason="InvalidSchedule",
            message=f"config.schedule: {entry.error}",
            stalled=True,
        )

    # -- passes ----------------------------------------------------------------------------

    def poke(self) -> None:
        """Run a pass now (new specs, a clock moved by a test)."""
        self._poked.set()

    async def run(self, *, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._poked.clear()  # a poke during the pass runs another one
            try:
                self.run_due()
            except Exception:
                log.exception("schedule pass failed; the next pass retries")
            wait = self._seconds_to_next()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wait(stop), timeout=wait)

    async def _wait(self, stop: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        poked = asyncio.ensure_future(self._poked.wait())
        try:
            await asyncio.wait({stopping, poked}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            poked.cancel()

    def _seconds_to_next(self) -> float:
        upcoming = [t for e in self._entries.values() if (t := _parse(e.next_run_at))]
        if not upcoming:
            return MAX_IDLE_S
        left = (min(upcoming) - self._clock()).total_seconds()
        return min(max(left, 0.0) + 0.05, MAX_IDLE_S)

    def run_due(self) -> list[str]:
        """One pass over every scheduled Workflow; the ids of the executions started.

        Nothing happens until ``loaded`` says the objects of a valid revision are known:
        before, a Workflow missing from them may only not be loaded yet, and forgetting
        its schedule would lose the ticks missed while the daemon was down.
        """
        self._ready = self._ready or self._loaded()
        if not self._ready:
            return []
        started: list[str] = []
        seen: set[str] = set()
        now = self._clock()
        for key, state in self._desired().items():
            if state.kind != "Workflow":
                continue
            name = state.name
            if not self.owns(key):  # another replica's tick: its entry kept, decided anew
                seen.add(name)
                self._decided.pop(name, None)
                continue
            before = self._entries.get(name)
            if before is not None and self._decided.get(name) == state.spec_hash:
                due = _parse(before.next_run_at)
                if before.error is not None or (due is not None and now < due):
                    seen.add(name)
                    continue
            self._decided[name] = state.spec_hash
            try:
                config = ScheduleConfig.from_spec(state.spec)
            except ScheduleError as exc:
                seen.add(name)
                self._set(key, name, before, ScheduleEntry(error=str(exc)))
                continue
            if config is None:
                continue
            seen.add(name)
            entry, execution = self._pass(state, config, before or ScheduleEntry())
            if execution is not None:
                started.append(execution)
            self._set(key, name, before, entry)
        for name in [n for n in self._entries if n not in seen]:
            del self._entries[name]
            self._decided.pop(name, None)
            self._changed = True
            self._on_change(f"Workflow/{name}")
        self._save()
        return started

    def _set(self, key: str, name: str, before: ScheduleEntry | None, after: ScheduleEntry) -> None:
        if before != after:
            self._entries[name] = after
            self._changed = True
            self._on_change(key)

    def _save(self) -> None:
        if not self._changed:
            return
        value = {name: dataclasses.asdict(entry) for name, entry in sorted(self._entries.items())}
        self._store.set_value(STATE_KEY, value)
        self._changed = False

    def _last_run(self, entry: ScheduleEntry) -> ExecutionRecord | None:
        if entry.execution is None:
            return None
        return self._store.find_execution(entry.execution)

    def _pass(
        self, state: ObjectState, config: ScheduleConfig, entry: ScheduleEntry
    ) -> tuple[ScheduleEntry, str | None]:
        last = self._last_run(entry)
        outcome: LastOutcome = None
        if last is not None and last.status in ("failed", "stalled"):
            outcome = "failed"
        elif last is not None and last.status in ("succeeded", "cancelled", "superseded"):
            outcome = last.status
        try:
            decision = decide(
                config,
                last_tick=_parse(entry.last_tick),
                last_outcome=outcome,
                spec_changed_since=last is not None and last.spec_hash != state.spec_hash,
                now=self._clock(),
            )
        except ScheduleError as exc:
            return ScheduleEntry(error=str(exc)), None
        note, execution = decision.reason, entry.execution
        if entry.note and stamp(decision.handled_tick) == entry.last_tick:
            note = entry.note  # no new tick: what the last one did still stands
        started: str | None = None
        if decision.run_tick is not None:
            note, started = self._start(state, decision.run_tick, decision.reason)
            execution = started or execution
        after = ScheduleEntry(
            last_tick=stamp(decision.handled_tick),
            execution=execution,
            next_run_at=stamp(decision.next_run_at),
            note=note,
        )
        if decision.run_tick is not None or after.note != entry.note:
            log.info("schedule", extra={"workflow": state.name, "note": note, "execution": started})
        return after, started

    def _start(
        self, state: ObjectState, tick: datetime.datetime, reason: str
    ) -> tuple[str, str | None]:
        """Submit one scheduled run; what the status says and the execution id (or None)."""
        busy = self._store.list_executions(
            kind="Workflow", name=state.name, statuses=("queued", "running"), limit=1
        )
        if busy:
            return (
                f"tick {stamp(tick)} skipped: execution {busy[0].id} of this workflow is "
                f"still {busy[0].status}",
                None,
            )
        chain = workflow_run_chain(state, self._revision() or "")
        if chain is None:
            return f"tick {stamp(tick)} skipped: the workflow has no provision graph", None
        if self._prepare is not None:  # aimed at a cluster of its environments
            chain = self._prepare(chain)
        missing = self._registry.missing(chain.step_types())
        if missing:
            return (
                f"tick {stamp(tick)} skipped: this daemon cannot run step type(s) "
                f"{', '.join(missing)}",
                None,
            )
        try:
            execution = self._executor.submit(
                chain, trigger="schedule", rank=workflow_rank(state.spec)
            )
        except ValueError as exc:  # a graph the executor refuses
            return f"tick {stamp(tick)} not run: {exc}", None
        return f"{reason}: started execution {execution}", execution
