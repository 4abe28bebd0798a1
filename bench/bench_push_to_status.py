"""Push to status in Git, end to end, in a 10,000-spec repo (goal: <= 1 s worst case).

``--backlog``: the repo is bench/backlog_specs.py's (2,500 Models that stall, 5,000
Deployments waiting on them, the rest settling Ready: 10,000 specs) and the real model and
endpoint steps run; the first push goes 3 s after the first status appears, while the
start's backlog is still being worked through (goal: worst of 5 <= 1 s, median <= 0.3 s).
``--cpu-compare``: the daemon's CPU for one changed object, in the same 10,000-spec repo
with 0 and with 7,500 objects waiting (goal: within 1.5x).

A bare remote on disk holds bench/gen_specs.py's specs (every kind) plus one
``on_change`` Workflow with a single noop node. A real daemon process (``reconciler run``)
watches the remote through its local ref watch and publishes status to
``reconciler/status`` of the same remote. After it settles, each trial pushes a change of
only that workflow's ``user_params`` from a clone and times, from the push's return, until
the workflow's status file on ``reconciler/status`` names the new revision as succeeded.

The daemon's step registry is reduced to noop, record_spec and check_secret (models,
deployments and k8s jobs then report NoChainYet instead of reaching for a network): the
status tree still holds one file per object, so every status commit works over a
10,000-file tree, and the measured path is the daemon's own (trigger, fetch, load, plan,
execute, status, commit, push). Where the time goes comes from the daemon's debug log:
each cycle's fetch/load/plan times and each status flush's collect/publish times.

Usage: .venv/bin/python bench/bench_push_to_status.py [--trials 7] [--specs 10000]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from backlog_specs import SECRET as BACKLOG_SECRET
from backlog_specs import generate as generate_backlog
from bench_commit_to_plan import git, seed_repo

WORKFLOW = """apiVersion: reconciler/v1
kind: Workflow
metadata:
  name: bench-status
spec:
  description: One noop node, run on every change.
  trigger: on_change
  user_params:
    round: {round}
  workflows:
    provision:
      nodes:
        - id: only
          type: noop
          user_inputs: {{}}
"""

DAEMON = """
import os, sys
from reconciler.daemon import service
from reconciler.steps import basic, bookkeeping
from reconciler.steps.registry import StepRegistry

def reduced(**kw):
    registry = StepRegistry()
    registry.register("noop", basic.noop)
    registry.register("record_spec", bookkeeping.record_spec)
    registry.register("check_secret", bookkeeping.check_secret)
    if os.environ.get("BENCH_REAL_STEPS"):  # --backlog: Models and Deployments run for real
        from reconciler.steps import endpoints, models
        models.register_model_steps(registry)
        endpoints.register_endpoint_steps(registry, drivers=kw["drivers"], facts=kw["facts"])
    return registry

service.build_registry = reduced
from reconciler.cli.main import main
argv = ["run", "--config", sys.argv[1], "--log-format", "json"]
if len(sys.argv) > 2:  # --profile PATH: the event loop thread's profile, SIGUSR1 to SIGUSR2
    import cProfile, signal
    profile = cProfile.Profile()
    signal.signal(signal.SIGUSR1, lambda *_: profile.enable())
    signal.signal(signal.SIGUSR2, lambda *_: (profile.disable(), profile.dump_stats(sys.argv[2])))
