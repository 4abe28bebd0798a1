"""The deployment and cluster steps over the local driver, with the tiny real server."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from reconciler.drivers.clusters.local import LocalClusterDriver
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext, StepImpl, StepLog, StepServices
from reconciler.steps.endpoints import ModelFacts, register_endpoint_steps
from tests.clusters.local.conftest import get_json

MakeDriver = Callable[[], LocalClusterDriver]


class Facts:
    def __init__(self, script: Path, *, model_ready: bool = True) -> None:
        self.script = script
        self.model_ready = model_ready

    def model(self, name: str) -> ModelFacts | None:
        return (
            ModelFacts(path="/models/tiny", parameters="135M", dtype="float16")
            if (self.model_ready)
            else None
        )

    def template(self, name: str) -> Mapping[str, Any] | None:
        if name != "tiny-server":
            return None
        return {
            "modality": "llm",
            "runtime": {
                "command": [sys.executable, str(self.script), "{port}"],
                "env": {"GREETING": "{model_path}"},
                "health_path": "/health",
            },
        }

    def cluster(self, name: str) -> Mapping[str, Any] | None:
        return {"driver": "local"} if name == "here" else None

    def credential(self, name: str) -> Mapping[str, Any] | None:
        return None


def context(step_type: str, inputs: dict[str, Any]) -> StepContext:
    return StepContext(
        execution_id="e1",
        node_id=step_type,
        step_type=step_type,
        inputs=inputs,
        attempt=1,
        params={},
        object_key="Deployment/tiny",
        revision="r1",
        cluster="here",
        log=StepLog(prefix=step_type),
        services=StepServices(readiness_poll_interval_s=0.05),
    )


class Registry(dict[str, StepImpl]):
    def register(self, step_type: str, impl: StepImpl) -> None:
        self[step_type] = impl


SPEC: dict[str, Any] = {
    "deployment": "tiny",
    "model": "smol",
    "cluster": "here",
    "template": "tiny-server",
    "endpoint_name": "tiny endpoint",
    "deploy_config": {"concurrent_requests": 2, "avg_sequence_length": 8, "avg_context_length": 8},
    "ready_timeout_s": 30,
}


async def test_deploy_then_undeploy_records_the_endpoint_status(
    make_driver: MakeDriver, server_script: Path
) -> None:
    driver = make_driver()
    steps = Registry()
    register_endpoint_steps(steps, drivers={"here": driver}, facts=Facts(server_script))

    done = await steps["deploy_model"](context("deploy_model", dict(SPEC)))
    assert isinstance(done, outcomes.Done), done
    status = done.outputs["status"]
    url = status["endpoint_url"]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
    assert (status["workers"], status["ready_workers"], status["cluster"]) == (1, 1, "here")
    assert status["sizing"]["gpu_type"] is None and status["sizing"]["workers"] == 1
    assert (await get_json(f"{url}/whoami"))["greeting"] == "/models/tiny"

    checked = await steps["check_cluster"](context("check_cluster", {"cluster": "here"}))
    assert isinstance(checked, outcomes.Done) and checked.outputs["reachable"] is True

    scaled = await steps["scale_deployment"](context("scale_deployment", {**SPEC, "workers": 3}))
    assert isinstance(scaled, outcomes.Done), scaled
    scaled_status = scaled.outputs["status"]
    assert (scaled_status["workers"], scaled_status["ready_workers"]) == (3, 3)
    pids = {(await get_json(f"{url}/whoami"))["pid"] for _ in range(12)}
    assert len(pids) == 3, "the proxy spreads requests over the three workers"
    assert scaled.outputs["status"]["endpoint_url"] == url

    removed = await steps["undeploy_model"](context("undeploy_model", dict(SPEC)))
    assert removed == outcomes.Done({"removed": True})
    assert not (await driver.observe_endpoint("tiny")).exists


async def test_deploy_waits_for_the_model_and_names_missing_things(
    make_driver: MakeDriver, server_script: Path
) -> None:
    steps = Registry()
    driver = make_driver()
    register_endpoint_steps(
        steps, drivers={"here": driver}, facts=Facts(server_script, model_ready=False)
    )
    waiting = await steps["deploy_model"](context("deploy_model", dict(SPEC)))
    assert isinstance(waiting, outcomes.Retry) and waiting.reason.startswith("WaitingForModel")

    register_endpoint_steps(steps, drivers={"here": driver}, facts=Facts(server_script))
    missing = await steps["deploy_model"](context("deploy_model", {**SPEC, "template": "nope"}))
    assert missing == outcomes.Stalled("DeploymentTemplate/nope does not exist")
    nowhere = await steps["deploy_model"](context("deploy_model", {**SPEC, "cluster": "far"}))
    assert nowhere == outcomes.Stalled("Deployment/tiny: no driver for Cluster/far")
