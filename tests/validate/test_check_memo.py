"""CheckMemo: the daemon's repeated loads reuse each object's checks across objects, and
a load with the memo reports exactly what a load without it reports.

Each step edits one file of the canonical examples the way a push would (the loader then
re-parses only that file, so the other files' objects are the same objects), and
compares the memo's diagnostics with a fresh run's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.core.validation.check_memo import CheckMemo
from reconciler.core.validation.repo import ParsedFile, load_and_parse, validate_parsed
from reconciler.load.documents import SourceFile

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# (file, old text, new text): each applied on top of the previous ones.
EDITS: list[tuple[str, str, str]] = [
    # A Model renamed: the Deployment naming it now dangles (with a did-you-mean).
    ("models.yaml", "name: phi-3-5-mini\n", "name: phi-3-5-mini-v2\n"),
    # The template's SLO defaults tightened: nothing else in the file of the Deployment moved.
    ("deployments.yaml", "    ttft: [50, 500]\n", "    ttft: [50, 20]\n"),
    # The Credential renamed: the cloud Deployment and any Model using it dangle.
    ("deployments.yaml", "  name: openai-prod\n", "  name: openai-staging\n"),
    # The cluster renamed: Deployments and workflow nodes on it dangle.
    ("clusters.yaml", "  name: xeon-dev\n", "  name: xeon-dev-2\n"),
    # Everything put back.
    ("clusters.yaml", "  name: xeon-dev-2\n", "  name: xeon-dev\n"),
    ("deployments.yaml", "  name: openai-staging\n", "  name: openai-prod\n"),
    ("deployments.yaml", "    ttft: [50, 20]\n", "    ttft: [50, 500]\n"),
    ("models.yaml", "name: phi-3-5-mini-v2\n", "name: phi-3-5-mini\n"),
]


def _parse(name: str, text: str, blob: int) -> ParsedFile:
    return load_and_parse(SourceFile(path=name, data=text.encode(), blob=f"{blob:040x}"))


def _formatted(files: dict[str, ParsedFile], memo: CheckMemo | None) -> list[str]:
    result = validate_parsed(files.values(), memo=memo)
    return [d.format() for d in result.diagnostics]


def test_every_edit_reports_what_a_fresh_run_reports() -> None:
    texts = {path.name: path.read_text() for path in sorted(EXAMPLES.glob("*.yaml"))}
    files = {name: _parse(name, text, i) for i, (name, text) in enumerate(texts.items())}
    memo = CheckMemo()
    assert _formatted(files, memo) == _formatted(files, None) == []
    objects = sum(len(parsed.objects) for parsed in files.values())

    assert _formatted(files, memo) == []
    assert memo.reused == objects

    seen_problems = 0
    for step, (name, old, new) in enumerate(EDITS, start=100):
        assert old in texts[name], (name, old)
        texts[name] = texts[name].replace(old, new, 1)
        files[name] = _parse(name, texts[name], step)
        with_memo = _formatted(files, memo)
        assert with_memo == _formatted(files, None), f"after editing {name}: {old!r} -> {new!r}"
        seen_problems += len(with_memo)
    assert seen_problems >= 4, "the edits are meant to make references dangle"
    assert _formatted(files, memo) == []


def test_unchanged_objects_are_taken_from_the_memo_and_touched_ones_checked_again() -> None:
    texts = {path.name: path.read_text() for path in sorted(EXAMPLES.glob("*.yaml"))}
    files = {name: _parse(name, text, i) for i, (name, text) in enumerate(texts.items())}
    memo = CheckMemo()
    _formatted(files, memo)
    _formatted(files, memo)
    all_reused = memo.reused
    assert all_reused > 0

    # A Model renamed: its file's objects are new, and the Deployment that named it (in
    # another, unchanged file) read that name, so it is checked again too.
    texts["models.yaml"] = texts["models.yaml"].replace(
        "name: phi-3-5-mini\n", "name: phi-3-5-mini-v2\n", 1
    )
    files["models.yaml"] = _parse("models.yaml", texts["models.yaml"], 99)
    problems = _formatted(files, memo)
    assert any("Model 'phi-3-5-mini' does not exist" in line for line in problems)
    models = len(files["models.yaml"].objects)
    assert memo.reused <= all_reused - models - 1


@pytest.mark.parametrize("whole_set", [True, False])
def test_a_check_that_reads_every_name_is_not_remembered(whole_set: bool) -> None:
    """A dangling reference's did-you-mean reads every name of the kind: such a result
    depends on names the memo cannot list, so it is computed again each time."""
    texts = {path.name: path.read_text() for path in sorted(EXAMPLES.glob("*.yaml"))}
    if whole_set:
        texts["models.yaml"] = texts["models.yaml"].replace(
            "name: phi-3-5-mini\n", "name: phi-3-5-mini-v2\n", 1
        )
    files = {name: _parse(name, text, i) for i, (name, text) in enumerate(texts.items())}
    memo = CheckMemo()
    _formatted(files, memo)
    first = memo.reused
    _formatted(files, memo)
    assert first == 0
    complete = sum(len(parsed.objects) for parsed in files.values())
    assert (memo.reused < complete) is whole_set


def _many(models: int, per_model: int) -> dict[str, ParsedFile]:
    """``models`` disk Models, each named by ``per_model`` Deployments on the local
    cluster: one file per Model, one per Deployment."""
    files = {
        "cluster.yaml": _parse(
            "cluster.yaml",
            "apiVersion: reconciler/v1\nkind: Cluster\nmetadata: {name: local}\n"
            "spec: {driver: local}\n",
            1,
        )
    }
    blob = 10
    for m in range(models):
        blob += 1
        files[f"m{m}.yaml"] = _parse(f"m{m}.yaml", _MODEL.format(m=m), blob)
        for d in range(per_model):
            blob += 1
            name = f"d{m}-{d}.yaml"
            files[name] = _parse(name, _DEPLOYMENT.format(m=m, d=d), blob)
    return files


_MODEL = """apiVersion: reconciler/v1
kind: Model
metadata: {{name: m{m}}}
spec:
  modality: embedding
  source: {{provider_type: disk, uri: /models/m{m}}}
