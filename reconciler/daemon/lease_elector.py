"""Leader election over ``coordination.k8s.io/v1`` Leases, as client-go's leaderelection does it.

One elector per replica takes, renews and gives back any number of named leases (one per
shard, one for the replica's own heartbeat). The rules are client-go's:

- A lease nobody holds (no holder) is free. A lease held by another is free once its
  record has not changed for its ``leaseDurationSeconds``, timed with this replica's own
  monotonic clock from the moment it first saw that record: no clock of another machine is
  trusted, only the rate at which time passes.
- Taking a lease from another holder bumps ``leaseTransitions`` and sets ``acquireTime``;
  renewing our own keeps both and moves ``renewTime``. Every write carries the
  ``resourceVersion`` it read, so of two replicas racing for one lease exactly one wins.
- A holder that has not renewed within ``renew_deadline`` of its last successful renewal
  (timed from when that renewal's request began) no longer counts as holding, whether or
  not anyone took the lease yet: it stops acting a good margin (lease duration minus
  renew deadline) before another replica may take over. :meth:`LeaseElector.holds` is
  that check, and :meth:`LeaseElector.token` the fencing token steps are recorded with.
- Giving a lease back writes an empty holder and a one-second duration, so the next
  replica takes it at its next try instead of after the lease duration.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import datetime
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

from reconciler.drivers.lease_records import LeaseConflict, LeaseError, LeaseRecord, LeaseWrite

if TYPE_CHECKING:
    from reconciler.drivers.leases import CoordinationApi

log = logging.getLogger("reconciler.sharding")
_R = TypeVar("_R")


@dataclasses.dataclass(frozen=True)
class LeaseTiming:
    """client-go's three durations, in seconds (defaults 15, 10, 2)."""

    lease_duration_s: float = 15.0
    renew_deadline_s: float = 10.0
    retry_period_s: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period_s < self.renew_deadline_s < self.lease_duration_s:
            raise ValueError(
                "lease timing needs retry_period < renew_deadline < lease_duration "
                f"(got {self.retry_period_s:g}s, {self.renew_deadline_s:g}s, "
                f"{self.lease_duration_s:g}s)"
            )


@dataclasses.dataclass(frozen=True)
class Tenure:
    """This replica's hold on one lease: since which transition, renewed when."""

    name: str
    transitions: int
    renewed_at: float
    """Monotonic time at which the last successful write of it began."""
    acquired: bool
    """The last try took it (from another holder, or it was new), not merely renewed it."""

    @property
    def token(self) -> str:
        return f"{self.name}#{self.transitions}"


@dataclasses.dataclass(frozen=True)
class Observed:
    """A lease's record as last seen, and when (monotonic) it was first seen like that."""

    record: LeaseRecord
    since: float


