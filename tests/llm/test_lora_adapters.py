"""LoRA adapters on one base model, for real: the deploy step runs the built-in llama-cpp
template on the local driver (llama-cpp-python from its runtime virtualenv) serving a
tiny GGUF model with two adapters written by the ``gguf`` package.

Each adapter is listed by ``GET /v1/models`` and answers under its own name with its own
text (at temperature 0 the base and each adapter give different, repeatable answers);
removing one from the spec restarts the server without it (llama-cpp-python cannot load
or unload an adapter in a running server): it is no longer listed, a request naming it
gets the base model's answer, and its config entry is gone from disk.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

from reconciler.drivers.clusters.local import LocalClusterDriver
from reconciler.drivers.runtimes import RuntimeManager
from reconciler.drivers.server_configs import ServerConfigs
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext, StepImpl, StepLog, StepServices
from reconciler.steps.endpoints import ModelFacts, register_endpoint_steps
from tests.clusters.local.conftest import FAST
from tests.llm.conftest import RUNTIMES


class Facts:
    def __init__(self, folders: Mapping[str, Path]) -> None:
        self.folders = folders

    def model(self, name: str) -> ModelFacts | None:
        folder = self.folders.get(name)
        return None if folder is None else ModelFacts(path=str(folder))

    def template(self, name: str) -> Mapping[str, Any] | None:
        return None  # the built-in llama-cpp template

    def cluster(self, name: str) -> Mapping[str, Any] | None:
        return {"driver": "local"} if name == "here" else None

    def credential(self, name: str) -> Mapping[str, Any] | None:
        return None


class Registry(dict[str, StepImpl]):
    def register(self, step_type: str, impl: StepImpl) -> None:
        self[step_type] = impl


def context(step_type: str, inputs: dict[str, Any]) -> StepContext:
    return StepContext(
        execution_id="e1",
        node_id=step_type,
        step_type=step_type,
        inputs=inputs,
        attempt=1,
        params={},
        object_key="Deployment/chat",
        revision="r1",
        cluster="here",
        log=StepLog(prefix=step_type),
        services=StepServices(readiness_poll_interval_s=0.1),
    )


def spec(adapters: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "deployment": "chat",
        "model": "tiny",
        "cluster": "here",
        "template": "llama-cpp",
        "endpoint_name": "chat",
        "deploy_config": {
            "concurrent_requests": 1,
            "avg_sequence_length": 12,
            "avg_context_length": 32,
        },
        "adapters": adapters,
        "ready_timeout_s": 120,
    }


async def served(session: aiohttp.ClientSession, url: str) -> list[str]:
    async with session.get(f"{url}/models") as response:
        assert response.status == 200
        return [item["id"] for item in json.loads(await response.read())["data"]]


async def answer(session: aiohttp.ClientSession, url: str, model: str) -> str:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "write a query"}],
        "max_tokens": 12,
        "temperature": 0,
    }
    async with session.post(f"{url}/chat/completions", json=body) as response:
        assert response.status == 200, await response.text()
        reply = json.loads(await response.read())
    assert reply["usage"]["completion_tokens"] > 0
    text: str = reply["choices"][0]["message"]["content"]
    return text


async def test_two_adapters_answer_under_their_names_and_one_removed_is_freed(
    tmp_path: Path, llama_runtime_bin: Path, tiny_models: dict[str, Path]
) -> None:
    facts = Facts(
        {"tiny": tiny_models["base"], "sql-lora": tiny_models["sql"], "poet": tiny_models["poet"]}
    )
    driver = LocalClusterDriver(state_dir=tmp_path / "state", settings=FAST)
    configs = ServerConfigs(tmp_path / "server-configs")
    steps = Registry()
    register_endpoint_steps(
        steps,
        drivers={"here": driver},
        facts=facts,
        runtime_manager=RuntimeManager(root=RUNTIMES),
        configs=configs,
    )
    both = [{"name": "sql", "model": "sql-lora"}, {"name": "poet", "model": "poet"}]
    try:
        done = await steps["deploy_model"](context("deploy_model", spec(both)))
        assert isinstance(done, outcomes.Done), done
        assert done.outputs["status"]["adapters"] == ["sql", "poet"]
        url = done.outputs["endpoint_url"]
        first_pid = (await driver.observe_endpoint("chat")).message
        async with aiohttp.ClientSession() as session:
            assert await served(session, url) == ["chat", "sql", "poet"]
            base = await answer(session, url, "chat")
            sql = await answer(session, url, "sql")
            poet = await answer(session, url, "poet")
            assert len({base, sql, poet}) == 3, (base, sql, poet)
            assert await answer(session, url, "sql") == sql  # repeatable at temperature 0
            assert await answer(session, url, "chat") == base

            again = await steps["deploy_model"](
                context("deploy_model", spec([{"name": "sql", "model": "sql-lora"}]))
            )
            assert isinstance(again, outcomes.Done), again
            assert again.outputs["endpoint_url"] == url  # the same port, a new server
            assert (await driver.observe_endpoint("chat")).message != first_pid
            assert await served(session, url) == ["chat", "sql"]
            assert await answer(session, url, "sql") == sql
            assert await answer(session, url, "poet") == base  # unknown names get the base
        [config] = list(configs.root.glob("chat-*.json"))
        entries = json.loads(config.read_text())["models"]
        assert [entry["model_alias"] for entry in entries] == ["chat", "sql"]
        assert not any("poet" in json.dumps(entry) for entry in entries)
    finally:
        removed = await steps["undeploy_model"](context("undeploy_model", spec([])))
        await driver.close()
    assert removed == outcomes.Done({"removed": True})
    assert list(configs.root.glob("chat-*.json")) == []


async def test_an_adapter_whose_model_is_not_ready_holds_the_deploy(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    driver = LocalClusterDriver(state_dir=tmp_path / "state", settings=FAST)
    steps = Registry()
    register_endpoint_steps(
        steps,
        drivers={"here": driver},
        facts=Facts({"tiny": tiny_models["base"]}),
        runtime_manager=RuntimeManager(root=RUNTIMES),
        configs=ServerConfigs(tmp_path / "server-configs"),
    )
    try:
        waiting = await steps["deploy_model"](
            context("deploy_model", spec([{"name": "sql", "model": "sql-lora"}]))
        )
    finally:
        await driver.close()
    assert isinstance(waiting, outcomes.Retry)
    assert waiting.reason.startswith(
        "WaitingForModel: Deployment/chat: adapter sql: Model/sql-lora"
    )
    assert not (await driver.observe_endpoint("chat")).exists
