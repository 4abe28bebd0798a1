"""A process that runs one chain with the durable executor, for the kill -9 tests.

Its ``effect`` steps leave marker files (a log line per begin and end, and an
idempotent effect file); it can SIGKILL itself at chosen points or hang in a step so
the test kills it from outside. ``--mode resume`` restarts and finishes what is stored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reconciler.core import step_types
from reconciler.core.chains import Chain, StepNode
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext
from reconciler.engine.executor import Executor
from reconciler.engine.store import StepEnd, StepWrite, Store
from reconciler.steps.registry import default_registry

EFFECT = step_types.StepSignature(
    name="effect",
    required=frozenset(),
    optional=frozenset({"value"}),
    outputs=frozenset({"token"}),
)

CHAIN = Chain(
    kind="Workflow",
    name="crashy",
    action="execute",
    revision="r1",
    spec_hash="h1",
    steps=(
        StepNode(id="a", type="effect"),
        StepNode(id="b", type="effect", after=("a",), inputs={"value": "${{ a.token }}"}),
        StepNode(id="c", type="effect", after=("a",), inputs={"value": "c-${{ a.token }}"}),
        StepNode(id="d", type="effect", after=("b", "c"), inputs={"value": "${{ b.token }}"}),
        StepNode(id="e", type="effect", after=("d",), inputs={"value": "${{ d.token }}"}),
    ),
)


def wide_chain(width: int, *, blocks: int = 3) -> Chain:
    """``blocks`` times: head -> ``width`` parallel nodes -> tail, each node fed the token
    of its first upstream node (many steps end and start in the same rounds)."""
    steps: list[StepNode] = []
    previous: str | None = None
    for block in range(blocks):
        head = f"b{block}h"
        steps.append(wide_node(head, [previous] if previous else []))
        middle = [f"b{block}m{i}" for i in range(width)]
        steps.extend(wide_node(m, [head]) for m in middle)
        previous = f"b{block}t"
        steps.append(wide_node(previous, middle))
    return Chain(
        kind="Workflow",
        name="wide",
        action="execute",
        revision="r1",
        spec_hash="h1",
        steps=tuple(steps),
    )


def wide_node(node_id: str, after: list[str]) -> StepNode:
    inputs = {"value": f"${{{{ {after[0]}.token }}}}"} if after else {}
    return StepNode(id=node_id, type="effect", after=tuple(after), inputs=inputs)


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillingStore(Store):
    """A store that SIGKILLs the process right after a chosen step's end is committed
    (with whatever else its transaction held)."""

    kill_after_commit: str | None = None

    def record_steps(self, writes: Sequence[StepWrite]) -> None:
        super().record_steps(writes)
        ended = {w.node_id for w in writes if isinstance(w, StepEnd)}
        if self.kill_after_commit in ended:
            die()


def make_effect(markers: Path, args: argparse.Namespace) -> Any:
    async def effect(ctx: StepContext) -> outcomes.Outcome:
        log = markers / f"{ctx.node_id}.log"
        with log.open("a") as handle:
            handle.write(f"begin {os.getpid()} {ctx.attempt}\n")
        if args.hang_in == ctx.node_id:
            (markers / "hanging").write_text(ctx.node_id)
            await asyncio.sleep(3600)
        await asyncio.sleep(args.step_sleep)
        target = markers / f"{ctx.node_id}.effect"
        if not target.exists():  # idempotent: check, then act
            scratch = markers / f"{ctx.node_id}.effect.tmp"
            scratch.write_text(json.dumps(dict(ctx.inputs), sort_keys=True))
            scratch.replace(target)
        with log.open("a") as handle:
            handle.write(f"end {os.getpid()} {ctx.attempt}\n")
        if args.kill_in_step == ctx.node_id:
            die()
        return outcomes.Done({"token": f"{ctx.node_id}-{os.getpid()}-{uuid.uuid4().hex[:8]}"})

    return effect


async def main(args: argparse.Namespace) -> int:
    markers = Path(args.markers)
    store = KillingStore(args.state)
    store.kill_after_commit = args.kill_after_commit
    registry = default_registry()
    registry.register("effect", make_effect(markers, args), signature=EFFECT)
    executor = Executor(store=store, registry=registry, max_concurrent_per_cluster=args.slots)
    if args.mode == "run":
        execution_id = executor.submit(CHAIN if args.wide == 0 else wide_chain(args.wide))
        (markers / "submitted").write_text(execution_id)
        if args.kill_after_submit:
            die()
        await executor.start()
    else:
        (execution_id,) = await executor.start()
    (markers / "started").write_text(str(os.getpid()))
    record = await executor.wait(execution_id)
    await executor.shutdown()
    store.close()
    print(record.status)
    return 0 if record.status == "succeeded" else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--state", required=True)
    parser.add_argument("--markers", required=True)
    parser.add_argument("--mode", choices=("run", "resume"), required=True)
    parser.add_argument("--kill-after-submit", action="store_true")
    parser.add_argument("--kill-after-commit")
    parser.add_argument("--kill-in-step")
    parser.add_argument("--hang-in")
    parser.add_argument("--step-sleep", type=float, default=0.0)
    parser.add_argument("--wide", type=int, default=0, help="run wide_chain(WIDE) instead")
    parser.add_argument("--slots", type=int, default=8, help="max_concurrent_per_cluster")
    raise SystemExit(asyncio.run(main(parser.parse_args())))
