"""Per-step overhead and peak memory of the durable executor on 1,000- and 10,000-node DAGs.

Each size runs in a fresh subprocess (so peak RSS is that size's own), with the SQLite
store on disk in WAL mode: the same DAG shape as bench_executor.py (head -> 48 parallel
noop nodes -> tail, repeated). Reports wall time from submit to the final record, ms per
step, the process's CPU time per step over the same span (steadier than wall time on a
shared, loaded machine), peak RSS of the process (ru_maxrss) and the Python heap peak
(tracemalloc, in a separate run since tracing slows the executor). Goal: <= 0.2 ms per
step at 10,000 nodes.
Usage::

    .venv/bin/python bench/bench_dag_10k.py [--sizes 1000 10000] [--repeat 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

GOAL_MS_PER_STEP = 0.2


def _once(nodes: int, state_dir: Path, *, trace: bool) -> tuple[float, float, int]:
    from bench_executor import bench_dag

    from reconciler.core.chains import Chain, StepNode
    from reconciler.engine.executor import Executor
    from reconciler.engine.store import Store
    from reconciler.steps.registry import default_registry

    steps = tuple(
        StepNode(id=node, type="noop", after=tuple(upstream)) for node, upstream in bench_dag(nodes)
    )
    chain = Chain(
        kind="Workflow", name="bench", action="execute", revision="r1", spec_hash="h", steps=steps
    )

    async def go() -> tuple[float, float]:
        store = Store(state_dir)
        executor = Executor(store=store, registry=default_registry())
        await executor.start()
        began, cpu_began = time.perf_counter(), time.process_time()
        record = await executor.wait(executor.submit(chain))
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu_began
        assert record.status == "succeeded", record.error
        done = sum(1 for s in store.get_steps(record.id) if s.status == "done")
        assert done == nodes, done
        await executor.shutdown()
        store.close()
        return elapsed, cpu

    if trace:
        tracemalloc.start()
    elapsed, cpu = asyncio.run(go())
    heap_peak = tracemalloc.get_traced_memory()[1] if trace else 0
    return elapsed, cpu, heap_peak


def child(nodes: int, repeat: int) -> dict[str, Any]:
    times, cpus = [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="bench-dag-") as tmp:
            elapsed, cpu, _ = _once(nodes, Path(tmp), trace=False)
        times.append(elapsed)
        cpus.append(cpu)
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory(prefix="bench-dag-") as tmp:
        _, _, heap_peak = _once(nodes, Path(tmp), trace=True)
    median = statistics.median(times)
    return {
        "nodes": nodes,
        "runs_s": [round(t, 4) for t in times],
        "median_s": round(median, 4),
        "ms_per_step_median": round(median * 1000 / nodes, 4),
        "ms_per_step_best": round(min(times) * 1000 / nodes, 4),
        "cpu_ms_per_step_median": round(statistics.median(cpus) * 1000 / nodes, 4),
        "peak_rss_mib": round(rss_kib / 1024, 1),
        "python_heap_peak_mib": round(heap_peak / 2**20, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.repeat)))
        return 0
    results = []
    for size in args.sizes:
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(size), "--repeat", str(args.repeat)],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(result)
        verdict = "meets" if result["ms_per_step_median"] <= GOAL_MS_PER_STEP else "misses"
        print(
            f"{size:>6} nodes: median {result['median_s']:.3f} s, "
            f"{result['ms_per_step_median']:.4f} ms/step ({verdict} the {GOAL_MS_PER_STEP} ms "
            f"goal; CPU {result['cpu_ms_per_step_median']:.4f} ms/step), "
            f"peak RSS {result['peak_rss_mib']} MiB, Python heap peak "
            f"{result['python_heap_peak_mib']} MiB"
        )
    report = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": len(os.sched_getaffinity(0)),
        "results": results,
    }
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
