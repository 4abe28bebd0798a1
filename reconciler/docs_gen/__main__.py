"""``python -m reconciler.docs_gen [--check]``: write every generated page, or list the
stale ones and exit 1."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from reconciler.docs_gen import api_doc, config_doc, troubleshooting
from reconciler.specs import schema_export, spec_doc

PROJECT = Path(__file__).resolve().parents[2]


def generated_pages() -> dict[str, str]:
    """Project-relative path -> the text it must hold."""
    return {
        **config_doc.pages(),
        **api_doc.pages(),
        **troubleshooting.pages(),
        "docs/spec.md": spec_doc.render_reference(
            {  # as the committed schema files hold them (sorted keys)
                name: json.loads(schema_export.render(schema))
                for name, schema in schema_export.generate_schemas().items()
            }
        ),
    }


def stale_pages(root: Path = PROJECT) -> list[str]:
    stale = []
    for relative, text in generated_pages().items():
        path = root / relative
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(relative)
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reconciler.docs_gen",
        description="Write the generated pages (docs/config.md, docs/api.md, "
        "docs/troubleshooting.md, docs/spec.md, the example configs), or check them.",
    )
    parser.add_argument("--check", action="store_true", help="list stale pages, exit 1 if any")
    parser.add_argument("--root", type=Path, default=PROJECT, help="the project's top folder")
    args = parser.parse_args(argv)
    root: Path = args.root
    if args.check:
        stale = stale_pages(root)
        for relative in stale:
            print(f"{root / relative}: stale, run python -m reconciler.docs_gen")
        return 1 if stale else 0
    for relative, text in generated_pages().items():
        path = root / relative
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
