"""The markdown plan as a pull-request comment, compared line for line with a golden file.

One plan that has every part a reviewer reads: a create, updates with field diffs and a
redeploy caused by another object, a delete and a kept delete, a Deployment sized against
its SLOs and one whose SLOs no shape meets, validation findings on a changed and an
unchanged object, a Model's last security scan, a long field table folded. Regenerate
after an intended change with ``RECONCILER_UPDATE_GOLDEN=1`` and review the golden diff.
"""

from __future__ import annotations

import os
from pathlib import Path

from plan_fixtures import edit, repo_documents, states

from reconciler.core.diagnostics import Diagnostic
from reconciler.core.diff import diff_states
from reconciler.core.plan import plan_changes
from reconciler.core.plan_markdown import (
    PlanContext,
    ScanSummary,
    render_markdown,
    render_markdown_error,
)

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("RECONCILER_UPDATE_GOLDEN") == "1"
BASE_COMMIT = "3f1c9a0d5e7b2c4a6f8e0d1b3a5c7e9f1b2d4c6e"
ANTHROPIC = {
    "apiVersion": "reconciler/v1",
    "kind": "Credential",
    "metadata": {"name": "anthropic-prod"},
    "spec": {"provider": "anthropic", "secret": "anthropic-api-key"},
}

FAST_CHAT = {
    "apiVersion": "reconciler/v1",
    "kind": "Deployment",
    "metadata": {"name": "phi-fast"},
    "spec": {
        "project": "research",
        "model": "phi-3-5-mini",
        "cluster": "xeon-dev",
        "template": "chat-low-latency",
        "endpoint_name": "fast",
        "deploy_config": {
            "concurrent_requests": 400,
            "avg_sequence_length": 2000,
            "avg_context_length": 8000,
            "ttft": [1, 2],
        },
    },
}


def _compare(name: str, text: str) -> None:
    golden = GOLDEN / name
    if UPDATE:
        golden.write_text(text)
    assert golden.is_file(), f"no {golden}: run with RECONCILER_UPDATE_GOLDEN=1"
    assert text.splitlines() == golden.read_text().splitlines()


def test_the_pr_comment_matches_its_golden_file() -> None:
    kept = {"metadata.annotations": {"reconciler/prune": "disabled"}}
    sized = {"spec.parameters": "3.8B", "spec.dtype": "bfloat16"}
    base_documents = edit(
        repo_documents(),
        [{"object": "Model/minilm", "set": kept}, {"object": "Model/phi-3-5-mini", "set": sized}],
    )
    busier = {"spec.deploy_config.concurrent_requests": 32}
    many_params = {
        f"spec.user_params.shard_{i:02d}": f"s3://datasets/eval/{i:02d}" for i in range(24)
    }
    head_documents = edit(
        base_documents,
        [
            {"object": "Model/minilm", "delete": True},
            {"object": "Model/tiny-gguf", "delete": True},
            {"object": "Model/phi-3-5-mini", "set": {"spec.source.revision": "v2"}},
            {"object": "Deployment/phi-chat", "set": busier},
            {"object": "Deployment/gpt-mini-endpoint", "set": {"spec.workers": 2}},
            {"add": ANTHROPIC},
            {"object": "Workflow/nightly-eval", "set": many_params},
            {"add": FAST_CHAT},
        ],
    )  # fmt: skip
    current, desired = states(base_documents), states(head_documents)
    plan = plan_changes(
        diff_states(desired, current), desired=desired, current=current, revision="head", size=True
    )
    findings = [
        Diagnostic("deployments.yaml", 14, 5, "warning", "a finding on a changed object",
                   kind="Deployment", name="phi-chat"),
        Diagnostic("clusters.yaml", 3, 1, "warning", "a finding on an unchanged object",
                   kind="Cluster", name="local"),
    ]  # fmt: skip
    scans = {
        "Model/phi-3-5-mini": ScanSummary(
            result="findings",
            findings=(
                {"path": "pytorch_model.bin", "severity": "high", "reason": "imports os.system",
                 "scanner": "picklescan"},
            ),
        )
    }  # fmt: skip
    text = render_markdown(
        plan,
        base="main",
        head="work tree",
        base_commit=BASE_COMMIT,
        head_commit=None,
        warnings=["warning: the base revision main does not validate (1 error(s))"],
        context=PlanContext(
            desired=desired,
            findings=findings,
            scans=scans,
            status_source="origin/reconciler/status at 9e8d7c6b5a41",
        ),
    )
    _compare("pr_comment.md", text)
    assert text.count("<details") == text.count("</details>")


def test_the_comment_when_the_specs_do_not_validate_matches_its_golden_file() -> None:
    problems = [
        Diagnostic("deployments/embeddings.yaml", 21, 12, "error",
                   "workers: 2 on Cluster 'local', whose driver is local", "Deployment",
                   "embeddings"),
        Diagnostic("models/minilm.yaml", 9, 3, "warning", "model path does not exist",
                   "Model", "minilm"),
    ]  # fmt: skip
    text = render_markdown_error(
        "the specs at work tree do not validate (1 error(s)); fix them, then plan again",
        problems,
        base="origin/main",
        head="work tree",
    )
    _compare("pr_comment_invalid.md", text)
