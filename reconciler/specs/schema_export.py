"""JSON Schemas of the spec kinds, generated from the models so they cannot drift.

Editors validate spec files with them (``# yaml-language-server: $schema=...``), and a
test fails when the committed files under ``schemas/`` differ from what the models say.
``python -m reconciler.specs.schema_export`` rewrites them; ``--check`` only reports the
stale ones and exits 1. :func:`generate_schemas` itself is pure.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from reconciler.specs.registry import DOCUMENT_MODELS, KINDS, SpecDocument

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
DOCUMENT_SCHEMA = "document.schema.json"
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "schemas"


def schema_filename(kind: str) -> str:
    """``cluster.schema.json`` for ``Cluster``."""
    return f"{kind.lower()}.schema.json"


def generate_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema: one per kind, plus one accepting any document."""
    schemas: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        schema = DOCUMENT_MODELS[kind].model_json_schema()
        schemas[schema_filename(kind)] = _headed(
            schema, filename=schema_filename(kind), title=f"reconciler/v1 {kind}"
        )
    document = TypeAdapter(SpecDocument).json_schema()
    schemas[DOCUMENT_SCHEMA] = _headed(
        document, filename=DOCUMENT_SCHEMA, title="reconciler/v1 document (any kind)"
    )
    return schemas


def render(schema: dict[str, Any]) -> str:
    """The stable text of a schema file: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def stale_files(directory: Path) -> list[str]:
    """Names of schema files in ``directory`` that are missing or differ from the models."""
    stale = []
    for filename, schema in sorted(generate_schemas().items()):
        path = directory / filename
        if not path.is_file() or path.read_text(encoding="utf-8") != render(schema):
            stale.append(filename)
    return stale


def write_schemas(directory: Path) -> list[str]:
    """Write every schema file that changed; return the names written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, schema in sorted(generate_schemas().items()):
        path = directory / filename
        text = render(schema)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(filename)
    return written


def _headed(schema: dict[str, Any], *, filename: str, title: str) -> dict[str, Any]:
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": filename, **schema, "title": title}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reconciler.specs.schema_export",
        description="Write the JSON Schemas of the spec kinds (or check they are current).",
    )
    parser.add_argument("--check", action="store_true", help="list stale files, exit 1 if any")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="default: schemas/")
    args = parser.parse_args(argv)
    directory: Path = args.dir
    if args.check:
        stale = stale_files(directory)
        for filename in stale:
            print(f"{directory / filename}: stale, run python -m reconciler.specs.schema_export")
        return 1 if stale else 0
    for filename in write_schemas(directory):
        print(f"wrote {directory / filename}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
