"""Which shards this replica holds, and the leases behind them.

Every ``retry_period`` the manager of a replica (one per daemon when ``sharding:`` is
configured):

1. renews its own member Lease (``PREFIX-member-ID``, annotated with the URL its API
   answers on), and lists the member Leases to see which replicas are alive;
2. assigns the shards round robin over the live replicas (reconciler.core.shards), the
   same on every replica, since they all see the same leases;
3. renews the shard Leases it holds; one it could not renew within the renew deadline,
   or that another replica holds now, is *lost*: the coordinator stops its chains at
   once, before the lease can lapse;
4. hands over held shards now assigned to another live replica: *released* at a step
   boundary by the coordinator (which saves the handover), then the lease given back;
5. tries the shards assigned to it that it does not hold: a free lease (given back,
   expired, never made) is taken, and the coordinator *gains* the shard.

The coordinator (reconciler.daemon.shard_coordinator) does the gaining, losing and
releasing; this module only decides when. :class:`ShardPlacement` says which shard an
object of the loaded revision is in.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from reconciler.core import shards
from reconciler.daemon.lease_elector import LeaseElector
from reconciler.daemon.object_book import DesiredObject
from reconciler.daemon.object_memo import ObjectMemo
from reconciler.drivers.lease_records import LeaseError

log = logging.getLogger("reconciler.sharding")

MEMBER_LABEL = "reconciler.dev/lease"
URL_ANNOTATION = "reconciler.dev/api-url"


class ShardState(enum.Enum):
    GAINING = "gaining"
    """The lease is ours; the handover is being read (nothing of it runs yet)."""
    ACTIVE = "active"
    """Ours: its objects are reconciled, their chains run, their status published."""
    RELEASING = "releasing"
    """Moving to another replica: no new step starts; the lease is renewed until the
    running steps ended and the handover is saved."""


@dataclasses.dataclass
class HeldShard:
    shard: int
    state: ShardState
    transitions: int
    task: asyncio.Task[None] | None = None


@dataclasses.dataclass(frozen=True)
class Member:
    """A replica, as its member Lease says."""

    identity: str
    url: str | None
    alive: bool


class ShardEvents(Protocol):
    async def gain(self, shard: int, transitions: int) -> bool:
        """Take the shard in (read its handover, resume its chains); False: try again."""

    async def lose(self, shard: int) -> None:
        """The lease is gone: stop the shard's work at once."""

    async def release(self, shard: int) -> bool:
        """Stop the shard's work at a step boundary and save its handover; False: the
        handover could not be saved yet (keep the lease, try again)."""

    def counted_again(self, shard: int) -> None:
        """The lease of an active shard was renewed after its renew deadline had passed:
        for a while it did not count, and what came up for the shard's objects then was
        passed over; look at them again."""


class ShardPlacement:
    """The shard of each object of the loaded revision (or, once removed, of what was
    applied), computed once per revision."""

    def __init__(
        self,
        *,
        shard_count: int,
        desired: Callable[[], Mapping[str, DesiredObject]],
        memos: Callable[[], Mapping[str, ObjectMemo]],
    ) -> None:
        self.shard_count = shard_count
        self._desired = desired
        self._memos = memos
        self._for: Mapping[str, DesiredObject] | None = None
        self._pins: dict[str, int | None] = {}
        self._shards: dict[str, int] = {}
        self.wrapped: set[str] = set()
        """Clusters whose ``spec.shard`` is past the last shard (logged once each)."""

    def _fresh(self) -> Mapping[str, DesiredObject]:
        desired = self._desired()
        if desired is not self._for:
            self._for = desired
            self._shards = {}
            self._pins = {}
            for key, found in desired.items():
                if found.state.kind == "Cluster":
                    pin = found.state.spec.get("shard")
                    self._pins[found.state.name] = pin if isinstance(pin, int) else None
                    if isinstance(pin, int) and shards.wraps(pin, self.shard_count):
                        if key not in self.wrapped:
                            log.warning(
                                "%s: spec.shard %d is past the last shard (%d shards): it "
                                "is in shard %d",
                                key,
                                pin,
                                self.shard_count,
                                pin % self.shard_count,
                                extra={"object": key},
                            )
                        self.wrapped.add(key)
        return desired

    def shard_of(self, key: str) -> int:
        desired = self._fresh()
        found = self._shards.get(key)
        if found is not None:
            return found
        kind, name = key.split("/", 1)
        spec: Mapping[str, Any] | None = None
        wanted = desired.get(key)
        if wanted is not None:
            spec = wanted.state.spec
        else:
            memo = self._memos().get(key)
            applied = memo.applied_state if memo is not None else None
            spec = applied.spec if applied is not None else None
        shard = shards.object_shard(kind, name, spec, pins=self._pins, shards=self.shard_count)
        self._shards[key] = shard
        return shard

    def known_keys(self) -> list[str]:
        """Every object known now: of the revision, or remembered."""
        return sorted(set(self._fresh()) | set(self._memos()))


