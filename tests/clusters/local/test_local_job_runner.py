"""Jobs run to their end on the local cluster: real processes, their output as it comes.

Each job is a small Python program run by the runner in a session of its own; the tests
drive it through files it waits for and the lines it prints, never through sleeps.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from reconciler.drivers.clusters import local_processes as procs
from reconciler.drivers.clusters import protocol
from reconciler.drivers.clusters.local_jobs import LocalJobRunner
from tests.clusters.local.conftest import eventually

PY = sys.executable


class Seen:
    """What a run handed on: output lines and notes, with an event per awaited line."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.notes: list[str] = []
        self._waiting: dict[str, asyncio.Event] = {}

    def line(self, text: str) -> None:
        self.lines.append(text)
        for prefix, event in self._waiting.items():
            if text.startswith(prefix):
                event.set()

    def note(self, text: str) -> None:
        self.notes.append(text)

    async def line_starting(self, prefix: str, *, timeout_s: float = 30.0) -> str:
        event = self._waiting.setdefault(prefix, asyncio.Event())
        if not any(line.startswith(prefix) for line in self.lines):
            await asyncio.wait_for(event.wait(), timeout_s)
        return next(line for line in self.lines if line.startswith(prefix))


def job(
    code: str,
    *,
    name: str = "job-1",
    env: dict[str, str] | None = None,
    gpus: int = 0,
    timeout_s: float | None = None,
) -> protocol.JobRequest:
    return protocol.JobRequest(
        name=name,
        image=None,
        command=(PY, "-c"),
        args=(code,),
        env=env or {},
        gpus=gpus,
        timeout_s=timeout_s,
    )


@pytest.fixture
def runner(tmp_path: Path) -> LocalJobRunner:
    return LocalJobRunner(folder=tmp_path / "job-runs", stop_grace_s=5.0)


def _gone(pid: int) -> bool:
    return procs.start_ticks(pid) is None


async def test_lines_arrive_while_the_job_runs_and_its_exit_code_ends_it(
    runner: LocalJobRunner, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    code = (
        "import os, sys, time\n"
        "print('first', flush=True)\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
        "print('second', file=sys.stderr, flush=True)\n"
        "sys.stdout.write('{\"score\": 0.91}')\n"
        "sys.exit(3)\n"
    )
    seen = Seen()
    running = asyncio.create_task(
        runner.run_to_end(job(code), on_line=seen.line, on_note=seen.note)
    )
    await seen.line_starting("first")
    assert not running.done()  # the first line came while the job still waited
    go.touch()
    ended = await asyncio.wait_for(running, 30)
    assert ended == protocol.JobOutcome(exit_code=3)
    assert seen.lines == ["first", "second", '{"score": 0.91}']


async def test_the_job_gets_its_env_and_gpus_but_not_the_daemons_secrets(
    runner: LocalJobRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECONCILER_SECRET_HF_TOKEN", "hf_secret_never_seen")
    code = (
        "import os\n"
        "print('who=' + os.environ['WHO'])\n"
        "print('gpus=' + os.environ['CUDA_VISIBLE_DEVICES'])\n"
        "print('secret=' + os.environ.get('RECONCILER_SECRET_HF_TOKEN', 'absent'))\n"
        "print('cwd=' + os.getcwd())\n"
    )
    seen = Seen()
    ended = await runner.run_to_end(
        job(code, env={"WHO": "eval"}, gpus=2), on_line=seen.line, on_note=seen.note
    )
    assert ended.exit_code == 0
    assert seen.lines[:3] == ["who=eval", "gpus=0,1", "secret=absent"]
    workdir = Path(seen.lines[3].removeprefix("cwd="))
    assert workdir.name == "job-1" and not workdir.exists()  # removed after the run

    none = Seen()
    await runner.run_to_end(
        job("import os; print(repr(os.environ['CUDA_VISIBLE_DEVICES']))"),
        on_line=none.line,
        on_note=none.note,
    )
    assert none.lines == ["''"]  # no GPUs asked for: none visible
    chosen = Seen()
    await runner.run_to_end(
        job(
            "import os; print(os.environ['CUDA_VISIBLE_DEVICES'])",
            env={"CUDA_VISIBLE_DEVICES": "3"},
        ),
        on_line=chosen.line,
        on_note=chosen.note,
    )
    assert chosen.lines == ["3"]


async def test_past_its_timeout_the_job_is_terminated_then_killed(tmp_path: Path) -> None:
    runner = LocalJobRunner(folder=tmp_path / "job-runs", stop_grace_s=0.2)
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ignoring SIGTERM', flush=True)\n"
        "time.sleep(600)\n"
    )
    seen = Seen()
    ended = await asyncio.wait_for(
        runner.run_to_end(job(code, timeout_s=1.0), on_line=seen.line, on_note=seen.note), 30
    )
    assert ended.timed_out
    assert ended.exit_code == 137  # SIGKILL, after SIGTERM was ignored for the grace
    assert ended.message == "ended by SIGKILL after its timeout"
    assert seen.lines == ["ignoring SIGTERM"]
    assert any("past its timeout of 1s" in note for note in seen.notes)


async def test_cancelling_the_run_stops_the_whole_session(runner: LocalJobRunner) -> None:
    code = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([{PY!r}, '-c', 'import time; time.sleep(600)'])\n"
        "import os\n"
        "print(f'pids {os.getpid()} {child.pid}', flush=True)\n"
        "time.sleep(600)\n"
    )
    seen = Seen()
    running = asyncio.create_task(
        runner.run_to_end(job(code), on_line=seen.line, on_note=seen.note)
    )
    pids = [int(p) for p in (await seen.line_starting("pids")).split()[1:]]
    assert not any(_gone(pid) for pid in pids)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    for pid in pids:
        await eventually(lambda pid=pid: _async(_gone(pid)), what=f"pid {pid} to be gone")