"""
_DEPLOYMENT = """apiVersion: reconciler/v1
kind: Deployment
metadata: {{name: d{m}-{d}}}
spec:
  model: m{m}
  cluster: local
  template: text-embeddings
  endpoint_name: e{m}-{d}
  deploy_config: {{concurrent_requests: 1, avg_sequence_length: 1, avg_context_length: 64}}
"""


def test_a_run_checks_again_only_the_readers_of_what_moved() -> None:
    """200 Models with 10 Deployments each: renaming one Model checks again that Model
    and the 10 Deployments naming it, and takes the other 2,190 objects from the memo."""
    files = _many(200, 10)
    total = sum(len(parsed.objects) for parsed in files.values())
    memo = CheckMemo()
    assert _formatted(files, memo) == _formatted(files, None) == []
    _formatted(files, memo)
    assert memo.reused == total

    files["m7.yaml"] = _parse("m7.yaml", _MODEL.format(m=7).replace("name: m7", "name: m7b"), 5)
    problems = _formatted(files, memo)
    assert problems == _formatted(files, None)
    assert len([line for line in problems if "Model 'm7' does not exist" in line]) == 10
    # The new m7b and the 10 dangling Deployments (their did-you-mean reads every
    # Model name, so they are not remembered) are checked; nothing else is.
    assert memo.reused == total - 1 - 10

    files["m7.yaml"] = _parse("m7.yaml", _MODEL.format(m=7), 6)
    assert _formatted(files, memo) == []
    assert memo.reused == total - 1 - 10
    assert _formatted(files, memo) == []
    assert memo.reused == total