sys.exit(main(argv))
"""

STATUS_PATH = "status/workflows/bench-status.yaml"


def status_of(remote: Path) -> str | None:
    done = subprocess.run(
        ["git", "cat-file", "blob", f"reconciler/status:{STATUS_PATH}"],
        cwd=remote,
        capture_output=True,
        check=False,
    )
    return done.stdout.decode() if done.returncode == 0 else None


def wait_for(predicate: Any, *, timeout_s: float, every_s: float = 0.01) -> float:
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if predicate():
            return time.perf_counter()
        time.sleep(every_s)
    raise TimeoutError(f"not within {timeout_s} s")


def done_for(remote: Path, revision: str) -> bool:
    text = status_of(remote)
    return (
        text is not None
        and f"observed_revision: {revision}" in text
        and "phase: Ready" in text
        and "reason: Succeeded" in text
    )


def status_branch_exists(remote: Path) -> bool:
    done = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", "reconciler/status"],
        cwd=remote,
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def cpu_seconds(pid: int) -> float:
    """CPU the process and its waited-for children (git) used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def log_lines(path: Path, since: int) -> list[dict[str, Any]]:
    lines = path.read_text(errors="replace").splitlines()[since:]
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def make_repo(work: Path, args: argparse.Namespace, *, waiting: int | None) -> tuple[Path, Path]:
    """The remote and a clone: gen_specs' repo, or (``waiting`` given) backlog_specs' with
    that many objects waiting (a third stalled Models, two thirds Deployments on them)."""
    if waiting is None:
        remote, clone = seed_repo(work, args.specs, args.files)
    else:
        remote, clone = work / "remote.git", work / "clone"
        git(work, "init", "--quiet", "--bare", "--initial-branch=main", str(remote))
        stalled = waiting // 3
        generate_backlog(clone, total=args.specs, stalled=stalled, waiting=waiting - stalled)
        git(clone, "init", "--quiet", "--initial-branch=main")
        git(clone, "remote", "add", "origin", str(remote))
    (clone / "bench-status.yaml").write_text(WORKFLOW.format(round=0))
    git(clone, "add", "-A")
    git(clone, "commit", "--quiet", "-m", "bench workflow")
    git(clone, "push", "--quiet", "origin", "HEAD:main")
    return remote, clone


def start_daemon(
    work: Path, remote: Path, args: argparse.Namespace, *, real_steps: bool
) -> tuple[subprocess.Popen[bytes], Path]:
    state = work / "state"
    secrets = work / "secrets"
    secrets.mkdir(exist_ok=True)
    (secrets / BACKLOG_SECRET).write_text("not-a-real-key\n")
    config = work / "reconciler.yaml"
    config.write_text(
        f"repo:\n  url: {remote}\n  branch: main\n  poll_interval: 1h\n"
        f"resync_interval: 24h\nstate_dir: {state}\nsecrets_dir: {secrets}\n"
        "logging:\n  level: debug\n"
    )
    log_path = work / "daemon.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if real_steps:
        env["BENCH_REAL_STEPS"] = "1"
    with log_path.open("w") as log:
        daemon = subprocess.Popen(
            [sys.executable, "-c", DAEMON, str(config), *([args.profile] if args.profile else [])],
            stdout=log,
            stderr=log,
            env=env,
        )
    return daemon, log_path


def stop_daemon(daemon: subprocess.Popen[bytes]) -> None:
    daemon.terminate()
    try:
        daemon.wait(timeout=60)
    except subprocess.TimeoutExpired:
        daemon.kill()


def push_round(clone: Path, remote: Path, trial: int) -> tuple[float, float, str]:
    """Push a change of the bench workflow only; (push returned, status seen, revision)."""
    (clone / "bench-status.yaml").write_text(WORKFLOW.format(round=trial))
    git(clone, "commit", "--quiet", "-am", f"round {trial}")
    git(clone, "push", "--quiet", "origin", "HEAD:main")
    pushed = time.perf_counter()
    PUSHED_WALL[0] = time.time()
    revision = git(clone, "rev-parse", "HEAD")
    seen = wait_for(lambda: done_for(remote, revision), timeout_s=120)
    return pushed, seen, revision


PUSHED_WALL = [0.0]
"""The wall-clock time the last push returned (the daemon's log stamps are wall time)."""


def _offset(line: dict[str, Any], pushed_wall: float | None) -> str:
    """``@+123ms``: when the daemon logged ``line``, after the push returned."""
    if pushed_wall is None or not isinstance(line.get("ts"), str):
        return ""
    stamp = datetime.datetime.fromisoformat(line["ts"]).timestamp()
    return f"@{(stamp - pushed_wall) * 1000:+.0f}ms "


def where_time_went(log_path: Path, since: int, pushed_wall: float | None = None) -> str:
    parts = []
    for line in log_lines(log_path, since):
        at = _offset(line, pushed_wall)
        if line.get("msg") == "revision loaded":
            parts.append(
                f"{at}load(fetch {line.get('fetch_ms')} load {line.get('load_ms')} "
                f"diff {line.get('diff_ms')} ms, enqueued {line.get('enqueued')})"
            )
        elif line.get("msg") == "status published":
            parts.append(
                f"{at}status({line.get('files')} files: collect {line.get('collect_ms')} "
                f"publish {line.get('publish_ms')} ms)"
            )
        elif line.get("msg") == "execution succeeded" and "bench-status" in str(line.get("object")):
            parts.append(f"{at}execution {line.get('duration_s')} s")
    return "; ".join(parts)