async def test_what_the_job_leaves_running_is_killed_when_it_ends(runner: LocalJobRunner) -> None:
    code = (
        "import subprocess\n"
        f"child = subprocess.Popen([{PY!r}, '-c', 'import time; time.sleep(600)'])\n"
        "print(f'left {child.pid}', flush=True)\n"
    )
    seen = Seen()
    ended = await runner.run_to_end(job(code), on_line=seen.line, on_note=seen.note)
    assert ended.exit_code == 0
    left = int(seen.lines[0].split()[1])
    await eventually(lambda: _async(_gone(left)), what="the left-over child to be gone")


async def test_a_run_left_by_a_dead_daemon_is_stopped_before_the_job_runs_again(
    runner: LocalJobRunner, tmp_path: Path
) -> None:
    marker = f"{(tmp_path / 'job-runs').resolve()}::job::job-1"
    left, identity = procs.spawn(
        [PY, "-c", "import time; time.sleep(600)"],
        env=procs.child_env({}, marker=marker),
        log_path=tmp_path / "left.log",
        cwd=tmp_path,
    )
    try:
        seen = Seen()
        ended = await runner.run_to_end(job("print('again')"), on_line=seen.line, on_note=seen.note)
        assert ended.exit_code == 0 and seen.lines == ["again"]
        assert any(f"left by an earlier daemon (pid {identity.pid})" in n for n in seen.notes)
        left.wait(timeout=10)
        assert not procs.is_running(identity)
    finally:
        if left.poll() is None:
            left.kill()
            left.wait()


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (
            protocol.JobRequest(name="j", image="busybox:1.36", command=("true",)),
            "a local cluster runs a command on its host and cannot run the image 'busybox:1.36'",
        ),
        (
            protocol.JobRequest(name="j", image=None, command=(), args=("x",)),
            "a local cluster runs `command` (then `args`) on its host; give command",
        ),
        (
            protocol.JobRequest(name="j", image=None, command=("/no/such/program",)),
            "cannot start '/no/such/program': No such file or directory",
        ),
    ],
)
async def test_a_job_that_cannot_run_here_is_refused(
    runner: LocalJobRunner, request_: protocol.JobRequest, message: str
) -> None:
    seen = Seen()
    with pytest.raises(
        protocol.InvalidJobError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        await runner.run_to_end(request_, on_line=seen.line, on_note=seen.note)


async def _async(value: bool) -> bool:
    return value


def test_the_local_driver_hands_out_its_runner(tmp_path: Path) -> None:
    from reconciler.drivers.clusters.local import LocalClusterDriver

    driver = LocalClusterDriver(state_dir=tmp_path)
    assert isinstance(driver, protocol.JobRunnerSource)
    assert isinstance(driver.job_runner(), protocol.JobRunner)
    assert os.path.basename(driver.job_runner()._folder) == "job-runs"
