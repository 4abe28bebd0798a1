"""The canonical examples (see docs/spec.md) are accepted as they are, with no problem."""

from __future__ import annotations

from validate_fixtures import EXAMPLES, REPO, lines_of, validate_folder

SHARED_SPEC = REPO.parent / "shared" / "spec"


def test_repo_examples_validate_clean() -> None:
    result = validate_folder(EXAMPLES)
    assert lines_of(result) == []
    assert sorted(o.key for o in result.objects) == [
        "Cluster/local",
        "Cluster/xeon-dev",
        "Credential/hf-token",
        "Credential/openai-prod",
        "Deployment/gpt-mini-endpoint",
        "Deployment/phi-chat",
        "DeploymentTemplate/chat-low-latency",
        "Model/gpt-4o-mini",
        "Model/minilm",
        "Model/phi-3-5-mini",
        "Model/tiny-gguf",
        "Project/research",
        "Workflow/nightly-eval",
    ]


def test_shared_spec_examples_validate_clean_when_present() -> None:
    if SHARED_SPEC.is_dir():
        assert lines_of(validate_folder(SHARED_SPEC)) == []
