"""kill -9 while many steps end and start in shared transactions: the store never holds a
step started on outputs it could still lose, and resume() finishes without redoing work.

The worker (crash_worker.py --wide) runs three fan-out/fan-in blocks of ``effect`` steps
with a small cluster limit, so ends and starts share commits; it is killed at random
instants. After every kill, each step the store shows as running or done must have all
its upstream steps done, with the very token it was given as input.
"""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path

import pytest
from test_kill9_recovery import begins, finish, start_worker, unfinished

from reconciler.engine.records import StepRecord
from reconciler.engine.store import Store

WIDE = ["--wide", "10", "--slots", "3", "--step-sleep", "0.002"]


def upstream_of(tmp: Path) -> dict[str, tuple[str, ...]]:
    with Store(tmp / "state") as store:
        (execution,) = store.list_executions()
    return {step.id: step.after for step in execution.chain.steps}


def stored_steps(tmp: Path) -> dict[str, StepRecord]:
    with Store(tmp / "state") as store:
        (execution,) = store.list_executions()
        return {s.node_id: s for s in store.get_steps(execution.id)}


def check_consistent(tmp: Path, after: dict[str, tuple[str, ...]]) -> dict[str, StepRecord]:
    """Every started step stands on committed upstream ends and their exact outputs."""
    steps = stored_steps(tmp)
    for node_id, step in steps.items():
        if step.status not in ("running", "done"):
            continue
        for upstream in after[node_id]:
            assert steps[upstream].status == "done", (
                f"{node_id} is {step.status} but its upstream {upstream} is"
                f" {steps[upstream].status}"
            )
        if after[node_id]:
            token = (steps[after[node_id][0]].outputs or {})["token"]
            assert step.inputs == {"value": token}, node_id
    return steps


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_kills_during_batched_rounds_leave_a_consistent_store(tmp_path: Path, seed: int) -> None:
    (tmp_path / "markers").mkdir()
    rng = random.Random(seed)
    done_at_kills: list[dict[str, tuple[object, int]]] = []
    mode = "run"
    for _ in range(4):
        if mode == "resume" and not unfinished(tmp_path):
            break
        process = start_worker(tmp_path, mode, *WIDE)
        deadline = time.monotonic() + 20
        while not (tmp_path / "markers" / "started").exists() and process.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.12))
        process.send_signal(signal.SIGKILL)
        code = finish(process)
        (tmp_path / "markers" / "started").unlink(missing_ok=True)
        if not (tmp_path / "markers" / "submitted").exists():
            continue  # killed before the chain was stored: start over
        mode = "resume"
        steps = check_consistent(tmp_path, upstream_of(tmp_path))
        done_at_kills.append(
            {
                n: (s.outputs, len(begins(tmp_path, n)))
                for n, s in steps.items()
                if s.status == "done"
            }
        )
        if code == 0:
            break
    if mode == "run":
        assert finish(start_worker(tmp_path, "run", *WIDE)) == 0
    elif unfinished(tmp_path):
        assert finish(start_worker(tmp_path, "resume", *WIDE)) == 0
    after = upstream_of(tmp_path)
    steps = check_consistent(tmp_path, after)
    assert {s.status for s in steps.values()} == {"done"}
    for node_id, step in steps.items():
        effect = tmp_path / "markers" / f"{node_id}.effect"
        assert json.loads(effect.read_text()) == dict(step.inputs or {}), node_id
    for done in done_at_kills:
        for node_id, (outputs, runs) in done.items():
            assert steps[node_id].outputs == outputs
            assert len(begins(tmp_path, node_id)) == runs, f"{node_id} ran again after done"
