"""The k8s_job step on a local Cluster: real processes through the local driver's runner.

What it checks before running (GPUs within the Cluster's gpu.count, no image on a local
Cluster, a command to run), what it gives (the log's tail, the exit code, the JSON object
on the last line), how a failure and a timeout end, and that the job's output goes into
the step log as it comes.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from reconciler.drivers.clusters import local_processes as procs
from reconciler.drivers.clusters.local import LocalClusterDriver
from reconciler.engine import outcomes, step_runner
from reconciler.engine.context import StepContext, StepImpl, StepLog, StepServices
from reconciler.steps import jobs

PY = sys.executable


class Clusters:
    def __init__(self, specs: Mapping[str, Mapping[str, Any]]) -> None:
        self.specs = specs

    def cluster(self, name: str) -> Mapping[str, Any] | None:
        return self.specs.get(name)


class Registry(dict[str, StepImpl]):
    def register(self, step_type: str, impl: StepImpl) -> None:
        self[step_type] = impl


CLUSTERS = {
    "local": {"driver": "local"},
    "gpu-box": {"driver": "local", "gpu": {"type": "nvidia-l4", "count": 2}},
}


@pytest.fixture
async def k8s_job(tmp_path: Path) -> AsyncIterator[StepImpl]:
    driver = LocalClusterDriver(state_dir=tmp_path / "state")
    registry = Registry()
    jobs.register_job_steps(
        registry, drivers={name: driver for name in CLUSTERS}, facts=Clusters(CLUSTERS)
    )
    yield registry["k8s_job"]
    await driver.close()


def context(inputs: dict[str, Any], *, attempt: int = 1) -> StepContext:
    return StepContext(
        execution_id="exec-1",
        node_id="eval_job",
        step_type="k8s_job",
        inputs=inputs,
        attempt=attempt,
        params={},
        object_key="Workflow/nightly-eval",
        revision="r1",
        cluster=None,
        log=StepLog(prefix="test k8s_job"),
        services=StepServices(),
    )


def program(code: str, **inputs: Any) -> dict[str, Any]:
    return {"cluster": "local", "command": [PY, "-c"], "args": [code], **inputs}


async def test_a_job_that_succeeds_gives_its_log_exit_code_and_last_line_outputs(
    k8s_job: StepImpl,
) -> None:
    code = (
        "import json, os, sys\n"
        "print('evaluating ' + os.environ['ENDPOINT'], flush=True)\n"
        "print('a warning', file=sys.stderr)\n"
        "print(json.dumps({'accuracy': 0.93, 'passed': True}))\n"
    )
    ctx = context(program(code, env={"ENDPOINT": "http://127.0.0.1:9/v1", "ROUNDS": 3}))
    outcome = await k8s_job(ctx)
    assert outcome == outcomes.Done(
        {
            "logs": "evaluating http://127.0.0.1:9/v1\na warning\n"
            '{"accuracy": 0.93, "passed": true}\n',
            "exit_code": 0,
            "outputs": {"accuracy": 0.93, "passed": True},
        }
    )
    logged = ctx.log.text()
    assert "INFO | evaluating http://127.0.0.1:9/v1" in logged
    assert "INFO | a warning" in logged
    assert re.search(r"running job nightly-eval-eval-job-[0-9a-f]{10} on Cluster/local", logged)


async def test_a_last_line_that_is_not_a_json_object_gives_empty_outputs(
    k8s_job: StepImpl,
) -> None:
    outcome = await k8s_job(context(program("print('{\"a\": 1}'); print('[1, 2]'); print()")))
    assert isinstance(outcome, outcomes.Done)
    assert outcome.outputs["outputs"] == {}  # the last non-empty line is a list


async def test_a_job_that_fails_is_retried_saying_its_exit_code_and_last_output(
    k8s_job: StepImpl,
) -> None:
    outcome = await k8s_job(context(program("import sys; print('no data'); sys.exit(4)")))
    assert isinstance(outcome, outcomes.Retry)
    assert re.fullmatch(
        r"job nightly-eval-eval-job-[0-9a-f]{10} on Cluster/local exited with code 4; "
        r"last output: no data",
        outcome.reason,
    )


async def test_past_its_node_timeout_the_job_is_stopped_and_retried(k8s_job: StepImpl) -> None:
    code = "import time; print('working', flush=True); time.sleep(600)"
    outcome = await k8s_job(context(program(code, node_timeout="1s")))
    assert isinstance(outcome, outcomes.Retry)
    assert "ran past its node_timeout and was stopped (ended by SIGTERM after its timeout)" in (
        outcome.reason
    )


async def test_the_executors_step_timeout_kills_the_job_too(k8s_job: StepImpl) -> None:
    """The executor bounds a step by its node_timeout and cancels it: the process goes."""
    code = "import os, time; print(f'pid {os.getpid()}', flush=True); time.sleep(600)"
    ctx = context(program(code))
    outcome = await step_runner.run_step(k8s_job, ctx, timeout_s=2.0)
    assert outcome == outcomes.Retry("step timed out after 2s")
    [pid_line] = [line for line in ctx.log.lines if "| pid " in line]
    pid = int(pid_line.rsplit(" ", 1)[1])
    for _ in range(200):
        if procs.start_ticks(pid) is None:
            break
        await asyncio.sleep(0.05)
    assert procs.start_ticks(pid) is None


@pytest.mark.parametrize(
    ("inputs", "reason"),
    [
        (
            {"cluster": "gpu-box", "command": ["true"], "gpus": 4},
            "the job asks for 4 GPU(s) and Cluster/gpu-box has 2 (its spec.gpu.count)",
        ),
        (
            {"cluster": "local", "command": ["true"], "gpus": 1},
            "the job asks for 1 GPU(s) and Cluster/local has 0 (its spec.gpu.count)",
        ),
        (
            {"cluster": "local", "image": "ghcr.io/example/evaluator:1.4", "command": ["true"]},
            "Cluster/local is local: it runs `command` on its host and cannot run the image "
            "'ghcr.io/example/evaluator:1.4'; remove image, or use a kubernetes Cluster",
        ),
        (
            {"cluster": "local", "args": ["--fast"]},
            "Cluster/local is local: give the program to run in `command`",
        ),
        ({"cluster": "nowhere", "command": ["true"]}, "Cluster/nowhere does not exist"),
        (
            {"cluster": "local", "command": ["true"], "env": {"NESTED": {"a": 1}}},
            "input 'env.NESTED' must be a string, number or boolean, got {'a': 1}",
        ),
        (
            {"cluster": "local", "command": "python -c 1"},
            "input 'command' must be a list of strings, got 'python -c 1'",
        ),
    ],
)
async def test_a_job_that_cannot_run_as_asked_stalls(
    k8s_job: StepImpl, inputs: dict[str, Any], reason: str
) -> None:
    assert await k8s_job(context(inputs)) == outcomes.Stalled(reason)


async def test_gpus_within_the_clusters_count_are_made_visible(k8s_job: StepImpl) -> None:
    code = "import os; print(os.environ['CUDA_VISIBLE_DEVICES'])"
    outcome = await k8s_job(context({**program(code), "cluster": "gpu-box", "gpus": 2}))
    assert isinstance(outcome, outcomes.Done)
    assert outcome.outputs["logs"] == "0,1\n"


async def test_a_long_output_is_capped_in_the_step_log_and_tailed_in_the_outputs(
    k8s_job: StepImpl, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "MAX_STEP_LOG_BYTES", 100)
    monkeypatch.setattr(jobs, "LOGS_TAIL_BYTES", 40)
    code = "for i in range(50): print(f'line {i:02d}')\nprint('{\"done\": 50}')"
    ctx = context(program(code))
    outcome = await k8s_job(ctx)
    assert isinstance(outcome, outcomes.Done)
    kept = [line for line in ctx.log.lines if " | line " in line]
    assert len(kept) == 12  # 12 lines of 8 bytes fit in 100
    assert "39 more line(s) of output were not kept in the step log" in ctx.log.text()
    assert outcome.outputs["logs"] == 'line 47\nline 48\nline 49\n{"done": 50}\n'
    assert outcome.outputs["outputs"] == {"done": 50}


def test_job_names_are_dns_labels_fixed_per_attempt() -> None:
    first = jobs.job_name(workflow="nightly-eval", node="Eval_Job", execution="e1", attempt=1)
    assert re.fullmatch(r"nightly-eval-eval-job-[0-9a-f]{10}", first)
    assert first == jobs.job_name(
        workflow="nightly-eval", node="Eval_Job", execution="e1", attempt=1
    )
    assert first != jobs.job_name(
        workflow="nightly-eval", node="Eval_Job", execution="e1", attempt=2
    )
    long = jobs.job_name(workflow="w" * 63, node="n" * 63, execution="e", attempt=1)
    assert len(long) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", long)
