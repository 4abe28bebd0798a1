"""The committed JSON Schemas match the models, and agree with them on what is invalid."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from reconciler.specs import KINDS
from reconciler.specs.schema_export import (
    DOCUMENT_SCHEMA,
    generate_schemas,
    main,
    render,
    schema_filename,
)
from tests.specs.spec_examples import DELETE, REPO, RawDocument, changed, example

SCHEMAS = REPO / "schemas"


def test_committed_schemas_are_current() -> None:
    expected = {name: render(schema) for name, schema in generate_schemas().items()}
    stale = [
        name
        for name, text in sorted(expected.items())
        if not (SCHEMAS / name).is_file() or (SCHEMAS / name).read_text() != text
    ]
    assert stale == [], "run: python -m reconciler.specs.schema_export"


def test_one_schema_per_kind_plus_the_document_schema() -> None:
    names = set(generate_schemas())
    assert names == {schema_filename(k) for k in KINDS} | {DOCUMENT_SCHEMA}
    assert "deploymenttemplate.schema.json" in names


def test_schema_text_is_stable_and_headed() -> None:
    schema = generate_schemas()[DOCUMENT_SCHEMA]
    text = render(schema)
    assert text == render(generate_schemas()[DOCUMENT_SCHEMA])
    assert text.endswith("}\n")
    assert text.startswith('{\n  "$defs": {\n')
    assert schema["$id"] == DOCUMENT_SCHEMA
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["discriminator"]["propertyName"] == "kind"
    assert generate_schemas()["cluster.schema.json"]["title"] == "reconciler/v1 Cluster"


def test_check_lists_stale_files_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--dir", str(tmp_path)]) == 0
    assert main(["--check", "--dir", str(tmp_path)]) == 0
    (tmp_path / "model.schema.json").write_text("{}\n")
    (tmp_path / "workflow.schema.json").unlink()
    capsys.readouterr()
    assert main(["--check", "--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "model.schema.json: stale" in out
    assert "workflow.schema.json: stale" in out
    assert "cluster.schema.json" not in out


def test_module_runs_as_a_program(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "reconciler.specs.schema_export", "--check", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 1
    assert "document.schema.json: stale" in result.stdout


INVALID = [
    ("bad name", changed(example("Credential", "hf-token"), "metadata.name", "Bad_Name")),
    ("kubeconfig missing", changed(example("Cluster", "xeon-dev"), "spec.kubeconfig", DELETE)),
    (
        "kubeconfig on local",
        changed(example("Cluster", "local"), "spec.kubeconfig", {"secret": "k"}),
    ),
    ("url without sha256", changed(example("Model", "tiny-gguf"), "spec.source.sha256", DELETE)),
    (
        "bad duration",
        changed(example("Workflow", "nightly-eval"), "spec.config.timeout", "2 hours"),
    ),
    ("unknown key", changed(example("Project", "research"), "spec.owner", "me")),
    (
        "runtime without image or command",
        changed(example("DeploymentTemplate", "chat-low-latency"), "spec.runtime.image", DELETE),
    ),
    ("unknown kind", changed(example("Project", "research"), "kind", "Team")),
]


@pytest.mark.parametrize(("case", "document"), INVALID, ids=[c for c, _ in INVALID])
def test_document_schema_rejects_what_the_models_reject(case: str, document: RawDocument) -> None:
    schema = json.loads((SCHEMAS / DOCUMENT_SCHEMA).read_text())
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(document)) != []
