"""Throughput of the durable executor on a 1,000-node no-op DAG, against Dagster.

Runs the same DAG (chains of fan-out/fan-in blocks) through our executor with its SQLite
store on disk, then, when a Python with Dagster is at hand (default
``.venv-bench/bin/python``), through Dagster's ``execute_in_process`` with an ephemeral
instance in a subprocess of that Python. Without Dagster it reports ours alone and says
why. Usage::

    .venv/bin/python bench/bench_executor.py [--nodes 1000] [--repeat 3]
        [--compare-python .venv-bench/bin/python] [--json OUT] [--state-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BLOCK_WIDTH = 48  # parallel nodes between a block's head and tail


def bench_dag(nodes: int) -> list[tuple[str, list[str]]]:
    """(node id, upstream ids) for ``nodes`` nodes: head -> WIDTH parallel -> tail blocks."""
    dag: list[tuple[str, list[str]]] = []
    previous_tail: str | None = None
    block = 0
    while len(dag) < nodes:
        head = f"b{block}_head"
        dag.append((head, [previous_tail] if previous_tail else []))
        width = min(BLOCK_WIDTH, max(nodes - len(dag) - 1, 0))
        middle = [f"b{block}_n{i}" for i in range(width)]
        dag.extend((node, [head]) for node in middle)
        if len(dag) < nodes:
            tail = f"b{block}_tail"
            dag.append((tail, middle or [head]))
            previous_tail = tail
        block += 1
    return dag[:nodes]


def run_ours(nodes: int, repeat: int, *, state_parent: Path | None = None) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from reconciler.core.chains import Chain, StepNode
    from reconciler.engine.executor import Executor
    from reconciler.engine.store import Store
    from reconciler.steps.registry import default_registry

    steps = tuple(
        StepNode(id=node, type="noop", after=tuple(upstream)) for node, upstream in bench_dag(nodes)
    )

    async def once(state_dir: Path) -> float:
        store = Store(state_dir)
        executor = Executor(store=store, registry=default_registry())
        await executor.start()
        began = time.perf_counter()
        execution_id = executor.submit(
            Chain(
                kind="Workflow",
                name="bench",
                action="execute",
                revision="r1",
                spec_hash="h1",
                steps=steps,
            )
        )
        record = await executor.wait(execution_id)
        elapsed = time.perf_counter() - began
        assert record.status == "succeeded", record.error
        assert sum(1 for s in store.get_steps(execution_id) if s.status == "done") == nodes
        await executor.shutdown()
        store.close()
        return elapsed

    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="bench-executor-", dir=state_parent) as tmp:
            times.append(asyncio.run(once(Path(tmp))))
    best, median = min(times), statistics.median(times)
    return {
        "engine": "reconciler (SQLite WAL on disk)",
        "nodes": nodes,
        "runs_s": [round(t, 4) for t in times],
        "best_s": round(best, 4),
        "median_s": round(median, 4),
        "ms_per_step_median": round(median * 1000 / nodes, 4),
    }


def run_dagster(nodes: int, repeat: int) -> dict[str, Any]:
    """Run inside a Python that has Dagster (``--engine dagster``)."""
    import importlib
    import logging

    dg: Any = importlib.import_module("dagster")  # only in the comparison venv
    logging.getLogger("dagster").setLevel(logging.WARNING)

    def noop() -> None:
        return None

    noop_op = dg.op(name="noop_op", ins={"start": dg.In(dg.Nothing)}, out=dg.Out(dg.Nothing))(noop)

    def build() -> Any:
        dependencies: dict[Any, Any] = {}
        for node, upstream in bench_dag(nodes):
            invocation = dg.NodeInvocation(name="noop_op", alias=node)
            if upstream:
                dependencies[invocation] = {
                    "start": dg.MultiDependencyDefinition(
                        [dg.DependencyDefinition(u, "result") for u in upstream]
                    )
                }
            else:
                dependencies[invocation] = {}
        graph = dg.GraphDefinition(name="bench", node_defs=[noop_op], dependencies=dependencies)
        return graph.to_job(name="bench_job")

    began = time.perf_counter()
    job = build()
    define_s = time.perf_counter() - began
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        result = job.execute_in_process(
            instance=dg.DagsterInstance.ephemeral(),
            # Console logging at ERROR: printing a debug line per event is not the engine.
            run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
        )
        times.append(time.perf_counter() - began)
        assert result.success
    median = statistics.median(times)
    return {
        "engine": f"dagster {dg.__version__} (execute_in_process, ephemeral instance)",
        "nodes": nodes,
        "define_s": round(define_s, 4),
        "runs_s": [round(t, 4) for t in times],
        "best_s": round(min(times), 4),
        "median_s": round(median, 4),
        "ms_per_step_median": round(median * 1000 / nodes, 4),
    }


def compare(python: Path, nodes: int, repeat: int) -> dict[str, Any]:
    if not python.exists():
        return {"skipped": f"{python} does not exist (create it and pip install dagster)"}
    command = [str(python), __file__, "--engine", "dagster", "--nodes", str(nodes)]
    command += ["--repeat", str(repeat)]
    env = {**os.environ, "DAGSTER_HOME": tempfile.mkdtemp(prefix="bench-dagster-home-")}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        return {"skipped": f"dagster run failed (exit {done.returncode}): {' | '.join(tail)}"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--engine", choices=("all", "ours", "dagster"), default="all")
    parser.add_argument(
        "--compare-python", type=Path, default=REPO / ".venv-bench" / "bin" / "python"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--state-dir", type=Path, help="where the SQLite state goes (default: the system temp dir)"
    )
    args = parser.parse_args()
    if args.engine == "dagster":
        print(json.dumps(run_dagster(args.nodes, args.repeat)))
        return 0
    report: dict[str, Any] = {
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        ),
        "ours": run_ours(args.nodes, args.repeat, state_parent=args.state_dir),
    }
    if args.engine == "all":
        report["dagster"] = compare(args.compare_python, args.nodes, args.repeat)
        theirs = report["dagster"].get("median_s")
        if theirs:
            report["speedup_median"] = round(theirs / report["ours"]["median_s"], 1)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
