"""A shard whose lease was renewed late: its objects are looked at again.

Between a held lease's renew deadline and a renewal that lands after it (a loaded
replica's tick came late), the shard does not count as this replica's, so what came up
for its objects then (a dependency turning Ready woke them) was passed over as another
replica's. The renewal that lands says so, once, and the coordinator queues the shard's
objects again. The clock is the test's, and the ticks are called by the test.
"""

from __future__ import annotations

from reconciler.daemon.lease_elector import LeaseElector, LeaseTiming
from reconciler.daemon.sharding import ShardManager, ShardState
from tests.sharding.conftest import Home
from tests.sharding.test_lease_election import Clock

TIMING = LeaseTiming(lease_duration_s=15, renew_deadline_s=10, retry_period_s=2)


class Events:
    """What the manager tells the coordinator, recorded."""

    def __init__(self) -> None:
        self.gained: list[int] = []
        self.counted: list[int] = []
        self.lost: list[int] = []

    async def gain(self, shard: int, transitions: int) -> bool:
        self.gained.append(shard)
        return True

    async def lose(self, shard: int) -> None:
        self.lost.append(shard)

    async def release(self, shard: int) -> bool:
        return True

    def counted_again(self, shard: int) -> None:
        self.counted.append(shard)


async def test_a_late_renewal_has_the_shards_objects_looked_at_again(home: Home) -> None:
    clock = Clock()
    elector = LeaseElector(api=home.coordination(), identity="r-0", timing=TIMING, clock=clock)
    events = Events()
    manager = ShardManager(
        elector=elector, shard_count=1, prefix="late", advertise_url=None, events=events
    )
    await manager.tick()
    assert events.gained == [0] and manager.held[0].state is ShardState.ACTIVE
    assert manager.active() == {0}

    clock.now += 5  # a renewal in time: nothing to say
    await manager.tick()
    assert events.counted == [] and manager.active() == {0}

    clock.now += 11  # past the renew deadline: the shard does not count meanwhile
    assert manager.active() == frozenset()
    await manager.tick()  # the late renewal lands (the lease had not lapsed for others)

    assert manager.active() == {0} and events.lost == []
    assert events.counted == [0]
    await manager.tick()
    assert events.counted == [0]  # once per lapse
