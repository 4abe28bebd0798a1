"""Sizing keeps within the Cluster's ``gpu.count``: a plan never proposes more GPUs than the
Cluster declares, and says ``infeasible`` with both numbers when the targets need more."""

from __future__ import annotations

from typing import Any

from reconciler.core.diff import ObjectState, diff_states
from reconciler.core.plan import plan_changes
from reconciler.core.plan_render import render_text
from reconciler.core.sizing import gpus, roofline
from reconciler.core.sizing.roofline import SizingResult

LOAD = roofline.Load.from_deploy_config(
    {
        "concurrent_requests": 64,
        "avg_sequence_length": 200,
        "avg_context_length": 1000,
        "ttft": [1, 2000],
        "per_session_tokens_per_sec": [10, 1000],
        "e2e_latency": [1, 60],
    },
    defaults={},
)
SEVENTY_B = roofline.ModelShape(parameters=roofline.parse_parameters("70B"), dtype="bfloat16")
H100 = gpus.find_gpu("nvidia-h100")


def test_the_cheapest_shape_within_the_count_is_chosen() -> None:
    free = roofline.size(model=SEVENTY_B, gpu=H100, load=LOAD)
    bounded = roofline.size(model=SEVENTY_B, gpu=H100, load=LOAD, max_gpus=2)
    assert (bounded.workers, bounded.gpus_per_worker, bounded.feasible) == (1, 2, True)
    assert bounded == free  # two GPUs is what the targets need: the bound changes nothing


def test_targets_needing_more_gpus_than_the_cluster_has_are_infeasible() -> None:
    sized = roofline.size(model=SEVENTY_B, gpu=H100, load=LOAD, max_gpus=1)
    assert not sized.feasible
    assert sized.gap == (
        "GPUs: 1 worker(s) x 2 GPU(s) = 2 needed to meet the targets; the Cluster has 1 "
        "(spec.gpu.count)",
    )
    pinned = roofline.size(model=SEVENTY_B, gpu=H100, load=LOAD, workers=3, max_gpus=4)
    assert not pinned.feasible
    assert pinned.gap == (
        "GPUs: 3 worker(s) x 2 GPU(s) = 6 needed to meet the targets; the Cluster has 4 "
        "(spec.gpu.count)",
    )


def _state(kind: str, name: str, spec: dict[str, Any]) -> ObjectState:
    return ObjectState(kind, name, {"spec": spec}, f"{kind}-{name}-{hash(str(spec))}")


def test_a_plan_sizes_within_the_clusters_gpu_count() -> None:
    states = [
        _state(
            "Cluster",
            "small",
            {"driver": "kubernetes", "gpu": {"type": "nvidia-h100", "count": 1}},
        ),
        _state(
            "Model",
            "big",
            {
                "modality": "llm",
                "parameters": "70B",
                "dtype": "bfloat16",
                "source": {"provider_type": "hugging_face", "uri": "org/big"},
            },
        ),
        _state(
            "Deployment",
            "d",
            {
                "model": "big",
                "cluster": "small",
                "template": "gpus-left-to-sizing",  # no such template: sizing picks the GPUs
                "endpoint_name": "d",
                "deploy_config": {
                    "concurrent_requests": 64,
                    "avg_sequence_length": 200,
                    "avg_context_length": 1000,
                    "ttft": [1, 2000],
                },
                "workers": None,
            },
        ),
    ]
    desired = {state.key: state for state in states}
    plan = plan_changes(
        diff_states(desired, {}), desired=desired, current={}, revision="r", size=True
    )
    item = next(item for item in plan.items if item.key == "Deployment/d")
    assert isinstance(item.sizing, SizingResult) and not item.sizing.feasible
    line = next(x for x in render_text(plan).splitlines() if x.startswith("    sizing:"))
    assert line == (
        "    sizing: infeasible on H100: GPUs: 1 worker(s) x 2 GPU(s) = 2 needed to meet the "
        "targets; the Cluster has 1 (spec.gpu.count)"
    )
