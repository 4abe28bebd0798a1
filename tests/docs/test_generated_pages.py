"""The generated pages say what the code says: docs/config.md and the example configs
from the config model, docs/api.md from the served OpenAPI document, docs/troubleshooting.md
from the reasons the code can emit, docs/spec.md from the schemas. A stale page fails."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from reconciler.api import openapi
from reconciler.core import reasons
from reconciler.daemon.config import Config, load_config
from reconciler.docs_gen import __main__ as docs_gen
from reconciler.docs_gen import config_doc
from reconciler.specs.registry import KINDS

PROJECT = Path(__file__).parents[2]
DOCS = PROJECT / "docs"
EXAMPLE_CONFIGS = ("systemd/reconciler.yaml", "state-repo-template/.reconciler/reconciler.yaml")


def test_every_generated_page_is_current() -> None:
    assert docs_gen.stale_pages() == [], "stale: run python -m reconciler.docs_gen"


def test_check_fails_on_a_stale_page_and_the_writer_fixes_it(tmp_path: Path) -> None:
    for relative in docs_gen.generated_pages():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT / relative, tmp_path / relative)
    page = tmp_path / "docs" / "config.md"
    page.write_text(page.read_text().replace("`60s`", "`30s`"))
    assert docs_gen.main(["--check", "--root", str(tmp_path)]) == 1
    assert docs_gen.main(["--root", str(tmp_path)]) == 0
    assert page.read_text() == (PROJECT / "docs" / "config.md").read_text()
    assert docs_gen.main(["--check", "--root", str(tmp_path)]) == 0


def _fields(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _fields(annotation, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"


def test_every_config_field_is_in_docs_config_md_with_its_default() -> None:
    text = (DOCS / "config.md").read_text()
    for path in _fields(Config):
        assert f"| `{path}` |" in text, path
    assert "| `logging.format` | `auto` \\| `json` \\| `text` | `auto` |" in text
    assert "| `api.listen` | HOST:PORT | `127.0.0.1:8080` (once `api:` is present) |" in text
    assert "served only when this section is present" in text


def test_a_field_without_a_meaning_stops_the_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    meanings = dict(config_doc.MEANINGS)
    del meanings["http.deny_private"]
    monkeypatch.setattr(config_doc, "MEANINGS", meanings)
    with pytest.raises(config_doc.UndocumentedField, match=r"'http\.deny_private'"):
        config_doc.render_markdown()


@pytest.mark.parametrize("relative", EXAMPLE_CONFIGS)
def test_an_example_config_is_every_default_and_serves_no_api(
    relative: str, tmp_path: Path
) -> None:
    example = tmp_path / "example.yaml"
    shutil.copy(PROJECT / relative, example)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    loaded, defaults = load_config(example), load_config(empty)
    assert loaded.model_dump() == defaults.model_dump()
    assert "api" not in loaded.model_fields_set


def test_uncommenting_the_api_section_serves_it_at_its_default(tmp_path: Path) -> None:
    lines = (PROJECT / "systemd" / "reconciler.yaml").read_text().splitlines()
    start = lines.index("# api:")
    block = []
    for line in lines[start:]:
        if not line:
            break
        block.append(line[2:] if line.startswith("# ") else line)  # what a person uncomments
    config = tmp_path / "reconciler.yaml"
    config.write_text("\n".join(block) + "\n")
    loaded = load_config(config)
    assert "api" in loaded.model_fields_set
    assert (loaded.api.listen, loaded.api.write_mode) == ("127.0.0.1:8080", "commit")


def test_every_operation_and_schema_of_the_served_document_is_in_docs_api_md() -> None:
    text = (DOCS / "api.md").read_text()
    document = openapi.document()
    for path, item in document["paths"].items():
        for method in item:
            assert f"### `{method.upper()} {path}`" in text, (method, path)
    for name in document["components"]["schemas"]:
        assert f"\n### {name}\n" in text, name


_EMITTED = (
    re.compile(r'reason="([A-Z][A-Za-z]+)"'),
    re.compile(r'f?"([A-Z][a-z]+(?:[A-Z][a-z]+)+): '),
    re.compile(r'^\s+\(errors\.\w+, "([A-Z][A-Za-z]+)"\),$', re.MULTILINE),
)


def _emitted_reasons() -> set[str]:
    found: set[str] = set()
    for source in (PROJECT / "reconciler").rglob("*.py"):
        if "docs_gen" in source.parts or source == PROJECT / "reconciler" / "core" / "reasons.py":
            continue
        text = source.read_text()
        for pattern in _EMITTED:
            found.update(pattern.findall(text))
    return found - set(KINDS)


def test_every_reason_the_code_can_emit_has_a_troubleshooting_entry() -> None:
    emitted = _emitted_reasons()
    assert {"SecretNotFound", "ValidationFailed", "ScanFailed", "GatedRepo"} <= emitted
    documented = set(reasons.BY_NAME)
    assert emitted - documented == set(), "add them to reconciler/core/reasons.py"
    text = (DOCS / "troubleshooting.md").read_text()
    for name in documented:
        assert f"\n## {name}\n" in text


def _links(page: Path) -> Iterator[tuple[str, Path]]:
    prose = re.sub(r"`[^`\n]*`", "", re.sub(r"```.*?```", "", page.read_text(), flags=re.S))
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", prose):
        if "://" not in target and not target.startswith("mailto:"):
            yield target, (page.parent / target)


@pytest.mark.parametrize(
    "page", [*sorted(DOCS.glob("*.md")), PROJECT / "README.md"], ids=lambda p: p.name
)
def test_every_relative_link_of_a_page_resolves(page: Path) -> None:
    broken = [target for target, path in _links(page) if not path.exists()]
    assert broken == []