def run(args: argparse.Namespace) -> None:
    if args.cpu_compare:
        cpu_compare(args)
        return
    work = Path(tempfile.mkdtemp(prefix="bench-p2s-"))
    remote, clone = make_repo(work, args, waiting=7_500 if args.backlog else None)
    daemon, log_path = start_daemon(work, remote, args, real_steps=args.backlog)
    try:
        started = time.perf_counter()
        head = git(clone, "rev-parse", "HEAD")
        if args.backlog:
            # Push while the start's backlog is still being worked through.
            first = wait_for(lambda: status_branch_exists(remote), timeout_s=args.settle_timeout)
            print(f"first status commit {first - started:.1f} s after start")
            time.sleep(3.0)
        else:
            settled = wait_for(lambda: done_for(remote, head), timeout_s=args.settle_timeout)
            print(f"settle after start: {settled - started:.1f} s (first status with the run)")
            time.sleep(args.quiet_s)
        kind = "backlog_specs (7,500 waiting)" if args.backlog else "gen_specs"
        print(f"repo: {args.specs} specs ({kind}) + the bench workflow")
        results: list[float] = []
        if args.profile:
            daemon.send_signal(signal.SIGUSR1)
        for trial in range(1, args.trials + 1):
            since = len(log_path.read_text(errors="replace").splitlines())
            pushed, seen, _ = push_round(clone, remote, trial)
            results.append(seen - pushed)
            time.sleep(args.quiet_s)
            went = where_time_went(log_path, since, PUSHED_WALL[0])
            print(f"trial {trial}: {results[-1]:.3f} s  <- {went}")
        print(
            f"push -> status in Git: median {statistics.median(results):.3f} s, "
            f"max {max(results):.3f} s over {len(results)} trials"
        )
        if args.profile:
            daemon.send_signal(signal.SIGUSR2)
            wait_for(lambda: Path(args.profile).exists(), timeout_s=30)
    finally:
        stop_daemon(daemon)


def settle(remote: Path, revision: str, daemon: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Wait until ``revision`` is applied and the daemon's CPU has gone quiet."""
    wait_for(lambda: done_for(remote, revision), timeout_s=timeout_s)
    last = cpu_seconds(daemon.pid)
    while True:
        time.sleep(1.0)
        now = cpu_seconds(daemon.pid)
        if now - last < 0.05:
            return
        last = now


def cpu_compare(args: argparse.Namespace) -> None:
    """CPU of one changed object's push, beside 0 and beside 7,500 waiting objects."""
    per_push: dict[int, list[float]] = {}
    for waiting in (0, 7_500):
        work = Path(tempfile.mkdtemp(prefix=f"bench-cpu-{waiting}-"))
        remote, clone = make_repo(work, args, waiting=waiting)
        daemon, _log = start_daemon(work, remote, args, real_steps=True)
        try:
            settle(remote, git(clone, "rev-parse", "HEAD"), daemon, args.settle_timeout)
            samples: list[float] = []
            for trial in range(1, args.trials + 1):
                before = cpu_seconds(daemon.pid)
                _pushed, _seen, revision = push_round(clone, remote, trial)
                settle(remote, revision, daemon, 120)
                samples.append(cpu_seconds(daemon.pid) - before)
            per_push[waiting] = samples
            print(
                f"{waiting:>5} waiting: CPU per push median "
                f"{statistics.median(samples) * 1000:.0f} ms ("
                + ", ".join(f"{x * 1000:.0f}" for x in samples)
                + ")"
            )
        finally:
            stop_daemon(daemon)
    ratio = statistics.median(per_push[7_500]) / statistics.median(per_push[0])
    print(f"ratio 7,500 waiting / 0 waiting: {ratio:.2f}x (goal <= 1.5x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=7)
    parser.add_argument("--specs", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=1_000)
    parser.add_argument("--settle-timeout", type=float, default=900.0)
    parser.add_argument(
        "--profile", help="write the daemon loop's cProfile stats over the trials here"
    )
    parser.add_argument("--quiet-s", type=float, default=2.0, help="pause between trials")
    parser.add_argument("--backlog", action="store_true", help="the backlog mode (see above)")
    parser.add_argument(
        "--cpu-compare", action="store_true", help="CPU per push, 0 vs 7,500 waiting"
    )
    run(parser.parse_args())


if __name__ == "__main__":
    main()
