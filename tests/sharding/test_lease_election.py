"""Leases as client-go's leaderelection uses them, through the real kubernetes client.

Against the API double (and a real kube-apiserver when ``KUBEBUILDER_ASSETS`` holds one):
of two replicas racing for a lease exactly one wins (resourceVersion and AlreadyExists
conflicts), a held lease is renewed and not taken while its holder renews it, it is taken
once it went unrenewed for its duration (timed by the taker's own clock from when it first
saw that record), taking bumps ``leaseTransitions``, and a holder that could not renew
within its deadline no longer counts as holding, well before the lease can be taken.
The clock is the test's, so expiry needs no sleeping.
"""

from __future__ import annotations

import asyncio
import datetime

import pytest
from kubernetes.client.exceptions import ApiException

from reconciler.daemon.lease_elector import LeaseElector, LeaseTiming
from reconciler.drivers.leases import LeaseConflict, LeaseWrite
from tests.sharding.conftest import NAMESPACE, Home

TIMING = LeaseTiming(lease_duration_s=15, renew_deadline_s=10, retry_period_s=2)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def elector(home: Home, identity: str, clock: Clock) -> LeaseElector:
    return LeaseElector(api=home.coordination(), identity=identity, timing=TIMING, clock=clock)


async def test_one_of_two_racing_replicas_takes_a_new_lease(any_home: Home) -> None:
    clock = Clock()
    a, b = elector(any_home, "r-0", clock), elector(any_home, "r-1", clock)
    won = await asyncio.gather(*(e.acquire_or_renew("shard-0") for e in (a, b)))
    assert sum(t is not None for t in won) == 1
    lease = any_home.leases.read_namespaced_lease("shard-0", NAMESPACE)
    winner = a if won[0] is not None else b
    assert lease.spec.holder_identity == winner.identity
    assert lease.spec.lease_duration_seconds == 15 and lease.spec.lease_transitions == 0
    assert winner.token("shard-0") == f"{winner.identity}@shard-0#0"


async def test_a_held_lease_is_renewed_and_not_taken_until_it_goes_unrenewed(
    any_home: Home,
) -> None:
    clock = Clock()
    a, b = elector(any_home, "r-0", clock), elector(any_home, "r-1", clock)
    assert await a.acquire_or_renew("shard-1") is not None
    first = any_home.leases.read_namespaced_lease("shard-1", NAMESPACE).spec
    assert await b.acquire_or_renew("shard-1") is None  # b sees this record from now on
    clock.now += 9
    renewed = await a.acquire_or_renew("shard-1")
    assert renewed is not None and not renewed.acquired and renewed.transitions == 0
    after = any_home.leases.read_namespaced_lease("shard-1", NAMESPACE).spec
    assert after.renew_time > first.renew_time and after.acquire_time == first.acquire_time
    clock.now += 9  # b reads the renewed record: its own timing starts again here
    assert await b.acquire_or_renew("shard-1") is None
    clock.now += 14
    assert await b.acquire_or_renew("shard-1") is None  # 14 s unchanged: still a's
    clock.now += 2  # unchanged for 16 s of b's watching: free
    taken = await b.acquire_or_renew("shard-1")
    assert taken is not None and taken.acquired and taken.transitions == 1
    lease = any_home.leases.read_namespaced_lease("shard-1", NAMESPACE).spec
    assert (lease.holder_identity, lease.lease_transitions) == ("r-1", 1)
    assert lease.acquire_time > first.acquire_time
    assert not a.holds("shard-1")  # 16 s without a renewal: past a's deadline too


async def test_a_holder_that_cannot_renew_stops_counting_before_the_lease_can_lapse(
    home: Home,
) -> None:
    clock = Clock()
    a = elector(home, "r-0", clock)
    assert await a.acquire_or_renew("shard-2") is not None
    clock.now += 9.9
    assert a.holds("shard-2")
    clock.now += 0.2  # past the renew deadline, with 5 s of the lease left for others
    assert not a.holds("shard-2") and a.token("shard-2") is None
    assert await a.release("shard-2") is False  # a holder past its deadline gives nothing


async def test_a_lease_given_back_is_taken_at_once(any_home: Home) -> None:
    clock = Clock()
    a, b = elector(any_home, "r-0", clock), elector(any_home, "r-1", clock)
    assert await a.acquire_or_renew("shard-3") is not None
    assert await b.acquire_or_renew("shard-3") is None
    assert await a.release("shard-3") is True
    lease = any_home.leases.read_namespaced_lease("shard-3", NAMESPACE).spec
    assert lease.holder_identity is None and lease.lease_duration_seconds == 1
    taken = await b.acquire_or_renew("shard-3")  # no waiting: nobody holds it
    assert taken is not None and taken.transitions == 1


async def test_a_write_at_a_stale_resource_version_is_a_conflict(any_home: Home) -> None:
    api = any_home.coordination()
    now = datetime.datetime.now(datetime.UTC)
    created = api.create_lease("shard-4", LeaseWrite("r-0", 15, 0, now, now))
    later = now + datetime.timedelta(seconds=2)
    api.update_lease(created, LeaseWrite("r-0", 15, 0, now, later))  # a renewal
    with pytest.raises(LeaseConflict, match="409"):
        api.update_lease(created, LeaseWrite("r-1", 15, 1, now, now))  # read before the renew
    with pytest.raises(LeaseConflict, match="already exists"):
        api.create_lease("shard-4", LeaseWrite("r-1", 15, 0, now, now))
    assert api.get_lease("shard-4") is not None and api.get_lease("absent") is None


def test_the_double_refuses_what_the_real_server_refuses(home: Home) -> None:
    body = {
        "metadata": {"name": "bad"},
        "spec": {"leaseDurationSeconds": 0, "renewTime": "2024-01-01T00:00:00Z"},
    }
    with pytest.raises(ApiException) as refused:
        home.leases.create_namespaced_lease(NAMESPACE, body)
    assert refused.value.status == 422
    assert "spec.leaseDurationSeconds" in refused.value.body
    assert "spec.renewTime" in refused.value.body  # a MicroTime has six fraction digits
