"""Commit to plan start for one changed spec in a 10,000-spec local repo (goal <= 1 s).

A bare remote on disk holds the specs of bench/gen_specs.py; a clone pushes one changed
file; the daemon's own parts (GitSource, the blob-cached SnapshotLoader, diff, plan) run
one cycle. Two ways in: (a) a direct trigger, as the HTTP API or a webhook gives, timed
from the push's return; (b) the daemon's watch of the local repo's refs (watchfiles),
timed from the push's return to plan start. The registry is empty, so the plan submits
nothing and the machine measures only the path to plan start.
Usage: .venv/bin/python bench/bench_commit_to_plan.py [--trials 5] [--specs 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_specs import generate

from reconciler.daemon.reconcile import Reconciler
from reconciler.daemon.snapshot import SnapshotLoader
from reconciler.drivers.git_source import GitSource
from reconciler.drivers.ref_watch import watch_refs
from reconciler.engine.executor import Executor
from reconciler.engine.store import Store
from reconciler.steps.registry import StepRegistry

GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, check=True)
    return done.stdout.decode().strip()


def seed_repo(work: Path, specs: int, files: int) -> tuple[Path, Path]:
    remote = work / "remote.git"
    clone = work / "clone"
    git(work, "init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    generate(clone, specs=specs, files=files)
    git(clone, "init", "--quiet", "--initial-branch=main")
    git(clone, "remote", "add", "origin", str(remote))
    git(clone, "add", "-A")
    git(clone, "commit", "--quiet", "-m", "seed")
    git(clone, "push", "--quiet", "origin", "HEAD:main")
    return remote, clone


def change_one_file(clone: Path, trial: int) -> None:
    target = next(iter(sorted((clone / "platform" / "projects").glob("*.yaml"))))
    text = target.read_text()
    target.write_text(text.replace("description:", f"description: trial {trial}", 1))
    git(clone, "commit", "--quiet", "-am", f"trial {trial}")


def push(clone: Path) -> float:
    git(clone, "push", "--quiet", "origin", "HEAD:main")
    return time.perf_counter()


async def run(args: argparse.Namespace) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="bench-c2p-"))
    remote, clone = seed_repo(work, args.specs, args.files)
    store = Store(work / "state.db")
    registry = StepRegistry()
    executor = Executor(store=store, registry=registry)
    await executor.start()
    source = GitSource(str(remote), "main", work / "source")
    reconciler = Reconciler(
        source=source,
        loader=SnapshotLoader(source=source),
        store=store,
        executor=executor,
        registry=registry,
        publisher=None,
    )
    started = time.perf_counter()
    cold = await reconciler.cycle()
    cold_s = time.perf_counter() - started
    assert cold.valid, "the generated repo must validate"

    direct: list[float] = []
    parsed: list[int] = []
    for trial in range(args.trials):
        change_one_file(clone, trial)
        pushed = push(clone)
        report = await reconciler.cycle()
        assert report.plan_started_at is not None
        direct.append(report.plan_started_at - pushed)
        parsed.append(report.files_parsed)

    watched: list[float] = []
    stop = asyncio.Event()
    events = watch_refs(remote, stop_event=stop, branches={"main"})
    for trial in range(args.trials):
        change_one_file(clone, 100 + trial)
        pushed_at: list[float] = []
        waiter = asyncio.ensure_future(events.__anext__())
        await asyncio.sleep(0.05)
        pushed_at.append(await asyncio.to_thread(push, clone))
        await waiter
        report = await reconciler.cycle()
        assert report.plan_started_at is not None
        watched.append(report.plan_started_at - pushed_at[0])
    stop.set()
    await executor.shutdown()
    store.close()
    return {
        "specs": args.specs,
        "files": args.files,
        "cold_cycle_s": cold_s,
        "direct": direct,
        "watched": watched,
        "parsed": parsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--specs", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=1_000)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    direct = result["direct"]
    watched = result["watched"]
    assert isinstance(direct, list) and isinstance(watched, list)
    print(f"repo: {result['specs']} specs in {result['files']} files")
    print(f"cold first cycle (clone + load + plan everything): {result['cold_cycle_s']:.2f} s")
    print(f"files re-parsed per one-file commit: {result['parsed']}")
    print(
        "commit to plan start, direct trigger (API/webhook): "
        f"median {statistics.median(direct):.3f} s, max {max(direct):.3f} s"
    )
    print(
        "commit to plan start, local ref watch (watchfiles): "
        f"median {statistics.median(watched):.3f} s, max {max(watched):.3f} s"
    )


if __name__ == "__main__":
    main()