class LeaseElector:
    """Takes, renews and gives back leases for ``identity``; see the module docstring."""

    def __init__(
        self,
        *,
        api: CoordinationApi,
        identity: str,
        timing: LeaseTiming,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
        threads: int = 8,
    ) -> None:
        self.api = api
        self.identity = identity
        self.timing = timing
        self._clock = clock
        self._wall = wall
        self._held: dict[str, Tenure] = {}
        self._observed: dict[str, Observed] = {}
        # Lease calls block for up to their timeout when the API server is away: they get
        # threads of their own, so git and the model steps keep the loop's default pool.
        self._threads = concurrent.futures.ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="leases"
        )

    # -- the state of our holds ----------------------------------------------------------

    def tenure(self, name: str) -> Tenure | None:
        """Our hold on ``name``, while it counts (see :meth:`holds`)."""
        held = self._held.get(name)
        if held is None or not self._fresh(held):
            return None
        return held

    def holds(self, name: str) -> bool:
        return self.tenure(name) is not None

    def last_tenure(self, name: str) -> Tenure | None:
        """Our last hold on ``name``, also once it no longer counts."""
        return self._held.get(name)

    def lapsed(self, tenure: Tenure) -> bool:
        """Whether ``tenure`` has stopped counting by now (its renew deadline passed)."""
        return not self._fresh(tenure)

    def token(self, name: str) -> str | None:
        """``holder@lease#transitions`` while we hold ``name``, else None: what each step
        start records, and what it is checked against before the step goes on."""
        held = self.tenure(name)
        return f"{self.identity}@{held.token}" if held is not None else None

    def _fresh(self, held: Tenure) -> bool:
        return self._clock() - held.renewed_at < self.timing.renew_deadline_s

    def observed(self, name: str) -> Observed | None:
        return self._observed.get(name)

    def alive(self, record: LeaseRecord) -> bool:
        """Whether ``record``'s holder still counts as holding it, as far as we can tell
        (held, and its record changed within its duration of our watching it)."""
        if not record.holder:
            return False
        if record.holder == self.identity and record.name in self._held:
            return self.holds(record.name)
        seen = self._note(record, self._clock())
        return self._clock() - seen.since < max(record.duration_s, 1)

    # -- acquire, renew, release ---------------------------------------------------------

    async def acquire_or_renew(
        self,
        name: str,
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> Tenure | None:
        """Take ``name`` (when free) or renew it (when ours); None when another holds it,
        another won the race, or the API cannot be reached."""
        started = self._clock()
        try:
            return await self.run(
                lambda: self._try(name, started, dict(labels or {}), dict(annotations or {}))
            )
        except LeaseConflict:
            log.debug("lost the race for a lease", extra={"lease": name})
            return None
        except LeaseError as exc:
            log.warning("lease not renewed", extra={"lease": name, "error": str(exc)})
            return None

    def _try(
        self, name: str, started: float, labels: dict[str, str], annotations: dict[str, str]
    ) -> Tenure | None:
        now = self._wall()
        duration = max(1, round(self.timing.lease_duration_s))
        current = self.api.get_lease(name)
        if current is None:
            write = LeaseWrite(self.identity, duration, 0, now, now, labels, annotations)
            created = self.api.create_lease(name, write)
            return self._took(created, started, acquired=True)
        seen = self._note(current, started)
        ours = current.holder == self.identity
        if current.holder and not ours and started - seen.since < max(current.duration_s, 1):
            return None
        transitions = current.transitions if ours else current.transitions + 1
        acquire = (current.acquire_time or now) if ours else now
        write = LeaseWrite(self.identity, duration, transitions, acquire, now, labels, annotations)
        updated = self.api.update_lease(current, write)
        was_ours = name in self._held and self._fresh(self._held[name])
        return self._took(updated, started, acquired=not (ours and was_ours))

    def _took(self, record: LeaseRecord, started: float, *, acquired: bool) -> Tenure:
        tenure = Tenure(record.name, record.transitions, started, acquired)
        self._held[record.name] = tenure
        self._observed[record.name] = Observed(record, started)
        return tenure

    def _note(self, record: LeaseRecord, at: float) -> Observed:
        known = self._observed.get(record.name)
        if known is None or _fingerprint(known.record) != _fingerprint(record):
            known = self._observed[record.name] = Observed(record, at)
        return known

    async def release(self, name: str) -> bool:
        """Give ``name`` back (only while we still hold it); True when it was given back."""
        held = self._held.pop(name, None)
        if held is None or not self._fresh(held):
            return False
        try:
            return await self.run(lambda: self._give_back(name))
        except LeaseError as exc:
            log.warning("lease not given back", extra={"lease": name, "error": str(exc)})
            return False

    def _give_back(self, name: str) -> bool:
        current = self.api.get_lease(name)
        if current is None or current.holder != self.identity:
            return False
        now = self._wall()
        write = LeaseWrite(
            None, 1, current.transitions, now, now, current.labels, current.annotations
        )
        self.api.update_lease(current, write)
        return True

    def forget(self, name: str) -> None:
        """Stop counting ``name`` as held (it was lost; a later try decides again)."""
        self._held.pop(name, None)

    async def list(self, label_selector: str) -> list[LeaseRecord]:
        """The leases with these labels (LeaseError when the API cannot be reached)."""
        return await self.run(lambda: self.api.list_leases(label_selector))

    async def run(self, call: Callable[[], _R]) -> _R:
        """Run a blocking call of the coordination API on the lease threads."""
        return await asyncio.get_running_loop().run_in_executor(self._threads, call)

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        self.api.close()


def _fingerprint(record: LeaseRecord) -> tuple[object, ...]:
    return (record.holder, record.renew_time, record.transitions, record.resource_version)
