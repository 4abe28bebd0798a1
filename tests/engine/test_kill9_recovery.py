"""kill -9 at any instant, then resume(): nothing finished is lost or redone, nothing faked.

The chain runs in a real subprocess (crash_worker.py) whose steps leave marker files; the
process is SIGKILLed at chosen points (by itself, or by the test from outside), then a
fresh process resumes from the SQLite store.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reconciler.engine.store import Store

WORKER = Path(__file__).with_name("crash_worker.py")
REPO = Path(__file__).resolve().parents[2]
NODES = ("a", "b", "c", "d", "e")


def start_worker(tmp: Path, mode: str, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, str(WORKER), "--state", str(tmp / "state"), "--markers"]
    command += [str(tmp / "markers"), "--mode", mode, *extra]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen[str], *, timeout: float = 30) -> int:
    out, err = process.communicate(timeout=timeout)
    if process.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"worker exited {process.returncode}: {out}\n{err}")
    return process.returncode


Snapshot = dict[str, tuple[dict[str, object], int]]


def done_nodes(tmp: Path) -> Snapshot:
    """After a crash: each node the store holds as done, its outputs and how often it began."""
    with Store(tmp / "state") as store:
        (execution,) = store.list_executions()
        steps = store.get_steps(execution.id)
    return {
        s.node_id: (dict(s.outputs or {}), len(begins(tmp, s.node_id)))
        for s in steps
        if s.status == "done"
    }


def begins(tmp: Path, node: str) -> list[str]:
    log = tmp / "markers" / f"{node}.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [line for line in lines if line.startswith("begin")]


def check_final_state(tmp: Path, done_at_crashes: list[Snapshot]) -> None:
    with Store(tmp / "state") as store:
        (execution,) = store.list_executions()
        assert execution.status == "succeeded"
        steps = {s.node_id: s for s in store.get_steps(execution.id)}
    assert set(steps) == set(NODES)
    for node_id, step in steps.items():
        assert step.status == "done", node_id
        # Its side effect happened, with exactly the inputs the store says it ran with.
        effect = tmp / "markers" / f"{node_id}.effect"
        assert effect.exists(), f"{node_id} marked done but its effect is missing"
        assert json.loads(effect.read_text()) == dict(step.inputs or {})
    for done in done_at_crashes:
        for node_id, (outputs, runs) in done.items():
            # Finished before a crash: kept its outputs and never ran again.
            assert steps[node_id].outputs == outputs
            assert len(begins(tmp, node_id)) == runs, f"{node_id} ran again after it was done"
    # Substitution used the stored outputs of upstream nodes, not re-generated ones.
    assert steps["b"].inputs == {"value": steps["a"].outputs["token"]}  # type: ignore[index]
    assert steps["e"].inputs == {"value": steps["d"].outputs["token"]}  # type: ignore[index]


def unfinished(tmp: Path) -> bool:
    with Store(tmp / "state") as store:
        return bool(store.unfinished_executions())


def fresh(tmp_path: Path) -> Path:
    (tmp_path / "markers").mkdir()
    return tmp_path


@pytest.mark.parametrize(
    ("where", "options"),
    [
        ("before any step", ["--kill-after-submit"]),
        ("between steps", ["--kill-after-commit", "b"]),
        ("during the last step, after its effect", ["--kill-in-step", "e"]),
    ],
)
def test_self_kill_then_resume_completes_the_chain(
    tmp_path: Path, where: str, options: list[str]
) -> None:
    tmp = fresh(tmp_path)
    assert finish(start_worker(tmp, "run", *options)) == -signal.SIGKILL, where
    done_at_crash = done_nodes(tmp)
    assert finish(start_worker(tmp, "resume")) == 0
    check_final_state(tmp, [done_at_crash])
    if where == "before any step":
        assert done_at_crash == {}
    if where == "between steps":
        assert {"a", "b"} <= set(done_at_crash)
    if where == "during the last step, after its effect":
        assert "e" not in done_at_crash
        assert len(begins(tmp, "e")) == 2  # run again after the crash: steps are idempotent


def test_external_kill_mid_step_then_resume(tmp_path: Path) -> None:
    tmp = fresh(tmp_path)
    process = start_worker(tmp, "run", "--hang-in", "c")
    deadline = time.monotonic() + 20
    while not (tmp / "markers" / "hanging").exists():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    assert finish(process) == -signal.SIGKILL
    done_at_crash = done_nodes(tmp)
    assert "c" not in done_at_crash and "a" in done_at_crash
    with Store(tmp / "state") as store:
        (execution,) = store.list_executions()
        step = store.get_step(execution.id, "c")
        assert step is not None and step.status == "running"
    assert finish(start_worker(tmp, "resume")) == 0
    check_final_state(tmp, [done_at_crash])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kills_at_random_instants_then_resume(tmp_path: Path, seed: int) -> None:
    tmp = fresh(tmp_path)
    rng = random.Random(seed)
    done_at_crashes = []
    mode = "run"
    for _ in range(3):
        if mode == "resume" and not unfinished(tmp):
            break
        process = start_worker(tmp, mode, "--step-sleep", "0.02")
        deadline = time.monotonic() + 20
        while not (tmp / "markers" / "started").exists() and process.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.08))
        process.send_signal(signal.SIGKILL)
        code = finish(process)
        (tmp / "markers" / "started").unlink(missing_ok=True)
        if (tmp / "markers" / "submitted").exists():
            mode = "resume"
        if code == 0:
            break
        if mode == "resume":
            done_at_crashes.append(done_nodes(tmp))
    if mode == "run":  # killed before even storing the chain: start over
        assert finish(start_worker(tmp, "run")) == 0
    elif unfinished(tmp):
        assert finish(start_worker(tmp, "resume")) == 0
    check_final_state(tmp, done_at_crashes)
