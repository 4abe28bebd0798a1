"""What the local driver knows of a server's process group: ``group_exists`` (one signal
0) against ``group_members`` (a read of /proc), a group whose only member is a zombie,
and ``stop_group`` ending a group whose leader ignores SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

from reconciler.drivers.clusters import local_processes as procs

# The leader starts a child of its own in its group and prints the child's pid.
LEADER_WITH_CHILD = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(child.pid, flush=True)
time.sleep(60)
"""

# A leader that exits at once leaves, until its parent reaps it, a zombie in its group.
EXIT_AT_ONCE = "pass"

IGNORES_TERM = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(60)
"""


def _leader(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def test_a_group_with_live_members_exists_and_lists_them() -> None:
    leader = _leader(LEADER_WITH_CHILD)
    try:
        assert leader.stdout is not None
        child_pid = int(leader.stdout.readline())
        assert procs.group_exists(leader.pid)
        assert sorted(procs.group_members(leader.pid)) == sorted([leader.pid, child_pid])
    finally:
        os.killpg(leader.pid, signal.SIGKILL)
        leader.wait()
    deadline = time.monotonic() + 10
    while procs.group_exists(leader.pid) and time.monotonic() < deadline:
        time.sleep(0.02)  # the child is reaped by init, not by us
    assert not procs.group_exists(leader.pid)
    assert procs.group_members(leader.pid) == []


def test_a_zombie_alone_is_in_the_group_but_not_a_member() -> None:
    leader = _leader(EXIT_AT_ONCE)
    deadline = time.monotonic() + 10
    while procs.start_ticks(leader.pid) is not None and time.monotonic() < deadline:
        time.sleep(0.02)  # exited, not reaped: a zombie
    try:
        assert procs.group_exists(leader.pid)
        assert procs.group_members(leader.pid) == []
        # Waiting for the group to go (no Popen: an adopted server) ends, the zombie aside.
        gone = procs._wait_group_gone(leader.pid, None, time.monotonic() + 30)
        assert asyncio.run(asyncio.wait_for(gone, timeout=5.0))
    finally:
        leader.wait()
    assert not procs.group_exists(leader.pid)


def test_stop_group_kills_a_leader_that_ignores_term_after_the_grace() -> None:
    leader = _leader(IGNORES_TERM)
    assert leader.stdout is not None
    assert leader.stdout.readline().strip() == "ready"
    ticks = procs.start_ticks(leader.pid)
    assert ticks is not None
    identity = procs.ProcessIdentity(leader.pid, ticks)
    asyncio.run(procs.stop_group(identity, grace_s=0.3, child=leader))
    assert leader.returncode == -signal.SIGKILL
    assert not procs.group_exists(leader.pid)
