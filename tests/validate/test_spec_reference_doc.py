"""docs/spec.md is generated from schemas/: it lists every field, and a stale copy fails."""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.specs import spec_doc
from reconciler.specs.registry import KINDS
from reconciler.specs.schema_export import DEFAULT_DIR, schema_filename

DOC = Path(__file__).parents[2] / "docs" / "spec.md"


def test_docs_spec_md_is_what_the_schemas_render() -> None:
    assert spec_doc.main(["--check"]) == 0, f"docs/spec.md is stale: run {spec_doc.REGENERATE}"


def test_check_fails_on_a_stale_copy_and_the_writer_fixes_it(tmp_path: Path) -> None:
    stale = tmp_path / "spec.md"
    stale.write_text(DOC.read_text().replace("lowercase DNS label", "any name"))
    assert spec_doc.main(["--check", "--output", str(stale)]) == 1
    assert spec_doc.main(["--output", str(stale)]) == 0
    assert stale.read_text() == DOC.read_text()


def _leaf_paths(schema: dict[str, object]) -> set[str]:
    """Every top-level spec field name of a kind, straight from its schema file."""
    defs = schema["$defs"]
    assert isinstance(defs, dict)
    properties = schema["properties"]
    assert isinstance(properties, dict)
    spec_ref = properties["spec"]["$ref"].removeprefix("#/$defs/")
    return {f"spec.{name}" for name in defs[spec_ref]["properties"]}


def test_every_kind_and_every_spec_field_is_documented() -> None:
    text = DOC.read_text()
    for kind in KINDS:
        assert f"\n## {kind}\n" in text
        schema = json.loads((DEFAULT_DIR / schema_filename(kind)).read_text())
        section = text.split(f"\n## {kind}\n", 1)[1].split("\n## ", 1)[0]
        for path in _leaf_paths(schema):
            assert f"| `{path}` |" in section, f"{kind}: {path} missing"


def test_variants_and_list_items_are_listed_with_their_fields() -> None:
    text = DOC.read_text()
    assert '| `spec.source (HuggingFaceSource).revision` | string |  | `"main"` |' in text
    assert "| `spec.workflows.provision.nodes[].type` | string | yes |" in text
    assert "| `metadata.labels` | map of string |" in text
