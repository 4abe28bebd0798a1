"""A plan shows each self-hosted Deployment's proposed shape against its SLOs.

From the specs alone: the Model's parameters and dtype, the Cluster's GPU type, the
template's GPUs per worker and the Deployment's deploy_config. A shape that fits prints
its predicted TTFT, tokens/s and latency; none fitting prints ``infeasible`` with the gap;
a Model without parameters says the daemon sizes it later; a cloud model is not sized.
"""

from __future__ import annotations

from typing import Any

from reconciler.core.diff import ObjectState, diff_states
from reconciler.core.plan import plan_changes
from reconciler.core.plan_render import plan_to_json, render_text
from reconciler.core.sizing.roofline import SizingResult


def _state(kind: str, name: str, spec: dict[str, Any]) -> ObjectState:
    return ObjectState(kind, name, {"spec": spec}, f"{kind}-{name}-{hash(str(spec))}")


def _repo(*, parameters: str | None, dtype: str | None, gpu: str, ttft: list[int]) -> dict:
    model_spec: dict[str, Any] = {
        "modality": "llm",
        "source": {"provider_type": "hugging_face", "uri": "org/model"},
    }
    if parameters is not None:
        model_spec["parameters"] = parameters
    if dtype is not None:
        model_spec["dtype"] = dtype
    states = [
        _state("Cluster", "gpus", {"driver": "kubernetes", "gpu": {"type": gpu, "count": 8}}),
        _state("Model", "m", model_spec),
        _state(
            "Deployment",
            "d",
            {
                "model": "m",
                "cluster": "gpus",
                "template": "vllm",
                "endpoint_name": "d",
                "deploy_config": {
                    "concurrent_requests": 8,
                    "avg_sequence_length": 200,
                    "avg_context_length": 1000,
                    "ttft": ttft,
                    "per_session_tokens_per_sec": [10, 1000],
                    "e2e_latency": [1, 60],
                },
                "workers": None,
            },
        ),
    ]
    return {state.key: state for state in states}


def _item(desired: dict) -> Any:
    plan = plan_changes(
        diff_states(desired, {}), desired=desired, current={}, revision="r", size=True
    )
    return plan, next(item for item in plan.items if item.key == "Deployment/d")


def test_a_shape_that_fits_prints_its_predictions() -> None:
    desired = _repo(parameters="8B", dtype="bfloat16", gpu="nvidia-h100", ttft=[1, 2000])
    plan, item = _item(desired)
    assert isinstance(item.sizing, SizingResult) and item.sizing.feasible
    assert item.sizing.gpu_type is not None and "H100" in item.sizing.gpu_type
    line = next(x for x in render_text(plan).splitlines() if x.startswith("    sizing:"))
    assert "worker(s) x" in line and "predicted TTFT" in line and "tokens/s" in line
    sizing = next(i for i in plan_to_json(plan)["items"] if i["object"] == "Deployment/d")["sizing"]
    assert sizing["feasible"] is True and sizing["predicted"]["ttft_ms"] > 0


def test_no_shape_meeting_the_targets_is_infeasible_with_the_gap() -> None:
    desired = _repo(parameters="70B", dtype="bfloat16", gpu="nvidia-l4", ttft=[1, 2])
    plan, item = _item(desired)
    assert isinstance(item.sizing, SizingResult) and not item.sizing.feasible
    assert item.sizing.gap
    line = next(x for x in render_text(plan).splitlines() if x.startswith("    sizing:"))
    assert line.startswith("    sizing: infeasible on ")


def test_a_model_without_parameters_is_sized_by_the_daemon_later() -> None:
    desired = _repo(parameters=None, dtype=None, gpu="nvidia-h100", ttft=[1, 2000])
    _, item = _item(desired)
    assert isinstance(item.sizing, str) and "gives no parameters and dtype" in item.sizing


def test_a_plan_without_size_leaves_sizing_out() -> None:
    desired = _repo(parameters="8B", dtype="bfloat16", gpu="nvidia-h100", ttft=[1, 2000])
    plan = plan_changes(diff_states(desired, {}), desired=desired, current={}, revision="r")
    assert all(item.sizing is None for item in plan.items)
