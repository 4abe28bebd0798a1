"""Push to status in Git, end to end, in a 10,000-spec repo (goal: <= 1 s worst case).

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
import sys
from reconciler.daemon import service
from reconciler.steps import basic, bookkeeping
from reconciler.steps.registry import StepRegistry

def reduced(**_ignored):
    registry = StepRegistry()
    registry.register("noop", basic.noop)
    registry.register("record_spec", bookkeeping.record_spec)
    registry.register("check_secret", bookkeeping.check_secret)
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
        and "phase: Succeeded" in text
    )


def log_lines(path: Path, since: int) -> list[dict[str, Any]]:
    lines = path.read_text(errors="replace").splitlines()[since:]
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-p2s-"))
    remote, clone = seed_repo(work, args.specs, args.files)
    (clone / "bench-status.yaml").write_text(WORKFLOW.format(round=0))
    git(clone, "add", "-A")
    git(clone, "commit", "--quiet", "-m", "bench workflow")
    git(clone, "push", "--quiet", "origin", "HEAD:main")
    state = work / "state"
    config = work / "reconciler.yaml"
    config.write_text(
        f"repo:\n  url: {remote}\n  branch: main\n  poll_interval: 1h\n"
        f"resync_interval: 24h\nstate_dir: {state}\nsecrets_dir: {work / 'secrets'}\n"
        "logging:\n  level: debug\n"
    )
    log_path = work / "daemon.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log_path.open("w") as log:
        daemon = subprocess.Popen(
            [sys.executable, "-c", DAEMON, str(config), *([args.profile] if args.profile else [])],
            stdout=log,
            stderr=log,
            env=env,
        )
    try:
        started = time.perf_counter()
        head = git(clone, "rev-parse", "HEAD")
        settled = wait_for(lambda: done_for(remote, head), timeout_s=args.settle_timeout)
        # Settled: the first status push with the workflow done; let the other chains end.
        time.sleep(args.quiet_s)
        print(f"repo: {args.specs} specs in {args.files} files + the bench workflow")
        print(f"settle after start: {settled - started:.1f} s (first status with the run)")
        results: list[float] = []
        if args.profile:
            daemon.send_signal(signal.SIGUSR1)
        for trial in range(1, args.trials + 1):
            since = len(log_path.read_text(errors="replace").splitlines())
            (clone / "bench-status.yaml").write_text(WORKFLOW.format(round=trial))
            git(clone, "commit", "--quiet", "-am", f"round {trial}")
            git(clone, "push", "--quiet", "origin", "HEAD:main")
            pushed = time.perf_counter()
            revision = git(clone, "rev-parse", "HEAD")
            seen = wait_for(lambda r=revision: done_for(remote, r), timeout_s=60)
            results.append(seen - pushed)
            time.sleep(args.quiet_s)
            parts = []
            for line in log_lines(log_path, since):
                if line.get("msg") == "cycle planned":
                    parts.append(
                        f"cycle(fetch {line.get('fetch_ms')} load {line.get('load_ms')} "
                        f"plan {line.get('plan_ms')} [diff {line.get('diff_ms')} "
                        f"submit {line.get('submit_ms')}] ms, submitted {line.get('submitted')})"
                    )
                elif line.get("msg") == "status published":
                    parts.append(
                        f"status({line.get('files')} files: collect {line.get('collect_ms')} "
                        f"publish {line.get('publish_ms')} ms)"
                    )
                elif line.get("msg") == "execution succeeded":
                    parts.append(f"execution {line.get('duration_s')} s")
            print(f"trial {trial}: {results[-1]:.3f} s  <- " + "; ".join(parts))
        print(
            f"push -> status in Git: median {statistics.median(results):.3f} s, "
            f"max {max(results):.3f} s over {len(results)} trials"
        )
        if args.profile:
            daemon.send_signal(signal.SIGUSR2)
            wait_for(lambda: Path(args.profile).exists(), timeout_s=30)
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=7)
    parser.add_argument("--specs", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=1_000)
    parser.add_argument("--settle-timeout", type=float, default=600.0)
    parser.add_argument(
        "--profile", help="write the daemon loop's cProfile stats over the trials here"
    )
    parser.add_argument("--quiet-s", type=float, default=2.0, help="pause between trials")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