class ShardManager:
    """The lease loop of one replica; see the module docstring."""

    def __init__(
        self,
        *,
        elector: LeaseElector,
        shard_count: int,
        prefix: str,
        advertise_url: str | None,
        events: ShardEvents,
    ) -> None:
        self.elector = elector
        self.shard_count = shard_count
        self.prefix = prefix
        self.advertise_url = advertise_url
        self.events = events
        self.held: dict[int, HeldShard] = {}
        self.members: list[Member] = []
        self.assignment: dict[int, str] = {}
        self.leases: dict[int, Any] = {}
        """The shard leases as last listed (shard -> LeaseRecord)."""
        self._closed = False
        self.ticks = 0

    @property
    def identity(self) -> str:
        return self.elector.identity

    def lease_name(self, shard: int) -> str:
        return f"{self.prefix}-shard-{shard}"

    @property
    def member_lease(self) -> str:
        return f"{self.prefix}-member-{self.identity}"

    def active(self) -> frozenset[int]:
        """The shards whose objects this replica works on now: held, taken in, and with
        a lease that still counts (renewed within the renew deadline)."""
        return frozenset(
            shard
            for shard, held in self.held.items()
            if held.state is ShardState.ACTIVE and self.elector.holds(self.lease_name(shard))
        )

    def token(self, shard: int) -> str | None:
        """The fencing token of an active shard, else None."""
        held = self.held.get(shard)
        if held is None or held.state is not ShardState.ACTIVE:
            return None
        return self.elector.token(self.lease_name(shard))

    def url_of(self, identity: str) -> str | None:
        for member in self.members:
            if member.identity == identity:
                return member.url
        return None

    def holder_of(self, shard: int) -> str | None:
        """Who works on ``shard`` now, as far as this replica knows (None: nobody)."""
        if shard in self.active():
            return self.identity
        record = self.leases.get(shard)
        if record is None or not record.holder or record.holder == self.identity:
            return None
        return str(record.holder) if self.elector.alive(record) else None

    # -- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        """Tick every retry period until :meth:`close`; never ends on its own."""
        period = self.elector.timing.retry_period_s
        deadlines = asyncio.create_task(self._watch_deadlines(), name="shard lease deadlines")
        try:
            while not self._closed:
                try:
                    await self.tick()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("shard lease tick failed; trying again")
                await asyncio.sleep(period)
        finally:
            deadlines.cancel()

    async def _watch_deadlines(self) -> None:
        """Lose a shard the moment its renew deadline passes, whatever the renewals are
        doing (a request to an unreachable API server can hang for its whole timeout)."""
        step = min(0.25, self.elector.timing.retry_period_s / 2)
        while not self._closed:
            await asyncio.sleep(step)
            for shard, held in list(self.held.items()):
                if held.state is ShardState.GAINING:
                    continue
                if not self.elector.holds(self.lease_name(shard)):
                    await self._lost(shard, "not renewed within the renew deadline")

    async def tick(self) -> None:
        self.ticks += 1
        await self._heartbeat()
        live = [m.identity for m in self.members if m.alive]
        if self.elector.holds(self.member_lease):
            live.append(self.identity)
        self.assignment = shards.assign(self.shard_count, live)
        await self._renew_held()
        await self._hand_over()
        await self._take_assigned()

    async def _heartbeat(self) -> None:
        annotations = {URL_ANNOTATION: self.advertise_url} if self.advertise_url else {}
        await self.elector.acquire_or_renew(
            self.member_lease, labels={MEMBER_LABEL: "member"}, annotations=annotations
        )
        try:
            members = await self.elector.list(f"{MEMBER_LABEL}=member")
            listed = await self.elector.list(f"{MEMBER_LABEL}=shard")
        except LeaseError as exc:
            log.warning("cannot list the replicas' leases", extra={"error": str(exc)})
            return
        found: list[Member] = []
        for record in members:
            if not record.holder:
                continue
            alive = self.elector.alive(record)
            found.append(Member(str(record.holder), record.annotations.get(URL_ANNOTATION), alive))
        self.members = sorted(found, key=lambda m: shards.member_order(m.identity))
        by_name = {self.lease_name(s): s for s in range(self.shard_count)}
        self.leases = {by_name[r.name]: r for r in listed if r.name in by_name}
        for record in listed:
            if record.name in by_name:
                self.elector.alive(record)  # note when each record was first seen

    async def _renew_held(self) -> None:
        async def renew(shard: int) -> None:
            name = self.lease_name(shard)
            before = self.elector.last_tenure(name)
            tenure = await self.elector.acquire_or_renew(name, labels={MEMBER_LABEL: "shard"})
            held = self.held.get(shard)
            if held is None:
                return
            if tenure is not None and tenure.transitions == held.transitions:
                # Late: the old hold had stopped counting before this renewal landed.
                late = before is not None and self.elector.lapsed(before)
                if late and held.state is ShardState.ACTIVE:
                    log.warning(
                        "shard %d: renewed after its renew deadline; looking at its objects again",
                        shard,
                        extra={"shard": shard},
                    )
                    self.events.counted_again(shard)
                return
            if tenure is None and self.elector.holds(name):
                return  # a missed renewal, inside the deadline: try again next tick
            await self._lost(shard, "another replica holds it" if tenure else "not renewed")

        await asyncio.gather(*(renew(shard) for shard in list(self.held)))

    async def lose_now(self, shard: int, why: str) -> None:
        """Treat ``shard`` as lost now (its handover says another replica has it)."""
        await self._lost(shard, why)

    async def _lost(self, shard: int, why: str) -> None:
        held = self.held.pop(shard, None)
        self.elector.forget(self.lease_name(shard))
        if held is None:
            return
        if held.task is not None and not held.task.done():
            held.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await held.task
        log.error(
            "lost shard %d: %s; its work stops here",
            shard,
            why,
            extra={"shard": shard, "lease": self.lease_name(shard)},
        )
        await self.events.lose(shard)

    async def _hand_over(self) -> None:
        live = {m.identity for m in self.members if m.alive}
        for shard, held in list(self.held.items()):
            owner = self.assignment.get(shard)
            moving = owner is not None and owner != self.identity and owner in live
            if held.state is ShardState.ACTIVE and moving:
                held.state = ShardState.RELEASING
                log.info(
                    "handing shard %d over to %s",
                    shard,
                    owner,
                    extra={"shard": shard, "to": owner},
                )
                held.task = asyncio.create_task(self._release(shard), name=f"release shard {shard}")
            elif held.state is ShardState.RELEASING and held.task is not None and held.task.done():
                held.task = asyncio.create_task(self._release(shard), name=f"release shard {shard}")

    async def _release(self, shard: int) -> None:
        if not await self.events.release(shard):
            return  # kept RELEASING: the next tick tries the handover again
        if self.held.pop(shard, None) is None:
            return  # lost meanwhile
        released = await self.elector.release(self.lease_name(shard))
        log.info("released shard %d", shard, extra={"shard": shard, "released": released})

    async def _take_assigned(self) -> None:
        async def take(shard: int) -> None:
            name = self.lease_name(shard)
            tenure = await self.elector.acquire_or_renew(name, labels={MEMBER_LABEL: "shard"})
            if tenure is None:
                return
            held = self.held[shard] = HeldShard(shard, ShardState.GAINING, tenure.transitions)
            log.info(
                "took shard %d", shard, extra={"shard": shard, "transitions": tenure.transitions}
            )
            await self._gain(held)

        mine = [s for s, owner in self.assignment.items() if owner == self.identity]
        wanted = [s for s in mine if s not in self.held]
        await asyncio.gather(*(take(shard) for shard in wanted))
        for held in list(self.held.values()):
            if held.state is ShardState.GAINING and (held.task is None or held.task.done()):
                await self._gain(held)

    async def _gain(self, held: HeldShard) -> None:
        gained = await self.events.gain(held.shard, held.transitions)
        if gained and self.held.get(held.shard) is held:
            held.state = ShardState.ACTIVE

    # -- stopping ------------------------------------------------------------------------

    async def close(self, release: Callable[[int], Awaitable[bool]] | None = None) -> None:
        """Stop ticking; save and give back every shard still held (a clean stop), then
        the member lease, so the other replicas take over at once."""
        self._closed = True
        for shard, held in sorted(self.held.items()):
            if held.task is not None and not held.task.done():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await held.task
            if shard not in self.held:
                continue
            saved = await (release or self.events.release)(shard)
            if saved:
                await self.elector.release(self.lease_name(shard))
            self.held.pop(shard, None)
        await self.elector.release(self.member_lease)
