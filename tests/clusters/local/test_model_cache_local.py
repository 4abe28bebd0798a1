"""A Model pre-pulled to the local cluster: its Deployment starts without a download.

The Model's chain as the daemon runs it (add_model, scan_model, then cache_model for its
``cache``) against the loopback hub double; the daemon's own EndpointFacts read its status
and record. cache_model leaves the scanned files in the shared model cache, and the
Deployment's deploy_model then asks the hub for nothing: it serves that folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconciler.drivers.clusters.local import LocalClusterDriver
from reconciler.drivers.models import huggingface
from reconciler.engine import outcomes
from reconciler.steps import models
from reconciler.steps.endpoints import register_endpoint_steps
from tests.clusters.local.conftest import get_json
from tests.clusters.local.test_hub_model_deploy import (  # noqa: F401
    COMMIT,
    DEPLOYMENT,
    Facts,
    Registry,
    _ctx,
    hub,
)
from tests.models.servers import Hub

MakeDriver = Callable[[], LocalClusterDriver]


async def test_a_cached_model_is_served_without_a_download_at_deploy_time(
    make_driver: MakeDriver,
    server_script: Path,
    tmp_path: Path,
    hub: tuple[Hub, str],  # noqa: F811
) -> None:
    app, base = hub
    services = models.ModelServices(cache_dir=tmp_path / "cache", hf_endpoint=base)
    spec: dict[str, Any] = {
        "source": {"provider_type": "hugging_face", "uri": "acme/tiny"},
        "cache": {"clusters": ["here"]},
    }
    facts = Facts(script=server_script, cache=services.cache_dir, model_spec=spec)
    driver = make_driver()
    steps = Registry()
    register_endpoint_steps(steps, drivers={"here": driver}, facts=facts)

    inputs = {**spec, "model": "smol"}
    added = await models.add_model(_ctx("add_model", inputs, services))
    scanned = await models.scan_model(_ctx("scan_model", inputs, services))
    cached = await steps["cache_model"](_ctx("cache_model", inputs, services))
    assert isinstance(added, outcomes.Done) and isinstance(scanned, outcomes.Done)
    assert isinstance(cached, outcomes.Done), cached
    root = huggingface.snapshot_folder(
        repo_id="acme/tiny", commit_sha=COMMIT, cache_dir=services.cache_dir / "hf"
    )
    assert cached.outputs["status"]["cache"] == {
        "here": {"driver": "local", "state": "ready", "path": str(root), "revision": COMMIT}
    }
    facts.status = {
        "phase": "Ready",
        **added.outputs["status"],
        **scanned.outputs["status"],
        **cached.outputs["status"],
    }

    before = len(app.requests)
    context = _ctx("deploy_model", dict(DEPLOYMENT), services)
    done = await steps["deploy_model"](context)
    assert isinstance(done, outcomes.Done), done
    assert app.requests[before:] == [], "nothing asked of the hub at deploy time"
    assert f"reusing the download at {root}" in context.log.text()
    assert done.outputs["status"]["model_cache"]["path"] == str(root)
    url = done.outputs["endpoint_url"]
    assert (await get_json(f"{url}/whoami"))["greeting"] == str(root)
